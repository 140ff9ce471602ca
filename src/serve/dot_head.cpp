#include "serve/dot_head.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <type_traits>

#include "seqrec/error.hpp"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace seqrec::serve {

namespace {

constexpr int32_t kLanes = 16;              // items per block
constexpr int32_t kRows = 8;                // queries per register tile
constexpr double kUnit = 1.0 / 16777216.0;  // float unit roundoff, 2^-24
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

void* alloc_bytes(size_t n) {
  void* p = ::operator new (n, std::align_val_t{64});
  std::memset(p, 0, n);
  return p;
}

void free_bytes(void* p) {
  if (p != nullptr) ::operator delete (p, std::align_val_t{64});
}

/// The largest float <= x - window (x itself when window == 0).
float lower_threshold(float x, double window) {
  if (window == 0.0) return x;
  const double t = static_cast<double>(x) - window;
  if (std::isnan(t)) return kNegInf;  // keep everything rather than nothing
  float f = static_cast<float>(t);
  while (static_cast<double>(f) > t) f = std::nextafter(f, kNegInf);
  return f;
}

/// The float pass: queries are float vectors.
struct TileF32 {
  using Query = const float*;
  const float* panels;  // blocks x dim x 16
  const float* bias;
  int32_t dim;
  int32_t n;  // items
};

/// The int8 pass: items as int8 with a scale each, queries quantised to int8 too (offset by
/// 128 to unsigned bytes, packed 4 to a word) with a scale each; the dot product is exact in
/// int32 (VNNI's vpdpbusd, or the same in plain C++).
struct QueryI8 {
  const uint32_t* u = nullptr;  // dim4 / 4 words: 4 consecutive (q_k / sq + 128) bytes
  float sq = 0.0f;              // the query's scale
};
struct TileI8 {
  using Query = QueryI8;
  const int8_t* panels;  // blocks x (dim4 / 4) x 16 items x 4 consecutive k
  const float* bias;
  const float* scale;
  const int32_t* corr;  // 128 x sum_k m_ik: the offset's contribution, subtracted
  int32_t dim4;
  int32_t n;
};

/// Writes whole score rows.
struct StoreSink {
  float* const* out;
};

/// The fused selection of one query: keeps every item whose score is >= thr, where thr
/// follows the keep-th best score seen so far (minus the window), so that at the end the
/// kept items are a superset of those within `window` of the keep-th best overall.
struct RowSelect {
  float thr = kNegInf;
  int32_t keep = 1;
  double window = 0.0;
  std::vector<float> heap;  // min-heap of the `keep` best scores so far
  std::vector<std::pair<int32_t, float>>* out = nullptr;

  void start(const HeadQuery& q, int32_t keep_at_most) {
    thr = kNegInf;
    keep = std::clamp<int32_t>(q.keep, 1, keep_at_most);
    window = q.window;
    heap.clear();
    out = q.out;
    out->clear();
  }
  void compact() {
    const float t = thr;
    out->erase(
        std::remove_if(out->begin(), out->end(), [t](const auto& c) { return !(c.second >= t); }),
        out->end());
  }
  /// Scores s[0, 16) of items first.. with `mask` the lanes that reached thr.
  void offer(int32_t first, const float* s, uint32_t mask) {
    while (mask != 0) {
      const int j = __builtin_ctz(mask);
      mask &= mask - 1;
      const float v = s[j];
      if (!(v >= thr)) continue;  // thr rose within this block
      out->emplace_back(first + j, v);
      if (static_cast<int32_t>(heap.size()) < keep) {
        heap.push_back(v);
        std::push_heap(heap.begin(), heap.end(), std::greater<float>());
        if (static_cast<int32_t>(heap.size()) == keep) thr = lower_threshold(heap.front(), window);
      } else if (v > heap.front()) {
        std::pop_heap(heap.begin(), heap.end(), std::greater<float>());
        heap.back() = v;
        std::push_heap(heap.begin(), heap.end(), std::greater<float>());
        thr = lower_threshold(heap.front(), window);
      }
    }
    if (out->size() > 4 * static_cast<size_t>(keep) + 256) compact();
  }
};

struct SelectSink {
  RowSelect* rows;
};

#if defined(__AVX512F__)

template <int R>
inline void emit(const StoreSink& s, int32_t first, int32_t left, const __m512* res) {
  if (left >= kLanes) {
    for (int r = 0; r < R; ++r) _mm512_storeu_ps(s.out[r] + first, res[r]);
  } else {
    const __mmask16 m = static_cast<__mmask16>((1u << left) - 1u);
    for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(s.out[r] + first, m, res[r]);
  }
}

template <int R>
inline void emit(const SelectSink& s, int32_t first, int32_t left, const __m512* res) {
  const uint32_t valid = left >= kLanes ? 0xffffu : (1u << left) - 1u;
  for (int r = 0; r < R; ++r) {
    const uint32_t m =
        _mm512_cmp_ps_mask(res[r], _mm512_set1_ps(s.rows[r].thr), _CMP_GE_OQ) & valid;
    if (m != 0) {
      alignas(64) float v[kLanes];
      _mm512_store_ps(v, res[r]);
      s.rows[r].offer(first, v, m);
    }
  }
}

/// R queries x K consecutive blocks starting at block b: acc[u][r] over k, then the bias,
/// handed to the sink.
template <class Sink, int R, int K>
inline void tile(const TileF32& t, const TileF32::Query* q, const Sink& sink, int32_t b) {
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
    __m512 res[R];
    for (int r = 0; r < R; ++r) res[r] = _mm512_add_ps(acc[u][r], bias);
    emit<R>(sink, first, t.n - first, res);
  }
}

