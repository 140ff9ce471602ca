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
  float f = static_cast<float>(t);
  while (static_cast<double>(f) > t) f = std::nextafter(f, kNegInf);
  return f;
}

template <class W>
struct Tile {
  const W* panels;
  const float* bias;
  const float* scale;  // Int8 only
  int32_t dim;
  int32_t n;  // items
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

  void start(const HeadQuery& q) {
    thr = kNegInf;
    keep = std::max<int32_t>(1, q.keep);
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

inline __m512 load16(const float* p) {
  return _mm512_load_ps(p);
}
inline __m512 load16(const int8_t* p) {
  return _mm512_cvtepi32_ps(
      _mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(p))));
}

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

/// R queries x K consecutive blocks starting at block b: acc[u][r] over k, then the bias
/// (and the item's scale for int8), handed to the sink.
template <class W, class Sink, int R, int K>
inline void tile(const Tile<W>& t, const float* const* q, const Sink& sink, int32_t b) {
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
    emit<R>(sink, first, t.n - first, res);
  }
}

template <class W, class Sink, int R>
void rows(const Tile<W>& t, const float* const* q, const Sink& sink, int32_t b0, int32_t b1) {
  int32_t b = b0;
  for (; b + 2 <= b1; b += 2) tile<W, Sink, R, 2>(t, q, sink, b);
  for (; b < b1; ++b) tile<W, Sink, R, 1>(t, q, sink, b);
}

#else

template <int R>
inline void emit(const StoreSink& s, int32_t first, int32_t left, int r, const float* res) {
  for (int j = 0; j < std::min(kLanes, left); ++j) s.out[r][first + j] = res[j];
}

template <int R>
inline void emit(const SelectSink& s, int32_t first, int32_t left, int r, const float* res) {
  uint32_t m = 0;
  for (int j = 0; j < std::min(kLanes, left); ++j)
    if (res[j] >= s.rows[r].thr) m |= 1u << j;
  if (m != 0) s.rows[r].offer(first, res, m);
}

/// Portable version with the same arithmetic (one fused multiply-add per term, in order).
template <class W, class Sink, int R>
void rows(const Tile<W>& t, const float* const* q, const Sink& sink, int32_t b0, int32_t b1) {
  const size_t stride = static_cast<size_t>(t.dim) * kLanes;
  for (int32_t b = b0; b < b1; ++b) {
    const W* p = t.panels + static_cast<size_t>(b) * stride;
    const int32_t first = b * kLanes;
    for (int r = 0; r < R; ++r) {
      float acc[kLanes] = {};
      for (int32_t k = 0; k < t.dim; ++k) {
        const float x = q[r][k];
        const W* w = p + static_cast<size_t>(k) * kLanes;
        for (int j = 0; j < kLanes; ++j) acc[j] = std::fma(x, static_cast<float>(w[j]), acc[j]);
      }
      float res[kLanes];
      for (int j = 0; j < kLanes; ++j) {
        if constexpr (std::is_same_v<W, int8_t>)
          res[j] = std::fma(acc[j], t.scale[first + j], t.bias[first + j]);
        else
          res[j] = acc[j] + t.bias[first + j];
      }
      emit<R>(sink, first, t.n - first, r, res);
    }
  }
}

#endif

inline StoreSink offset(const StoreSink& s, int32_t r) {
  return {s.out + r};
}
inline SelectSink offset(const SelectSink& s, int32_t r) {
  return {s.rows + r};
}

template <class W, class Sink>
void rows_any(int32_t r, const Tile<W>& t, const float* const* q, const Sink& sink, int32_t b0,
              int32_t b1) {
  switch (r) {
    case 1:
      return rows<W, Sink, 1>(t, q, sink, b0, b1);
    case 2:
      return rows<W, Sink, 2>(t, q, sink, b0, b1);
    case 3:
      return rows<W, Sink, 3>(t, q, sink, b0, b1);
    case 4:
      return rows<W, Sink, 4>(t, q, sink, b0, b1);
    case 5:
      return rows<W, Sink, 5>(t, q, sink, b0, b1);
    case 6:
      return rows<W, Sink, 6>(t, q, sink, b0, b1);
    case 7:
      return rows<W, Sink, 7>(t, q, sink, b0, b1);
    default:
      return rows<W, Sink, kRows>(t, q, sink, b0, b1);
  }
}

template <class W, class Sink>
void pass(const Tile<W>& t, int32_t blocks, int32_t n, const float* const* q, const Sink& sink) {
  // Items in chunks of about 256 KB of panels, so that a chunk stays in L2 while every
  // group of kRows queries goes over it (one pass over the matrix from memory per batch).
  const int64_t block_bytes = static_cast<int64_t>(t.dim) * kLanes * sizeof(W);
  const int32_t chunk = std::max<int32_t>(2, static_cast<int32_t>((256 * 1024) / block_bytes));
  for (int32_t b0 = 0; b0 < blocks; b0 += chunk) {
    const int32_t b1 = std::min(blocks, b0 + chunk);
    for (int32_t r = 0; r < n; r += kRows)
      rows_any(std::min(kRows, n - r), t, q + r, offset(sink, r), b0, b1);
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
  const StoreSink sink{out};
  if (precision_ == HeadPrecision::Fp32) {
    const Tile<float> t{static_cast<const float*>(panels_), bias_, nullptr, dim_, n_};
    pass(t, blocks_, n, q, sink);
  } else {
    const Tile<int8_t> t{static_cast<const int8_t*>(panels_), bias_, scale_, dim_, n_};
    pass(t, blocks_, n, q, sink);
  }
}

void PackedDotHead::select(int32_t n, const HeadQuery* const* queries) const {
  if (n <= 0) return;
  thread_local std::vector<RowSelect> rows;
  thread_local std::vector<const float*> qs;
  if (rows.size() < static_cast<size_t>(n)) rows.resize(static_cast<size_t>(n));
  qs.clear();
  for (int32_t r = 0; r < n; ++r) {
    rows[static_cast<size_t>(r)].start(*queries[r]);
    qs.push_back(queries[r]->q);
  }
  const SelectSink sink{rows.data()};
  if (precision_ == HeadPrecision::Fp32) {
    const Tile<float> t{static_cast<const float*>(panels_), bias_, nullptr, dim_, n_};
    pass(t, blocks_, n, qs.data(), sink);
  } else {
    const Tile<int8_t> t{static_cast<const int8_t*>(panels_), bias_, scale_, dim_, n_};
    pass(t, blocks_, n, qs.data(), sink);
  }
  for (int32_t r = 0; r < n; ++r) rows[static_cast<size_t>(r)].compact();
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
