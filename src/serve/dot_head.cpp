#include "serve/dot_head.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <string>

#include "seqrec/error.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace seqrec::serve {

namespace {

constexpr int32_t kLanes = 16;  // items per block
constexpr int32_t kRows = 8;    // queries per register tile

float* alloc_floats(size_t n) {
  auto* p = static_cast<float*>(::operator new (n * sizeof(float), std::align_val_t{64}));
  std::memset(p, 0, n * sizeof(float));
  return p;
}

void free_floats(float* p) {
  if (p != nullptr) ::operator delete (p, std::align_val_t{64});
}

struct Tile {
  const float* panels;
  const float* bias;
  int32_t dim;
  int32_t n;  // items
};

#if defined(__AVX512F__)

/// R queries x K consecutive blocks starting at block b: acc[u][r] over k, then + bias.
template <int R, int K>
inline void tile(const Tile& t, const float* const* q, float* const* out, int32_t b) {
  __m512 acc[K][R];
  for (int u = 0; u < K; ++u)
    for (int r = 0; r < R; ++r) acc[u][r] = _mm512_setzero_ps();
  const size_t stride = static_cast<size_t>(t.dim) * kLanes;
  const float* p = t.panels + static_cast<size_t>(b) * stride;
  for (int32_t k = 0; k < t.dim; ++k) {
    __m512 w[K];
    for (int u = 0; u < K; ++u)
      w[u] = _mm512_load_ps(p + u * stride + static_cast<size_t>(k) * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(q[r][k]);
      for (int u = 0; u < K; ++u) acc[u][r] = _mm512_fmadd_ps(x, w[u], acc[u][r]);
    }
  }
  for (int u = 0; u < K; ++u) {
    const int32_t first = (b + u) * kLanes;
    const __m512 bias = _mm512_load_ps(t.bias + first);
    const int32_t left = t.n - first;
    if (left >= kLanes) {
      for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r] + first, _mm512_add_ps(acc[u][r], bias));
    } else {
      const __mmask16 m = static_cast<__mmask16>((1u << left) - 1u);
      for (int r = 0; r < R; ++r)
        _mm512_mask_storeu_ps(out[r] + first, m, _mm512_add_ps(acc[u][r], bias));
    }
  }
}

template <int R>
void rows(const Tile& t, const float* const* q, float* const* out, int32_t b0, int32_t b1) {
  int32_t b = b0;
  for (; b + 2 <= b1; b += 2) tile<R, 2>(t, q, out, b);
  for (; b < b1; ++b) tile<R, 1>(t, q, out, b);
}

#else

/// Portable version with the same arithmetic (one fused multiply-add per term, in order).
template <int R>
void rows(const Tile& t, const float* const* q, float* const* out, int32_t b0, int32_t b1) {
  const size_t stride = static_cast<size_t>(t.dim) * kLanes;
  for (int32_t b = b0; b < b1; ++b) {
    const float* p = t.panels + static_cast<size_t>(b) * stride;
    const int32_t first = b * kLanes;
    const int32_t m = std::min(kLanes, t.n - first);
    for (int r = 0; r < R; ++r) {
      float acc[kLanes] = {};
      for (int32_t k = 0; k < t.dim; ++k) {
        const float x = q[r][k];
        const float* w = p + static_cast<size_t>(k) * kLanes;
        for (int j = 0; j < kLanes; ++j) acc[j] = std::fma(x, w[j], acc[j]);
      }
      for (int j = 0; j < m; ++j) out[r][first + j] = acc[j] + t.bias[first + j];
    }
  }
}

#endif

void rows_any(int32_t r, const Tile& t, const float* const* q, float* const* out, int32_t b0,
              int32_t b1) {
  switch (r) {
    case 1:
      return rows<1>(t, q, out, b0, b1);
    case 2:
      return rows<2>(t, q, out, b0, b1);
    case 3:
      return rows<3>(t, q, out, b0, b1);
    case 4:
      return rows<4>(t, q, out, b0, b1);
    case 5:
      return rows<5>(t, q, out, b0, b1);
    case 6:
      return rows<6>(t, q, out, b0, b1);
    case 7:
      return rows<7>(t, q, out, b0, b1);
    default:
      return rows<kRows>(t, q, out, b0, b1);
  }
}

}  // namespace

PackedDotHead::PackedDotHead(const DotProductHead& head, int32_t n_items) {
  if (head.dim < 1 || head.items == nullptr)
    throw InputError("dot-product head: the model has none (dim " + std::to_string(head.dim) + ")");
  if (n_items < 1) throw InputError("dot-product head: no items");
  n_ = n_items;
  dim_ = head.dim;
  blocks_ = (n_ + kLanes - 1) / kLanes;
  const size_t stride = static_cast<size_t>(dim_) * kLanes;
  panels_ = alloc_floats(static_cast<size_t>(blocks_) * stride);
  bias_ = alloc_floats(static_cast<size_t>(blocks_) * kLanes);
  for (int32_t i = 0; i < n_; ++i) {
    float* p = panels_ + static_cast<size_t>(i / kLanes) * stride + i % kLanes;
    const float* row = head.items + static_cast<size_t>(i) * dim_;
    for (int32_t k = 0; k < dim_; ++k) p[static_cast<size_t>(k) * kLanes] = row[k];
    if (head.bias != nullptr) bias_[i] = head.bias[i];
  }
}

PackedDotHead::~PackedDotHead() {
  free_floats(panels_);
  free_floats(bias_);
}

int64_t PackedDotHead::bytes() const {
  return static_cast<int64_t>(blocks_) * kLanes * (dim_ + 1) * static_cast<int64_t>(sizeof(float));
}

void PackedDotHead::score(int32_t n, const float* const* q, float* const* out) const {
  if (n <= 0) return;
  const Tile t{panels_, bias_, dim_, n_};
  // Items in chunks of about 256 KB of panels, so that a chunk stays in L2 while every
  // group of kRows queries goes over it (one pass over the matrix from memory per batch).
  const int32_t chunk = std::max<int32_t>(
      2, static_cast<int32_t>((256 * 1024) / (static_cast<int64_t>(dim_) * kLanes * 4)));
  for (int32_t b0 = 0; b0 < blocks_; b0 += chunk) {
    const int32_t b1 = std::min(blocks_, b0 + chunk);
    for (int32_t r = 0; r < n; r += kRows)
      rows_any(std::min(kRows, n - r), t, q + r, out + r, b0, b1);
  }
}

}  // namespace seqrec::serve