#if defined(__AVX512VNNI__)
template <class Sink, int R, int K>
inline void tile(const TileI8& t, const TileI8::Query* q, const Sink& sink, int32_t b) {
  __m512i acc[K][R];
  for (int u = 0; u < K; ++u)
    for (int r = 0; r < R; ++r) acc[u][r] = _mm512_setzero_si512();
  const size_t stride = static_cast<size_t>(t.dim4) * kLanes;  // bytes per block
  const int8_t* p = t.panels + static_cast<size_t>(b) * stride;
  const int32_t groups = t.dim4 / 4;
  for (int32_t g = 0; g < groups; ++g) {
    __m512i w[K];
    for (int u = 0; u < K; ++u)
      w[u] = _mm512_load_si512(p + u * stride + static_cast<size_t>(g) * 4 * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512i x = _mm512_set1_epi32(static_cast<int32_t>(q[r].u[g]));
      for (int u = 0; u < K; ++u) acc[u][r] = _mm512_dpbusd_epi32(acc[u][r], x, w[u]);
    }
  }
  for (int u = 0; u < K; ++u) {
    const int32_t first = (b + u) * kLanes;
    const __m512 bias = _mm512_load_ps(t.bias + first);
    const __m512 scale = _mm512_load_ps(t.scale + first);
    const __m512i corr = _mm512_load_si512(t.corr + first);
    __m512 res[R];
    for (int r = 0; r < R; ++r) {
      const __m512 dot = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[u][r], corr));
      res[r] = _mm512_fmadd_ps(dot, _mm512_mul_ps(scale, _mm512_set1_ps(q[r].sq)), bias);
    }
    emit<R>(sink, first, t.n - first, res);
  }
}
#endif

#endif

template <int R>
inline void emit_rows(const StoreSink& s, int32_t first, int32_t left, const float (*res)[kLanes]) {
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < std::min(kLanes, left); ++j) s.out[r][first + j] = res[r][j];
}

template <int R>
inline void emit_rows(const SelectSink& s, int32_t first, int32_t left,
                      const float (*res)[kLanes]) {
  for (int r = 0; r < R; ++r) {
    uint32_t m = 0;
    for (int j = 0; j < std::min(kLanes, left); ++j)
      if (res[r][j] >= s.rows[r].thr) m |= 1u << j;
    if (m != 0) s.rows[r].offer(first, res[r], m);
  }
}

/// Portable block of R queries (used where the vector kernel is not compiled): the same
/// arithmetic, so the same results.
template <class Sink, int R>
inline void block_portable(const TileF32& t, const TileF32::Query* q, const Sink& sink, int32_t b) {
  const size_t stride = static_cast<size_t>(t.dim) * kLanes;
  const float* p = t.panels + static_cast<size_t>(b) * stride;
  const int32_t first = b * kLanes;
  alignas(64) float res[R][kLanes];
  for (int r = 0; r < R; ++r) {
    float acc[kLanes] = {};
    for (int32_t k = 0; k < t.dim; ++k) {
      const float x = q[r][k];
      const float* w = p + static_cast<size_t>(k) * kLanes;
      for (int j = 0; j < kLanes; ++j) acc[j] = std::fma(x, w[j], acc[j]);
    }
    for (int j = 0; j < kLanes; ++j) res[r][j] = acc[j] + t.bias[first + j];
  }
  emit_rows<R>(sink, first, t.n - first, res);
}

