#include "train/adagrad.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/parallel.hpp"

// Last: the headers above must not be compiled for this file's instruction-set level.
#include "core/isa_begin.hpp"

namespace seqrec::train::SEQREC_ISA_NS {

namespace {

// Scalar rule (also the tail of the vector loop). std::sqrt does not vectorise without
// -fno-math-errno, hence the explicit AVX-512 path below; both give the same IEEE results
// (sqrt and division are correctly rounded, no contraction).
inline void adagrad_scalar(float* __restrict w, float* __restrict acc, float* __restrict vel,
                           const float* __restrict g, int64_t b, int64_t e, float lr, float mu) {
  for (int64_t i = b; i < e; ++i) {
    const float gg = g[i] * g[i];
    const float a = acc[i] + gg;
    acc[i] = a;
    const float step = lr * g[i] / std::sqrt(a + kAdagradEps);
    if (mu > 0.0f) {
      const float v = mu * vel[i] - step;
      vel[i] = v;
      w[i] += v;
    } else {
      w[i] -= step;
    }
  }
}

// Rows are scattered over tables much larger than the caches. Prefetching only the first
// line of each table's row two rows ahead starts the hardware streamer early; prefetching
// every line (as before) kept the line fill buffers full and was ~30% slower.
constexpr int64_t kRowsAhead = 2;
inline void prefetch_row_start(float* w, float* acc, float* vel, int64_t offset) {
  __builtin_prefetch(w + offset, 1);
  __builtin_prefetch(acc + offset, 1);
  if (vel) __builtin_prefetch(vel + offset, 1);
}

}  // namespace

// GCC 12 reports its own AVX-512 headers' `__Y = __Y` (an intentionally undefined vector in
// _mm512_sqrt_ps) as maybe-uninitialised once inlined here.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
void adagrad_step(float* __restrict w, float* __restrict acc, float* __restrict vel,
                  const float* __restrict g, int64_t count, float lr, float mu) {
  int64_t i = 0;
#if SEQREC_ISA_VARIANT == 2
  const __m512 vlr = _mm512_set1_ps(lr), vmu = _mm512_set1_ps(mu),
               veps = _mm512_set1_ps(kAdagradEps);
  for (; i + 16 <= count; i += 16) {
    const __m512 gv = _mm512_loadu_ps(g + i);
    const __m512 a = _mm512_add_ps(_mm512_loadu_ps(acc + i), _mm512_mul_ps(gv, gv));
    _mm512_storeu_ps(acc + i, a);
    const __m512 step =
        _mm512_div_ps(_mm512_mul_ps(vlr, gv), _mm512_sqrt_ps(_mm512_add_ps(a, veps)));
    if (mu > 0.0f) {
      const __m512 v = _mm512_sub_ps(_mm512_mul_ps(vmu, _mm512_loadu_ps(vel + i)), step);
      _mm512_storeu_ps(vel + i, v);
      _mm512_storeu_ps(w + i, _mm512_add_ps(_mm512_loadu_ps(w + i), v));
    } else {
      _mm512_storeu_ps(w + i, _mm512_sub_ps(_mm512_loadu_ps(w + i), step));
    }
  }
#endif
  adagrad_scalar(w, acc, vel, g, i, count, lr, mu);
}
#pragma GCC diagnostic pop

void adagrad_step_parallel(float* w, float* acc, float* vel, const float* g, int64_t count,
                           float lr, float mu) {
  constexpr int64_t kChunk = 65536;  // smaller tensors: one thread (no fork/join per step)
  if (count <= kChunk) {
    adagrad_step(w, acc, vel, g, count, lr, mu);
    return;
  }
  parallel_for((count + kChunk - 1) / kChunk, [&](int64_t b, int64_t e, int) {
    const int64_t lo = b * kChunk, hi = std::min(count, e * kChunk);
    adagrad_step(w + lo, acc + lo, vel ? vel + lo : nullptr, g + lo, hi - lo, lr, mu);
  });
}

void adagrad_rows(float* w, float* acc, float* vel, int64_t dim, std::span<const int32_t> rows,
                  const float* g, int64_t ldg, float lr, float mu) {
  const int64_t n = static_cast<int64_t>(rows.size());
  auto body = [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      if (r + kRowsAhead < e)
        prefetch_row_start(w, acc, vel,
                           static_cast<int64_t>(rows[static_cast<size_t>(r + kRowsAhead)]) * dim);
      const int64_t o = static_cast<int64_t>(rows[static_cast<size_t>(r)]) * dim;
      adagrad_step(w + o, acc + o, vel ? vel + o : nullptr, g + r * ldg, dim, lr, mu);
    }
  };
  if (n * dim < 32768)
    body(0, n, 0);
  else
    parallel_for(n, body);
}

void adagrad_rows_at(float* w, float* acc, float* vel, int64_t dim, const int32_t* rows,
                     const int32_t* which, int64_t count, const float* g, int64_t ldg, float lr,
                     float mu) {
  for (int64_t i = 0; i < count; ++i) {
    if (i + kRowsAhead < count)
      prefetch_row_start(w, acc, vel, static_cast<int64_t>(rows[which[i + kRowsAhead]]) * dim);
    const int32_t u = which[i];
    const int64_t o = static_cast<int64_t>(rows[u]) * dim;
    adagrad_step(w + o, acc + o, vel ? vel + o : nullptr, g + u * ldg, dim, lr, mu);
  }
}

}  // namespace seqrec::train::SEQREC_ISA_NS

#include "core/isa_end.hpp"
