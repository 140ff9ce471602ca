#include "serve/dot_head.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
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

void* alloc_bytes(size_t n) {
  void* p = ::operator new (n, std::align_val_t{64});
  std::memset(p, 0, n);
  return p;
}

void free_bytes(void* p) {
  if (p != nullptr) ::operator delete (p, std::align_val_t{64});
}

template <class W>
struct Tile {
  const W* panels;
  const float* bias;
  const float* scale;  // Int8 only
  int32_t dim;
  int32_t n;  // items
};

#if defined(__AVX512F__)

inline __m512 load16(const float* p) {
  return _mm512_load_ps(p);
}
inline __m512 load16(const int8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(p))));
}

/// R queries x K consecutive blocks starting at block b: acc[u][r] over k, then the bias
/// (and the item's scale for int8).
template <class W, int R, int K>
inline void tile(const Tile<W>& t, const float* const* q, float* const* out, int32_t b) {
  __m512 acc[K][R];
  for (int u = 0; u < K; ++u)
    for (int r = 0; r < R; ++r) acc[u][r] = _mm512_setzero_ps();
  const size_t stride = static_cast<size_t>(t.dim) * kLanes;
  const W* p = t.panels + static_cast<size_t>(b) * stride;
  for (int32_t k = 0; k < t.dim; ++k) {
    __m512 w[K];
    for (int u = 0; u < K; ++u) w[u] = load16(p + u * stride + static_cast<size_t>(k) * kLanes);
    for (int r = 0; r < R; ++r) {
      const __m512 x = _mm512_set1_ps(q[r][k]);
      for (int u = 0; u < K; ++u) acc[u][r] = _mm512_fmadd_ps(x, w[u], acc[u][r]);
    }
  }
  for (int u = 0; u < K; ++u) {
    const int32_t first = (b + u) * kLanes;
    const __m512 bias = _mm512_load_ps(t.bias + first);
    __m512 res[R];
    if constexpr (std::is_same_v<W, int8_t>) {
      const __m512 scale = _mm512_load_ps(t.scale + first);
      for (int r = 0; r < R; ++r) res[r] = _mm512_fmadd_ps(acc[u][r], scale, bias);
    } else {
      for (int r = 0; r < R; ++r) res[r] = _mm512_add_ps(acc[u][r], bias);
    }
    const int32_t left = t.n - first;
    if (left >= kLanes) {
      for (int r = 0; r < R; ++r) _mm512_storeu_ps(out[r] + first, res[r]);
    } else {
      const __mmask16 m = static_cast<__mmask16>((1u << left) - 1u);
      for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(out[r] + first, m, res[r]);
    }
  }
}

template <class W, int R>
void rows(const Tile<W>& t, const float* const* q, float* const* out, int32_t b0, int32_t b1) {
  int32_t b = b0;
  for (; b + 2 <= b1; b += 2) tile<W, R, 2>(t, q, out, b);
  for (; b < b1; ++b) tile<W, R, 1>(t, q, out, b);
}

#else

/// Portable version with the same arithmetic (one fused multiply-add per term, in order).
template <class W, int R>
void rows(const Tile<W>& t, const float* const* q, float* const* out, int32_t b0, int32_t b1) {
  const size_t stride = static_cast<size_t>(t.dim) * kLanes;
  for (int32_t b = b0; b < b1; ++b) {
    const W* p = t.panels + static_cast<size_t>(b) * stride;
    const int32_t first = b * kLanes;
    const int32_t m = std::min(kLanes, t.n - first);
    for (int r = 0; r < R; ++r) {
      float acc[kLanes] = {};
      for (int32_t k = 0; k < t.dim; ++k) {
        const float x = q[r][k];
        const W* w = p + static_cast<size_t>(k) * kLanes;
        for (int j = 0; j < kLanes; ++j) acc[j] = std::fma(x, static_cast<float>(w[j]), acc[j]);
      }
      for (int j = 0; j < m; ++j) {
        if constexpr (std::is_same_v<W, int8_t>)
          out[r][first + j] = std::fma(acc[j], t.scale[first + j], t.bias[first + j]);
        else
          out[r][first + j] = acc[j] + t.bias[first + j];
      }
    }
  }
}