template <class Sink, int R>
inline void block_portable(const TileI8& t, const TileI8::Query* q, const Sink& sink, int32_t b) {
  const size_t stride = static_cast<size_t>(t.dim4) * kLanes;
  const int8_t* p = t.panels + static_cast<size_t>(b) * stride;
  const int32_t first = b * kLanes;
  const int32_t groups = t.dim4 / 4;
  alignas(64) float res[R][kLanes];
  for (int r = 0; r < R; ++r) {
    int32_t acc[kLanes] = {};
    for (int32_t g = 0; g < groups; ++g) {
      const uint32_t x = q[r].u[g];
      const int8_t* w = p + static_cast<size_t>(g) * 4 * kLanes;
      for (int j = 0; j < kLanes; ++j)
        for (int c = 0; c < 4; ++c)
          acc[j] += static_cast<int32_t>((x >> (8 * c)) & 0xffu) * w[4 * j + c];
    }
    for (int j = 0; j < kLanes; ++j)
      res[r][j] = std::fma(static_cast<float>(acc[j] - t.corr[first + j]),
                           t.scale[first + j] * q[r].sq, t.bias[first + j]);
  }
  emit_rows<R>(sink, first, t.n - first, res);
}

template <class Tile, class Sink, int R>
void rows(const Tile& t, const typename Tile::Query* q, const Sink& sink, int32_t b0, int32_t b1) {
  constexpr bool vector_kernel =
#if defined(__AVX512F__)
      std::is_same_v<Tile, TileF32>
#if defined(__AVX512VNNI__)
      || std::is_same_v<Tile, TileI8>
#endif
#else
      false
#endif
      ;
  if constexpr (vector_kernel) {
#if defined(__AVX512F__)
    // Enough blocks at a time that R x K independent accumulators hide the latency of the
    // multiply-adds (one query alone would otherwise wait on a chain per k).
    constexpr int K = R <= 2 ? 8 : (R <= 4 ? 4 : 2);
    int32_t b = b0;
    for (; b + K <= b1; b += K) tile<Sink, R, K>(t, q, sink, b);
    if constexpr (K > 2)
      for (; b + 2 <= b1; b += 2) tile<Sink, R, 2>(t, q, sink, b);
    for (; b < b1; ++b) tile<Sink, R, 1>(t, q, sink, b);
#endif
  } else {
    for (int32_t b = b0; b < b1; ++b) block_portable<Sink, R>(t, q, sink, b);
  }
}

inline StoreSink offset(const StoreSink& s, int32_t r) {
  return {s.out + r};
}
inline SelectSink offset(const SelectSink& s, int32_t r) {
  return {s.rows + r};
}

template <class Tile, class Sink>
void rows_any(int32_t r, const Tile& t, const typename Tile::Query* q, const Sink& sink, int32_t b0,
              int32_t b1) {
  switch (r) {
    case 1:
      return rows<Tile, Sink, 1>(t, q, sink, b0, b1);
    case 2:
      return rows<Tile, Sink, 2>(t, q, sink, b0, b1);
    case 3:
      return rows<Tile, Sink, 3>(t, q, sink, b0, b1);
    case 4:
      return rows<Tile, Sink, 4>(t, q, sink, b0, b1);
    case 5:
      return rows<Tile, Sink, 5>(t, q, sink, b0, b1);
    case 6:
      return rows<Tile, Sink, 6>(t, q, sink, b0, b1);
    case 7:
      return rows<Tile, Sink, 7>(t, q, sink, b0, b1);
    default:
      return rows<Tile, Sink, kRows>(t, q, sink, b0, b1);
  }
}

template <class Tile, class Sink>
void pass(const Tile& t, int64_t block_bytes, int32_t blocks, int32_t n,
          const typename Tile::Query* q, const Sink& sink) {
  // Items in chunks of about 256 KB of panels, so that a chunk stays in L2 while every
  // group of kRows queries goes over it (one pass over the matrix from memory per batch).
  const int32_t chunk =
      std::max<int32_t>(8, static_cast<int32_t>((256 * 1024) / block_bytes) / 8 * 8);
  for (int32_t b0 = 0; b0 < blocks; b0 += chunk) {
    const int32_t b1 = std::min(blocks, b0 + chunk);
    for (int32_t r = 0; r < n; r += kRows)
      rows_any(std::min(kRows, n - r), t, q + r, offset(sink, r), b0, b1);
  }
}

