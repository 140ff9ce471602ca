#include "serve/dot_head.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <string>
#include <type_traits>

#include "seqrec/error.hpp"
#include "serve/dot_head_kernels.hpp"

namespace seqrec::serve {

using detail::kLanes;
using detail::kNegInf;
using detail::lower_threshold;
using detail::QueryBf16;
using detail::QueryI8;
using detail::RowSelect;
using detail::TileBf16;
using detail::TileF32;
using detail::TileI8;

namespace {

constexpr double kUnit = 1.0 / 16777216.0;  // float unit roundoff, 2^-24

void* alloc_bytes(size_t n) {
  void* p = ::operator new (n, std::align_val_t{64});
  std::memset(p, 0, n);
  return p;
}

void free_bytes(void* p) {
  if (p != nullptr) ::operator delete (p, std::align_val_t{64});
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

/// x (finite) rounded to bfloat16, to nearest even; a value that would round to infinity is
/// truncated to the largest finite bf16 instead, and one below the smallest normal float
/// becomes a signed zero (vdpbf16ps reads denormal bf16 as zero).
uint16_t to_bf16(float x) {
  const uint32_t b = std::bit_cast<uint32_t>(x);
  auto h = static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
  if ((h & 0x7f80u) == 0x7f80u) h = static_cast<uint16_t>(b >> 16);
  if ((h & 0x7f80u) == 0) h &= 0x8000u;
  return h;
}

float from_bf16(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

/// q (dim floats) rounded to bf16 for the bf16 pass: dim2 / 2 words of 2 (k = 2g in the low
/// half), and the L2 norms of q, of its rounding and of the rounding error. False (and a
/// zero query) when q is not finite.
struct Bf16Query {
  double l2 = 0.0, rounded_l2 = 0.0, err_l2 = 0.0;
};
bool to_bf16_query(const float* q, int32_t dim, int32_t dim2, uint32_t* words, Bf16Query* norms) {
  bool finite = true;
  for (int32_t k = 0; k < dim; ++k) finite = finite && std::isfinite(q[k]);
  double l2 = 0.0, rl2 = 0.0, el2 = 0.0;
  for (int32_t g = 0; g < dim2 / 2; ++g) {
    uint32_t w = 0;
    for (int c = 0; c < 2; ++c) {
      const int32_t k = 2 * g + c;
      if (k >= dim || !finite) continue;
      const uint16_t h = to_bf16(q[k]);
      const double x = q[k], r = from_bf16(h);
      l2 += x * x;
      rl2 += r * r;
      el2 += (x - r) * (x - r);
      w |= static_cast<uint32_t>(h) << (16 * c);
    }
    words[g] = w;
  }
  if (norms != nullptr) *norms = {std::sqrt(l2), std::sqrt(rl2), std::sqrt(el2)};
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
  if (s == "bf16") return HeadPrecision::Bf16;
  throw InputError("scoring precision must be fp32, int8 or bf16, got '" + s + "'");
}

const char* head_precision_name(HeadPrecision p) {
  switch (p) {
    case HeadPrecision::Fp32:
      return "fp32";
    case HeadPrecision::Int8:
      return "int8";
    case HeadPrecision::Bf16:
      return "bf16";
  }
  return "?";
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
  if (precision_ == HeadPrecision::Bf16) {
    // k padded to even; in a block, the weights k = 2g, 2g + 1 of item j are the low and
    // high half of word 16 g + j.
    dim2_ = (dim_ + 1) / 2 * 2;
    const size_t words = static_cast<size_t>(dim2_ / 2) * kLanes;
    auto* p = static_cast<uint32_t*>(
        alloc_bytes(static_cast<size_t>(blocks_) * words * sizeof(uint32_t)));
    panels_ = p;
    for (int32_t i = 0; i < n_; ++i) {
      const float* row = head.items + static_cast<size_t>(i) * dim_;
      uint32_t* blk = p + static_cast<size_t>(i / kLanes) * words + i % kLanes;
      double l2 = 0.0, bl2 = 0.0, el2 = 0.0;
      for (int32_t k = 0; k < dim_; ++k) {
        if (!std::isfinite(row[k]))
          throw InputError("dot-product head: item " + std::to_string(i) +
                           " has a non-finite weight");
        const uint16_t h = to_bf16(row[k]);
        blk[static_cast<size_t>(k / 2) * kLanes] |= static_cast<uint32_t>(h) << (16 * (k % 2));
        const double w = row[k], r = from_bf16(h);
        l2 += w * w;
        bl2 += r * r;
        el2 += (w - r) * (w - r);
      }
      max_l2_ = std::max(max_l2_, std::sqrt(l2));
      max_bf_l2_ = std::max(max_bf_l2_, std::sqrt(bl2));
      max_err_l2_ = std::max(max_err_l2_, std::sqrt(el2));
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
  if (precision_ == HeadPrecision::Bf16) return slots * dim2_ * 2 + slots * 4;
  return slots * dim4_ + slots * 4 * 3;
}

void PackedDotHead::score(int32_t n, const float* const* q, float* const* out) const {
  if (n <= 0) return;
  if (precision_ == HeadPrecision::Fp32) {
    const TileF32 t{static_cast<const float*>(panels_), bias_, dim_, n_};
    detail::head_pass(&t, nullptr, blocks_, n, q, nullptr, out, nullptr);
    return;
  }
  if (precision_ == HeadPrecision::Bf16) {
    const size_t per = static_cast<size_t>(dim2_ / 2);
    std::vector<uint32_t> words(static_cast<size_t>(n) * per);
    std::vector<QueryBf16> qs(static_cast<size_t>(n));
    for (int32_t r = 0; r < n; ++r) {
      uint32_t* w = words.data() + static_cast<size_t>(r) * per;
      to_bf16_query(q[r], dim_, dim2_, w, nullptr);
      qs[static_cast<size_t>(r)].u = w;
    }
    const TileBf16 t{static_cast<const uint32_t*>(panels_), bias_, dim2_, n_};
    detail::head_pass_bf16(&t, blocks_, n, qs.data(), out, nullptr);
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
  detail::head_pass(nullptr, &t, blocks_, n, nullptr, qs.data(), out, nullptr);
}

void PackedDotHead::select(int32_t n, const HeadQuery* const* queries) const {
  if (n <= 0) return;
  thread_local std::vector<RowSelect> rows;
  thread_local std::vector<const float*> qf;
  thread_local std::vector<QueryI8> qi;
  thread_local std::vector<QueryBf16> qb;
  thread_local std::vector<uint32_t> words;
  if (rows.size() < static_cast<size_t>(n)) rows.resize(static_cast<size_t>(n));
  for (int32_t r = 0; r < n; ++r) rows[static_cast<size_t>(r)].start(*queries[r], n_);
  if (precision_ == HeadPrecision::Fp32) {
    qf.clear();
    for (int32_t r = 0; r < n; ++r) qf.push_back(queries[r]->q);
    const TileF32 t{static_cast<const float*>(panels_), bias_, dim_, n_};
    detail::head_pass(&t, nullptr, blocks_, n, qf.data(), nullptr, nullptr, rows.data());
  } else if (precision_ == HeadPrecision::Bf16) {
    const size_t per = static_cast<size_t>(dim2_ / 2);
    words.resize(static_cast<size_t>(n) * per);
    qb.resize(static_cast<size_t>(n));
    for (int32_t r = 0; r < n; ++r) {
      uint32_t* w = words.data() + static_cast<size_t>(r) * per;
      qb[static_cast<size_t>(r)].u = w;
      // Not finite: an infinite bound, every item kept (as for Int8).
      if (!to_bf16_query(queries[r]->q, dim_, dim2_, w, nullptr))
        rows[static_cast<size_t>(r)].keep = n_;
    }
    const TileBf16 t{static_cast<const uint32_t*>(panels_), bias_, dim2_, n_};
    detail::head_pass_bf16(&t, blocks_, n, qb.data(), nullptr, rows.data());
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
    detail::head_pass(nullptr, &t, blocks_, n, nullptr, qi.data(), nullptr, rows.data());
  }
  for (int32_t r = 0; r < n; ++r) rows[static_cast<size_t>(r)].compact();
}

double PackedDotHead::error_bound(const float* q) const {
  if (precision_ == HeadPrecision::Fp32) return 0.0;
  if (precision_ == HeadPrecision::Bf16) return error_bound_bf16(q);
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

double PackedDotHead::error_bound_bf16(const float* q) const {
  // The pass computes a = fl(A + b_i), A the float sum, in some order (vdpbf16ps' or two
  // fmas a pair: the bound holds for any), of the exact products p_k = qb_k wb_k of the
  // bf16 roundings qb of q and wb of w_i; the exact score is e = fl(C + b_i), C the fma
  // chain of q_k w_ik. With S = sum q_k w_ik, Sb = sum p_k, g = n u / (1 - n u) for a
  // float sum of n = dim2 + 2 terms (u = 2^-24):
  //   |S - Sb| <= |sum q_k (w_k - wb_k)| + |sum (q_k - qb_k) wb_k|
  //            <= |q|_2 |w_i - wb_i|_2 + |q - qb|_2 |wb_i|_2          (Cauchy-Schwarz)
  //   |A - Sb| <= g sum |p_k| <= g |qb|_2 |wb_i|_2,  |C - S| <= g |q|_2 |w_i|_2
  //   the two bias adds                               <= 2 u mag
  // with the item norms' maxima measured when packing, plus the absolute error of
  // products and sums flushed to zero (vdpbf16ps: at most the smallest normal float each).
  // Summed, with 1% to spare for this computation itself.
  std::vector<uint32_t> words(static_cast<size_t>(dim2_ / 2));
  Bf16Query nq;
  if (!to_bf16_query(q, dim_, dim2_, words.data(), &nq) || !std::isfinite(nq.l2))
    return std::numeric_limits<double>::infinity();
  const double terms = dim2_ + 2.0;
  const double g = terms * kUnit / (1.0 - terms * kUnit);
  const double s_exact = nq.l2 * max_l2_, s_pass = nq.rounded_l2 * max_bf_l2_;
  const double mag = 1.01 * (std::max(s_exact, s_pass) + max_abs_bias_);
  const double tiny = (2.0 * dim2_ + 8.0) * std::numeric_limits<float>::min();
  return 1.01 * (nq.l2 * max_err_l2_ + nq.err_l2 * max_bf_l2_ + g * (s_exact + s_pass) +
                 2.0 * kUnit * mag + tiny);
}

void PackedDotHead::exact(const float* q, std::span<const int32_t> items, float* out) const {
  detail::head_exact(items_, item_bias_, n_, dim_, q, items.data(), items.size(), out);
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