#endif

template <class W>
void rows_any(int32_t r, const Tile<W>& t, const float* const* q, float* const* out, int32_t b0,
              int32_t b1) {
  switch (r) {
    case 1:
      return rows<W, 1>(t, q, out, b0, b1);
    case 2:
      return rows<W, 2>(t, q, out, b0, b1);
    case 3:
      return rows<W, 3>(t, q, out, b0, b1);
    case 4:
      return rows<W, 4>(t, q, out, b0, b1);
    case 5:
      return rows<W, 5>(t, q, out, b0, b1);
    case 6:
      return rows<W, 6>(t, q, out, b0, b1);
    case 7:
      return rows<W, 7>(t, q, out, b0, b1);
    default:
      return rows<W, kRows>(t, q, out, b0, b1);
  }
}

template <class W>
void score_all(const Tile<W>& t, int32_t blocks, int32_t n, const float* const* q,
               float* const* out) {
  // Items in chunks of about 256 KB of panels, so that a chunk stays in L2 while every
  // group of kRows queries goes over it (one pass over the matrix from memory per batch).
  const int64_t block_bytes = static_cast<int64_t>(t.dim) * kLanes * sizeof(W);
  const int32_t chunk = std::max<int32_t>(2, static_cast<int32_t>((256 * 1024) / block_bytes));
  for (int32_t b0 = 0; b0 < blocks; b0 += chunk) {
    const int32_t b1 = std::min(blocks, b0 + chunk);
    for (int32_t r = 0; r < n; r += kRows)
      rows_any(std::min(kRows, n - r), t, q + r, out + r, b0, b1);
  }
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
  auto* p = static_cast<int8_t*>(alloc_bytes(weights));
  panels_ = p;
  scale_ = static_cast<float*>(alloc_bytes(static_cast<size_t>(blocks_) * kLanes * sizeof(float)));
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
    int8_t* col = p + static_cast<size_t>(i / kLanes) * stride + i % kLanes;
    for (int32_t k = 0; k < dim_; ++k) {
      const float v = s > 0.0f ? std::nearbyint(row[k] / s) : 0.0f;
      const float c = std::clamp(v, -127.0f, 127.0f);
      col[static_cast<size_t>(k) * kLanes] = static_cast<int8_t>(c);
      // The actual quantisation error (about s / 2; more only for tiny, subnormal scales).
      max_quant_err_ = std::max(
          max_quant_err_, std::fabs(static_cast<double>(row[k]) - static_cast<double>(s) * c));
    }
  }
}

PackedDotHead::~PackedDotHead() {
  free_bytes(panels_);
  free_bytes(bias_);
  free_bytes(scale_);
}

int64_t PackedDotHead::bytes() const {
  const int64_t slots = static_cast<int64_t>(blocks_) * kLanes;
  const int64_t w = precision_ == HeadPrecision::Fp32 ? 4 : 1;
  return slots * dim_ * w + slots * 4 * (scale_ != nullptr ? 2 : 1);
}

void PackedDotHead::score(int32_t n, const float* const* q, float* const* out) const {
  if (n <= 0) return;
  if (precision_ == HeadPrecision::Fp32) {
    const Tile<float> t{static_cast<const float*>(panels_), bias_, nullptr, dim_, n_};
    score_all(t, blocks_, n, q, out);
  } else {
    const Tile<int8_t> t{static_cast<const int8_t*>(panels_), bias_, scale_, dim_, n_};
    score_all(t, blocks_, n, q, out);
  }
}