/// Quantises q (dim floats) for the int8 pass: words of 4 offset bytes (dim4 / 4 of them)
/// and the scale. False (and a zero query) when q is not finite.
bool quantise(const float* q, int32_t dim, int32_t dim4, uint32_t* words, float* sq,
              double* max_err) {
  float m = 0.0f;
  for (int32_t k = 0; k < dim; ++k) m = std::max(m, std::fabs(q[k]));
  const bool finite = std::isfinite(m);
  const float s = finite ? m / 127.0f : 0.0f;
  double err = 0.0;
  for (int32_t g = 0; g < dim4 / 4; ++g) {
    uint32_t w = 0;
    for (int c = 0; c < 4; ++c) {
      const int32_t k = 4 * g + c;
      float v = 0.0f;
      if (k < dim && s > 0.0f) v = std::clamp(std::nearbyint(q[k] / s), -127.0f, 127.0f);
      if (k < dim && finite)
        err = std::max(err, std::fabs(static_cast<double>(q[k]) - static_cast<double>(s) * v));
      w |= static_cast<uint32_t>(static_cast<int32_t>(v) + 128) << (8 * c);
    }
    words[g] = w;
  }
  *sq = s;
  if (max_err != nullptr) *max_err = err;
  return finite;
}

struct Better {
  bool operator()(const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) const {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  }
};

}  // namespace

HeadPrecision parse_head_precision(const std::string& s) {
  if (s == "fp32") return HeadPrecision::Fp32;
  if (s == "int8") return HeadPrecision::Int8;
  throw InputError("scoring precision must be fp32 or int8, got '" + s + "'");
}

const char* head_precision_name(HeadPrecision p) {
  return p == HeadPrecision::Fp32 ? "fp32" : "int8";
}

PackedDotHead::PackedDotHead(const DotProductHead& head, int32_t n_items, HeadPrecision precision)
    : precision_(precision) {
  if (head.dim < 1 || head.items == nullptr)
    throw InputError("dot-product head: the model has none (dim " + std::to_string(head.dim) + ")");
  if (n_items < 1) throw InputError("dot-product head: no items");
  n_ = n_items;
  dim_ = head.dim;
  items_ = head.items;
  item_bias_ = head.bias;
  blocks_ = (n_ + kLanes - 1) / kLanes;
  const size_t stride = static_cast<size_t>(dim_) * kLanes;
  const size_t weights = static_cast<size_t>(blocks_) * stride;
  bias_ = static_cast<float*>(alloc_bytes(static_cast<size_t>(blocks_) * kLanes * sizeof(float)));
  for (int32_t i = 0; i < n_; ++i) {
    if (head.bias != nullptr) bias_[i] = head.bias[i];
    max_abs_bias_ = std::max(max_abs_bias_, static_cast<double>(std::fabs(bias_[i])));
  }
  if (precision_ == HeadPrecision::Fp32) {
    auto* p = static_cast<float*>(alloc_bytes(weights * sizeof(float)));
    panels_ = p;
    for (int32_t i = 0; i < n_; ++i) {
      float* col = p + static_cast<size_t>(i / kLanes) * stride + i % kLanes;
      const float* row = head.items + static_cast<size_t>(i) * dim_;
      for (int32_t k = 0; k < dim_; ++k) col[static_cast<size_t>(k) * kLanes] = row[k];
    }
    return;
  }
  // Int8: k padded to a multiple of 4; in a block, the 4 consecutive weights k = 4g..4g+3
  // of item j are bytes 64 g + 4 j .. 64 g + 4 j + 3.
  dim4_ = (dim_ + 3) / 4 * 4;
  const size_t stride4 = static_cast<size_t>(dim4_) * kLanes;
  auto* p = static_cast<int8_t*>(alloc_bytes(static_cast<size_t>(blocks_) * stride4));
  panels_ = p;
  scale_ = static_cast<float*>(alloc_bytes(static_cast<size_t>(blocks_) * kLanes * sizeof(float)));
  corr_ =
      static_cast<int32_t*>(alloc_bytes(static_cast<size_t>(blocks_) * kLanes * sizeof(int32_t)));
  for (int32_t i = 0; i < n_; ++i) {
    const float* row = head.items + static_cast<size_t>(i) * dim_;
    float m = 0.0f;
    for (int32_t k = 0; k < dim_; ++k) m = std::max(m, std::fabs(row[k]));
    if (!std::isfinite(m))
      throw InputError("dot-product head: item " + std::to_string(i) + " has a non-finite weight");
    const float s = m / 127.0f;
    scale_[i] = s;
    max_scale_ = std::max(max_scale_, static_cast<double>(s));
    max_abs_w_ = std::max(max_abs_w_, static_cast<double>(m));
    int8_t* blk = p + static_cast<size_t>(i / kLanes) * stride4 + 4 * (i % kLanes);
    int32_t sum = 0, l1 = 0;
    for (int32_t k = 0; k < dim_; ++k) {
      const float v = s > 0.0f ? std::nearbyint(row[k] / s) : 0.0f;
      const float c = std::clamp(v, -127.0f, 127.0f);
      blk[static_cast<size_t>(k / 4) * 4 * kLanes + k % 4] = static_cast<int8_t>(c);
      sum += static_cast<int32_t>(c);
      l1 += std::abs(static_cast<int32_t>(c));
      // The actual quantisation error (about s / 2; more only for tiny, subnormal scales).
      max_quant_err_ = std::max(
          max_quant_err_, std::fabs(static_cast<double>(row[k]) - static_cast<double>(s) * c));
    }
    corr_[i] = 128 * sum;
    max_l1_ = std::max(max_l1_, static_cast<double>(s) * l1);
  }
}

PackedDotHead::~PackedDotHead() {
  free_bytes(panels_);
  free_bytes(bias_);
  free_bytes(scale_);
  free_bytes(corr_);
}

int64_t PackedDotHead::bytes() const {
  const int64_t slots = static_cast<int64_t>(blocks_) * kLanes;
  if (precision_ == HeadPrecision::Fp32) return slots * dim_ * 4 + slots * 4;
  return slots * dim4_ + slots * 4 * 3;
}

void PackedDotHead::score(int32_t n, const float* const* q, float* const* out) const {
  if (n <= 0) return;
  const StoreSink sink{out};
  if (precision_ == HeadPrecision::Fp32) {
    const TileF32 t{static_cast<const float*>(panels_), bias_, dim_, n_};
    pass(t, static_cast<int64_t>(dim_) * kLanes * 4, blocks_, n, q, sink);
    return;
  }
  std::vector<uint32_t> words(static_cast<size_t>(n) * (dim4_ / 4));
  std::vector<QueryI8> qs(static_cast<size_t>(n));
  for (int32_t r = 0; r < n; ++r) {
    uint32_t* w = words.data() + static_cast<size_t>(r) * (dim4_ / 4);
    quantise(q[r], dim_, dim4_, w, &qs[static_cast<size_t>(r)].sq, nullptr);
    qs[static_cast<size_t>(r)].u = w;
  }
  const TileI8 t{static_cast<const int8_t*>(panels_), bias_, scale_, corr_, dim4_, n_};
  pass(t, static_cast<int64_t>(dim4_) * kLanes, blocks_, n, qs.data(), sink);
}

void PackedDotHead::select(int32_t n, const HeadQuery* const* queries) const {
  if (n <= 0) return;
  thread_local std::vector<RowSelect> rows;
  thread_local std::vector<const float*> qf;
  thread_local std::vector<QueryI8> qi;
  thread_local std::vector<uint32_t> words;
  if (rows.size() < static_cast<size_t>(n)) rows.resize(static_cast<size_t>(n));
  for (int32_t r = 0; r < n; ++r) rows[static_cast<size_t>(r)].start(*queries[r], n_);
  const SelectSink sink{rows.data()};
  if (precision_ == HeadPrecision::Fp32) {
    qf.clear();
    for (int32_t r = 0; r < n; ++r) qf.push_back(queries[r]->q);
    const TileF32 t{static_cast<const float*>(panels_), bias_, dim_, n_};
    pass(t, static_cast<int64_t>(dim_) * kLanes * 4, blocks_, n, qf.data(), sink);
  } else {
    const size_t per = static_cast<size_t>(dim4_ / 4);
    words.resize(static_cast<size_t>(n) * per);
    qi.resize(static_cast<size_t>(n));
    for (int32_t r = 0; r < n; ++r) {
      uint32_t* w = words.data() + static_cast<size_t>(r) * per;
      QueryI8& x = qi[static_cast<size_t>(r)];
      x.u = w;
      // A query that is not finite has an infinite error bound: keep every item (its
      // first-pass scores are then the biases) and let the exact rescoring decide.
      if (!quantise(queries[r]->q, dim_, dim4_, w, &x.sq, nullptr))
        rows[static_cast<size_t>(r)].keep = n_;
    }
    const TileI8 t{static_cast<const int8_t*>(panels_), bias_, scale_, corr_, dim4_, n_};
    pass(t, static_cast<int64_t>(dim4_) * kLanes, blocks_, n, qi.data(), sink);
  }
  for (int32_t r = 0; r < n; ++r) rows[static_cast<size_t>(r)].compact();
}