double PackedDotHead::error_bound(const float* q) const {
  if (precision_ == HeadPrecision::Fp32) return 0.0;
  // With s_i the item's scale, m_ik its int8 weights, e = max |w_ik - s_i m_ik| (measured
  // when packing: about s_i / 2) and g = dim u / (1 - dim u) (u = 2^-24) bounding a float
  // fused multiply-add chain of dim terms relative to the sum of the terms' magnitudes:
  //   quantisation          |sum q w - s sum q m|        <= e |q|_1
  //   the int8 pass chain   s |acc - sum q m|             <= g 127 max(s) |q|_1
  //   the exact chain       |acc' - sum q w|              <= g max|w| |q|_1
  //   the final fma / add   one rounding each             <= u (|a| + |e|)
  // and |a|, |e| <= 1.01 (|q|_1 max|w| + max|bias|); plus the absolute error of subnormal
  // products (2^-149 each). Summed, with 1% to spare for this computation itself.
  double q1 = 0.0;
  for (int32_t k = 0; k < dim_; ++k) q1 += std::fabs(static_cast<double>(q[k]));
  if (!std::isfinite(q1)) return std::numeric_limits<double>::infinity();
  const double g = dim_ * kUnit / (1.0 - dim_ * kUnit);
  const double chains = q1 * (max_quant_err_ + g * (127.0 * max_scale_ + max_abs_w_));
  const double mag = 1.01 * (q1 * max_abs_w_ + max_abs_bias_);
  const double tiny = (2.0 * dim_ + 4.0) * std::numeric_limits<float>::denorm_min();
  return 1.01 * (chains + 2.0 * kUnit * mag + tiny);
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

std::vector<std::pair<int32_t, float>> PackedDotHead::top_k(const float* q, float* row, int32_t k,
                                                            const TopKFilter& filter,
                                                            int64_t* rescored) const {
  if (rescored != nullptr) *rescored = 0;
  // The first pass's own top k (this also marks the excluded and forbidden items NaN).
  std::vector<std::pair<int32_t, float>> approx = select_top_k(row, n_, k, filter);
  if (precision_ == HeadPrecision::Fp32 || approx.empty()) return approx;
  // Let T be those k items, a_k the k-th best first-pass score and R the error bound. Each
  // t in T has exact(t) >= a(t) - R >= a_k - R, so the k-th best exact score is >= a_k - R,
  // and an item of the true top k has exact(i) >= a_k - R, hence a(i) >= a_k - 2R. So the
  // items with a(i) >= a_k - 2R contain the true top k (ties by index included); with
  // fewer than k eligible items, all of them are candidates.
  const double r = error_bound(q);
  float threshold = -std::numeric_limits<float>::infinity();
  if (static_cast<int32_t>(approx.size()) == k && std::isfinite(r)) {
    const double t = static_cast<double>(approx.back().second) - 2.0 * r;
    // Rounded down, so that the float comparison keeps every item the real one keeps.
    threshold = std::nextafter(static_cast<float>(t), -std::numeric_limits<float>::infinity());
    if (static_cast<double>(threshold) > t)
      threshold = std::nextafter(threshold, -std::numeric_limits<float>::infinity());
  }
  thread_local std::vector<int32_t> cand;
  thread_local std::vector<float> exact_scores;
  cand.clear();
  auto keep = [&](int32_t i) {
    const float a = row[i];
    if (!std::isnan(a) && a >= threshold) cand.push_back(i);
  };
  if (filter.has_allowed) {
    for (int32_t i : filter.allowed)
      if (i >= 0 && i < n_) keep(i);
  } else {
    int32_t i = 0;
    for (; i + kLanes <= n_; i += kLanes) {
      bool any = false;
      for (int j = 0; j < kLanes; ++j) any |= row[i + j] >= threshold;
      if (any)
        for (int j = 0; j < kLanes; ++j) keep(i + j);
    }
    for (; i < n_; ++i) keep(i);
  }
  exact_scores.resize(cand.size());
  exact(q, cand, exact_scores.data());
  if (rescored != nullptr) *rescored = static_cast<int64_t>(cand.size());
  std::vector<std::pair<int32_t, float>> all;
  all.reserve(cand.size());
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (size_t c = 0; c < cand.size(); ++c) {
    const float e = exact_scores[c];
    if (std::isnan(e) || (filter.drop_neg_inf && e == neg_inf)) continue;
    all.emplace_back(cand[c], e);
  }
  const size_t keep_n = std::min(all.size(), static_cast<size_t>(k));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep_n), all.end(),
                    Better{});
  all.resize(keep_n);
  return all;
}

}  // namespace seqrec::serve