double PackedDotHead::error_bound(const float* q) const {
  if (precision_ == HeadPrecision::Fp32) return 0.0;
  // The first pass computes a = fl(fl(sq s_i) x D + b_i) with D = sum_k (qq_k m_ik) exact
  // in int32, where m_ik are the item's int8 weights (scale s_i, |w_ik - s_i m_ik| <= e_w,
  // measured when packing: about s_i / 2) and qq_k the query's (scale sq, |q_k - sq qq_k|
  // <= e_q). The exact score is e = fl(fl(sum_k q_k w_ik) + b_i), an fma chain. So with
  // g = dim u / (1 - dim u) (u = 2^-24) bounding an fma chain of dim terms relative to the
  // sum of their magnitudes, and |a|, |e| <= mag = 1.01 (|q|_1 max|w| + max|b|):
  //   weights quantised     |sum q w - sum q s m|        <= e_w |q|_1
  //   query quantised       |sum q s m - sq s D|          <= e_q max_i s_i sum_k |m_ik|
  //   D to float (exact below 2^24), fl(sq s_i), the fma:  <= 3 u mag
  //   the exact chain and its bias                         <= g max|w| |q|_1 + u mag
  // plus the absolute error of subnormal products. Summed, with 1% to spare for this
  // computation itself.
  std::vector<uint32_t> words(static_cast<size_t>(dim4_ / 4));
  float sq = 0.0f;
  double e_q = 0.0;
  double q1 = 0.0;
  for (int32_t k = 0; k < dim_; ++k) q1 += std::fabs(static_cast<double>(q[k]));
  if (!quantise(q, dim_, dim4_, words.data(), &sq, &e_q) || !std::isfinite(q1))
    return std::numeric_limits<double>::infinity();
  const double g = dim_ * kUnit / (1.0 - dim_ * kUnit);
  const double mag = 1.01 * (q1 * max_abs_w_ + max_abs_bias_);
  const double rounding = 4.0 * kUnit * mag + g * max_abs_w_ * q1;
  const double tiny = (2.0 * dim_ + 8.0) * std::numeric_limits<float>::denorm_min();
  const double big = static_cast<double>(dim_) * 127.0 * 255.0 >= 16777216.0
                         ? 2.0 * kUnit * mag  // D may round when converted to float
                         : 0.0;
  return 1.01 * (max_quant_err_ * q1 + e_q * max_l1_ + rounding + big + tiny);
}

void PackedDotHead::exact(const float* q, std::span<const int32_t> items, float* out) const {
  const size_t m = items.size();
  size_t i = 0;
#if defined(__AVX512F__)
  if (static_cast<int64_t>(n_) * dim_ < (int64_t{1} << 31)) {
    const __m512i dimv = _mm512_set1_epi32(dim_);
    for (; i < m; i += kLanes) {
      const int32_t cnt = static_cast<int32_t>(std::min<size_t>(kLanes, m - i));
      const __mmask16 mask = static_cast<__mmask16>((1u << cnt) - 1u);
      const __m512i idx = _mm512_maskz_loadu_epi32(mask, items.data() + i);
      __m512i off = _mm512_mullo_epi32(idx, dimv);
      __m512 acc = _mm512_setzero_ps();
      for (int32_t k = 0; k < dim_; ++k) {
        const __m512 w = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, off, items_, 4);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(q[k]), w, acc);
        off = _mm512_add_epi32(off, _mm512_set1_epi32(1));
      }
      __m512 bias = _mm512_setzero_ps();
      if (item_bias_ != nullptr)
        bias = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask, idx, item_bias_, 4);
      _mm512_mask_storeu_ps(out + i, mask, _mm512_add_ps(acc, bias));
    }
    return;
  }
#endif
  for (; i < m; ++i) {
    const float* w = items_ + static_cast<size_t>(items[i]) * dim_;
    float acc = 0.0f;
    for (int32_t k = 0; k < dim_; ++k) acc = std::fma(q[k], w[k], acc);
    out[i] = acc + (item_bias_ != nullptr ? item_bias_[items[i]] : 0.0f);
  }
}

namespace {

/// Removes the excluded and forbidden items (and NaN scores) from cand.
void drop_ineligible(std::vector<std::pair<int32_t, float>>& cand, const TopKFilter& filter,
                     int32_t n) {
  // A byte per item, set and cleared around the check.
  thread_local std::vector<uint8_t> mark;
  if (mark.size() < static_cast<size_t>(n)) mark.assign(static_cast<size_t>(n), 0);
  auto set = [&](std::span<const int32_t> items, uint8_t v) {
    for (int32_t i : items)
      if (i >= 0 && i < n) mark[static_cast<size_t>(i)] = v;
  };
  set(filter.excluded, 1);
  set(filter.forbidden, 1);
  cand.erase(std::remove_if(cand.begin(), cand.end(),
                            [&](const auto& c) {
                              return mark[static_cast<size_t>(c.first)] != 0 ||
                                     std::isnan(c.second);
                            }),
             cand.end());
  set(filter.excluded, 0);
  set(filter.forbidden, 0);
}

/// The best k of cand by (score desc, index asc), -inf dropped when asked.
std::vector<std::pair<int32_t, float>> best_k(const std::vector<std::pair<int32_t, float>>& cand,
                                              int32_t k, bool drop_neg_inf) {
  std::vector<std::pair<int32_t, float>> top;
  top.reserve(cand.size());
  for (const auto& c : cand)
    if (!std::isnan(c.second) && !(drop_neg_inf && c.second == kNegInf)) top.push_back(c);
  const size_t keep_n = std::min(top.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(top.begin(), top.begin() + static_cast<std::ptrdiff_t>(keep_n), top.end(),
                    Better{});
  top.resize(keep_n);
  return top;
}

}  // namespace

std::vector<std::pair<int32_t, float>> PackedDotHead::top_k(
    const float* q, std::vector<std::pair<int32_t, float>>& cand, double window, int32_t k,
    const TopKFilter& filter, int64_t* rescored) const {
  if (rescored != nullptr) *rescored = 0;
  if (k <= 0) return {};
  drop_ineligible(cand, filter, n_);
  if (static_cast<int32_t>(cand.size()) > k) {
    // Only those within the window of the k-th best eligible first-pass score can be in
    // the top k (see dot_head.hpp).
    std::nth_element(cand.begin(), cand.begin() + (k - 1), cand.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    const float t = lower_threshold(cand[static_cast<size_t>(k - 1)].second, window);
    cand.erase(
        std::remove_if(cand.begin(), cand.end(), [t](const auto& c) { return !(c.second >= t); }),
        cand.end());
  }
  if (precision_ != HeadPrecision::Fp32) {
    thread_local std::vector<int32_t> ids;
    thread_local std::vector<float> exact_scores;
    ids.clear();
    for (const auto& c : cand) ids.push_back(c.first);
    exact_scores.resize(ids.size());
    exact(q, ids, exact_scores.data());
    for (size_t c = 0; c < cand.size(); ++c) cand[c].second = exact_scores[c];
    if (rescored != nullptr) *rescored = static_cast<int64_t>(cand.size());
  }
  return best_k(cand, k, filter.drop_neg_inf);
}

std::vector<std::pair<int32_t, float>> PackedDotHead::top_k_among(const float* q,
                                                                  std::span<const int32_t> items,
                                                                  int32_t k,
                                                                  const TopKFilter& filter) const {
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<float> scores;
  thread_local std::vector<std::pair<int32_t, float>> cand;
  ids.clear();
  for (int32_t i : items)
    if (i >= 0 && i < n_) ids.push_back(i);
  scores.resize(ids.size());
  exact(q, ids, scores.data());
  cand.clear();
  for (size_t j = 0; j < ids.size(); ++j) cand.emplace_back(ids[j], scores[j]);
  drop_ineligible(cand, filter, n_);
  return best_k(cand, k, filter.drop_neg_inf);
}

}  // namespace seqrec::serve
