#include "serve/ann_index.hpp"

// hnswlib.h defines non-inline functions: this is the only file that includes it.
#include <hnswlib/hnswlib.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <mutex>

#include "io/model_file.hpp"
#include "seqrec/error.hpp"
#include "serve/session_codec.hpp"

namespace seqrec {

std::vector<ParamSpec> ann_option_specs() {
  const AnnOptions d;
  return {
      param_choice("retrieval", "exact", {"exact", "ann"},
                   "GRU4Rec/SASRec/DSSM: exact (every item scored) or ann (candidates from an "
                   "HNSW index, rescored exactly; catalogues below --ann-min-items stay exact)"),
      param_int("ann_m", std::to_string(d.m), 2, 128, "ANN: HNSW links per node"),
      param_int("ann_ef_construction", std::to_string(d.ef_construction), 10, 4096,
                "ANN: candidate list while building (higher = better index, slower build)"),
      param_int("ann_ef_search", std::to_string(d.ef_search), 10, 100000,
                "ANN: candidate list while searching (higher = better recall, slower)"),
      param_int("ann_candidates", std::to_string(d.candidates), 1, 1000,
                "ANN: candidates per request = this x (K + excluded + forbidden items), at "
                "least ann_ef_search, all rescored exactly"),
      param_int("ann_min_items", std::to_string(d.min_items), 1, 2000000000,
                "ANN: smaller catalogues are scored exactly (with a notice)"),
      param_string("ann_index", d.index_file,
                   "ANN: index file (read when present and matching the model, else built and "
                   "written there; a damaged or foreign one is refused); empty = build at "
                   "load, keep in memory"),
  };
}

AnnOptions to_ann_options(const Config& c) {
  AnnOptions o;
  o.enabled = c.get_string("retrieval") == "ann";
  o.m = static_cast<int32_t>(c.get_int("ann_m"));
  o.ef_construction = static_cast<int32_t>(c.get_int("ann_ef_construction"));
  o.ef_search = static_cast<int32_t>(c.get_int("ann_ef_search"));
  o.candidates = static_cast<int32_t>(c.get_int("ann_candidates"));
  o.min_items = static_cast<int32_t>(c.get_int("ann_min_items"));
  o.index_file = c.get_string("ann_index");
  return o;
}

void check_ann_options(const AnnOptions& o, const std::string& where) {
  const std::vector<ParamSpec> specs = ann_option_specs();
  auto check = [&](const std::string& name, int64_t value) {
    for (const ParamSpec& s : specs)
      if (s.name == name) {
        canonical_value(s, std::to_string(value), where);
        return;
      }
    throw Error("internal: no ANN option '" + name + "'");
  };
  check("ann_m", o.m);
  check("ann_ef_construction", o.ef_construction);
  check("ann_ef_search", o.ef_search);
  check("ann_candidates", o.candidates);
  check("ann_min_items", o.min_items);
}

}  // namespace seqrec

namespace seqrec::serve {

namespace {

constexpr char kMagic[8] = {'S', 'Q', 'R', 'C', 'A', 'N', 'N', '\0'};
constexpr char kEnd[8] = {'S', 'Q', 'R', 'C', 'E', 'N', 'D', '\0'};
// Version 2: the graph kind (0 inner product, 1 L2 after the reduction) in the u32 after
// ef_construction, and vectors of dim + 2 floats padded to 16 (version 1: dim + 1, "ip").
constexpr uint32_t kVersion = 2;
constexpr size_t kHead = 8 + 4 + 4 + 8 + 8 + 4 + 4 + 4 + 4 + 8 + 8, kTail = 8 + 8;

template <class T>
void put(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <class T>
T get(const std::string& in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  return v;
}

/// A private temporary file for hnswlib's path-based save/load, removed on destruction.
struct TempFile {
  std::string path;
  TempFile() {
    static std::atomic<int> counter{0};
    path = (std::filesystem::temp_directory_path() /
            ("seqrec-ann-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
               .string();
  }
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

}  // namespace

struct AnnIndex::Impl {
  /// Searches (and an "ip" graph's inserts) use `space`; an "l2" graph inserts with `l2`.
  std::unique_ptr<hnswlib::InnerProductSpace> space;
  std::unique_ptr<hnswlib::L2Space> l2;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> hnsw;
  /// The items of largest |[v, b]| (at most kOutliers, largest first with their squared
  /// norms): always candidates. The reduction puts them far from the bulk of the catalogue
  /// (their extra coordinate is near 0, everyone else's near R), so the L2 graph links them
  /// poorly, yet a large norm or a dominant bias makes them the best items for many queries.
  std::vector<std::pair<double, int32_t>> outliers;
  static constexpr size_t kOutliers = 32;
  void note_norm(double sq, int32_t i) {
    if (outliers.size() == kOutliers && sq <= outliers.back().first) return;
    auto at = std::upper_bound(outliers.begin(), outliers.end(), std::make_pair(sq, i),
                               [](const auto& a, const auto& b) { return a.first > b.first; });
    outliers.insert(at, {sq, i});
    if (outliers.size() > kOutliers) outliers.pop_back();
  }
  /// The distance of inserts (L2 for an "l2" graph), then back to the inner product.
  void insert_with_l2(bool on) {
    hnswlib::SpaceInterface<float>* s =
        on ? static_cast<hnswlib::SpaceInterface<float>*>(l2.get()) : space.get();
    hnsw->fstdistfunc_ = s->get_dist_func();
    hnsw->dist_func_param_ = s->get_dist_func_param();
  }
};

namespace {
/// Floats per stored vector: [v, b, extra], padded to a multiple of 16 so that hnswlib uses
/// its widest distance kernel.
int32_t padded_dim(int32_t dim) {
  return (dim + 2 + 15) / 16 * 16;
}
}  // namespace

void AnnIndex::augment(const float* v, float b, float* out) const {
  double sq = static_cast<double>(b) * b;
  for (int32_t k = 0; k < dim_; ++k) {
    out[k] = v[k];
    sq += static_cast<double>(v[k]) * v[k];
  }
  out[dim_] = b;
  for (int32_t k = dim_ + 1; k < padded_; ++k) out[k] = 0.0f;
  // "l2": the coordinate that puts every item at norm R (0 for an item added later beyond
  // R: it is still searched by its exact inner product, only linked less well).
  if (l2_) out[dim_ + 1] = static_cast<float>(std::sqrt(std::max(0.0, bound_ * bound_ - sq)));
}

AnnIndex::AnnIndex(const float* items, const float* bias, int32_t n, int32_t dim,
                   const AnnOptions& o, int threads)
    : impl_(std::make_unique<Impl>()), opt_(o), dim_(dim) {
  check_ann_options(o, "ANN index");
  if (n < 1 || dim < 1)
    throw InputError("ANN index: needs at least one item and one dimension (got " +
                     std::to_string(n) + " items of " + std::to_string(dim) + ")");
  padded_ = padded_dim(dim);
  l2_ = true;  // the only kind this version builds (seqrec/ann.hpp says why)
  double max_sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double sq = bias ? static_cast<double>(bias[i]) * bias[i] : 0.0;
    for (int32_t k = 0; k < dim; ++k) {
      const float w = items[i * dim + k];
      if (!std::isfinite(w))
        throw InputError("ANN index: item " + std::to_string(i) + " has a non-finite weight");
      sq += static_cast<double>(w) * w;
    }
    if (bias && !std::isfinite(bias[i]))
      throw InputError("ANN index: item " + std::to_string(i) + " has a non-finite bias");
    max_sq = std::max(max_sq, sq);
    impl_->note_norm(sq, static_cast<int32_t>(i));
  }
  bound_ = std::sqrt(max_sq);  // R of the "l2" graph; recorded in the file
  impl_->space = std::make_unique<hnswlib::InnerProductSpace>(static_cast<size_t>(padded_));
  if (l2_) impl_->l2 = std::make_unique<hnswlib::L2Space>(static_cast<size_t>(padded_));
  impl_->hnsw = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      impl_->space.get(), static_cast<size_t>(n), static_cast<size_t>(o.m),
      static_cast<size_t>(o.ef_construction), 100);
  if (l2_) impl_->insert_with_l2(true);
  impl_->hnsw->setEf(static_cast<size_t>(o.ef_search));
  auto insert = [&](int64_t i, std::vector<float>& buf) {
    augment(items + i * dim, bias ? bias[i] : 0.0f, buf.data());
    impl_->hnsw->addPoint(buf.data(), static_cast<hnswlib::labeltype>(i));
  };
  std::vector<float> first(static_cast<size_t>(padded_));
  insert(0, first);
  std::exception_ptr err;
  std::mutex err_mu;
  const int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
  {
    std::vector<float> buf(static_cast<size_t>(padded_));
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 1; i < n; ++i) {
      try {
        insert(i, buf);
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (!err) err = std::current_exception();
      }
    }
  }
  if (err) std::rethrow_exception(err);
  // Searched by the inner product: for every item within R the same order as the L2
  // distance, and the exact score order for items added beyond R.
  if (l2_) impl_->insert_with_l2(false);
}

AnnIndex::~AnnIndex() = default;

int32_t AnnIndex::n_items() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  return static_cast<int32_t>(impl_->hnsw->cur_element_count);
}

int64_t AnnIndex::bytes() const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  const auto& h = *impl_->hnsw;
  int64_t b =
      static_cast<int64_t>(h.max_elements_) * static_cast<int64_t>(h.size_data_per_element_);
  // Upper levels: a node has level l with probability exp(-l / mult); each level holds
  // size_links_per_element_ bytes.
  b += static_cast<int64_t>(static_cast<double>(h.cur_element_count) * h.size_links_per_element_ /
                            static_cast<double>(std::max<size_t>(h.M_, 2) - 1));
  return b;
}

void AnnIndex::search(const float* q, int32_t count, std::vector<int32_t>& out) const {
  out.clear();
  if (count < 1) return;
  thread_local std::vector<float> y;
  y.assign(static_cast<size_t>(padded_), 0.0f);
  std::memcpy(y.data(), q, sizeof(float) * static_cast<size_t>(dim_));
  y[static_cast<size_t>(dim_)] = 1.0f;  // the bias coordinate
  std::shared_lock<std::shared_mutex> lock(mu_);
  auto pq = impl_->hnsw->searchKnn(y.data(), static_cast<size_t>(count));
  out.resize(pq.size());
  // The queue pops the farthest first.
  for (size_t j = pq.size(); j-- > 0; pq.pop()) out[j] = static_cast<int32_t>(pq.top().second);
  // The outliers the graph may not reach, after the graph's candidates (no duplicates).
  const size_t found = out.size();
  for (const auto& [sq, i] : impl_->outliers)
    if (std::find(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(found), i) ==
        out.begin() + static_cast<std::ptrdiff_t>(found))
      out.push_back(i);
}

void AnnIndex::add(const float* vec, float bias) {
  for (int32_t k = 0; k < dim_; ++k)
    if (!std::isfinite(vec[k])) throw InputError("ANN index: the new item has a non-finite weight");
  if (!std::isfinite(bias)) throw InputError("ANN index: the new item has a non-finite bias");
  std::vector<float> buf(static_cast<size_t>(padded_));
  augment(vec, bias, buf.data());
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto& h = *impl_->hnsw;
  if (h.cur_element_count >= h.max_elements_)
    h.resizeIndex(std::max<size_t>(h.max_elements_ + 1, h.max_elements_ + h.max_elements_ / 8));
  if (l2_) impl_->insert_with_l2(true);  // no search runs: the lock is exclusive
  try {
    h.addPoint(buf.data(), static_cast<hnswlib::labeltype>(h.cur_element_count));
  } catch (...) {
    if (l2_) impl_->insert_with_l2(false);
    throw;
  }
  if (l2_) impl_->insert_with_l2(false);
  double sq = static_cast<double>(bias) * bias;
  for (int32_t k = 0; k < dim_; ++k) sq += static_cast<double>(vec[k]) * vec[k];
  impl_->note_norm(sq, static_cast<int32_t>(h.cur_element_count) - 1);
}

void AnnIndex::set_search_options(int32_t ef_search, int32_t candidates) {
  AnnOptions o = opt_;
  o.ef_search = ef_search;
  o.candidates = candidates;
  check_ann_options(o, "ANN index");
  std::unique_lock<std::shared_mutex> lock(mu_);
  opt_ = o;
  impl_->hnsw->setEf(static_cast<size_t>(ef_search));
}

void AnnIndex::save(const std::string& path, uint64_t model_fp) const {
  std::string payload;
  {
    TempFile tmp;
    {
      std::shared_lock<std::shared_mutex> lock(mu_);
      impl_->hnsw->saveIndex(tmp.path);
    }
    std::ifstream f(tmp.path, std::ios::binary);
    if (!f) throw IoError("cannot write the ANN index (temporary file " + tmp.path + ")");
    payload.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  std::string out(kMagic, 8);
  put(out, kVersion);
  put(out, uint32_t{0});
  put(out, model_fp);
  put(out, static_cast<uint64_t>(n_items()));
  put(out, static_cast<uint32_t>(dim_));
  put(out, static_cast<uint32_t>(opt_.m));
  put(out, static_cast<uint32_t>(opt_.ef_construction));
  put(out, static_cast<uint32_t>(l2_ ? 1 : 0));
  put(out, bound_);
  put(out, static_cast<uint64_t>(payload.size()));
  out += payload;
  put(out, model_file::fnv1a64(out.data(), out.size()));
  out.append(kEnd, 8);
  write_file_atomically(path, out);
}

std::unique_ptr<AnnIndex> AnnIndex::load(const std::string& path, uint64_t model_fp, int32_t n,
                                         int32_t dim, const AnnOptions& o) {
  check_ann_options(o, "ANN index");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError("cannot read the ANN index '" + path + "'");
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) {
    throw InputError(path + ": " + why +
                     " (an ANN index of seqrec --ann-index; delete it to have it rebuilt)");
  };
  if (data.size() < 8 || std::memcmp(data.data(), kMagic, 8) != 0) bad("not a seqrec ANN index");
  if (data.size() < kHead + kTail || std::memcmp(data.data() + data.size() - 8, kEnd, 8) != 0)
    bad("truncated ANN index (no end marker)");
  const uint32_t version = get<uint32_t>(data, 8);
  if (version != kVersion)
    bad("ANN index format version " + std::to_string(version) + ", this seqrec reads " +
        std::to_string(kVersion));
  if (get<uint64_t>(data, data.size() - kTail) !=
      model_file::fnv1a64(data.data(), data.size() - kTail))
    bad("corrupt ANN index (checksum mismatch)");
  if (get<uint64_t>(data, 16) != model_fp)
    bad("the index was built for another model (fingerprint differs)");
  const uint64_t items = get<uint64_t>(data, 24);
  const uint32_t d = get<uint32_t>(data, 32), m = get<uint32_t>(data, 36),
                 efc = get<uint32_t>(data, 40);
  if (items != static_cast<uint64_t>(n) || d != static_cast<uint32_t>(dim))
    bad("the index holds " + std::to_string(items) + " items of dimension " + std::to_string(d) +
        ", the model " + std::to_string(n) + " of " + std::to_string(dim));
  const uint32_t kind = get<uint32_t>(data, 44);
  if (kind > 1) bad("damaged ANN index (graph kind)");
  if (kind != 1) bad("the index has an inner-product graph; this seqrec builds L2 graphs");
  if (m != static_cast<uint32_t>(o.m) || efc != static_cast<uint32_t>(o.ef_construction))
    bad("the index was built with M=" + std::to_string(m) +
        ", ef_construction=" + std::to_string(efc) + "; asked for M=" + std::to_string(o.m) +
        ", ef_construction=" + std::to_string(o.ef_construction));
  const uint64_t psize = get<uint64_t>(data, kHead - 8);
  if (psize != data.size() - kHead - kTail) bad("damaged ANN index (payload size)");
  std::unique_ptr<AnnIndex> idx(new AnnIndex());
  idx->impl_ = std::make_unique<Impl>();
  idx->opt_ = o;
  idx->dim_ = dim;
  idx->padded_ = padded_dim(dim);
  idx->l2_ = kind == 1;
  idx->bound_ = get<double>(data, 48);
  if (!(idx->bound_ >= 0) || !std::isfinite(idx->bound_)) bad("damaged ANN index (norm)");
  idx->impl_->space =
      std::make_unique<hnswlib::InnerProductSpace>(static_cast<size_t>(idx->padded_));
  if (idx->l2_)
    idx->impl_->l2 = std::make_unique<hnswlib::L2Space>(static_cast<size_t>(idx->padded_));
  {
    TempFile tmp;
    {
      std::ofstream w(tmp.path, std::ios::binary);
      w.write(data.data() + kHead, static_cast<std::streamsize>(psize));
      if (!w) throw IoError("cannot read the ANN index (temporary file " + tmp.path + ")");
    }
    try {
      idx->impl_->hnsw =
          std::make_unique<hnswlib::HierarchicalNSW<float>>(idx->impl_->space.get(), tmp.path);
    } catch (const std::exception& e) {
      bad(std::string("damaged ANN index (") + e.what() + ")");
    }
  }
  auto& h = *idx->impl_->hnsw;
  if (h.cur_element_count != static_cast<size_t>(n) ||
      h.data_size_ != sizeof(float) * static_cast<size_t>(idx->padded_))
    bad("damaged ANN index (graph does not match its header)");
  h.setEf(static_cast<size_t>(o.ef_search));
  for (size_t i = 0; i < h.cur_element_count; ++i) {
    const float* x =
        reinterpret_cast<const float*>(h.getDataByInternalId(static_cast<uint32_t>(i)));
    double sq = 0.0;
    for (int32_t k = 0; k <= dim; ++k) sq += static_cast<double>(x[k]) * x[k];
    idx->impl_->note_norm(sq, static_cast<int32_t>(h.getExternalLabel(static_cast<uint32_t>(i))));
  }
  return idx;
}

std::optional<uint64_t> ann_index_file_fingerprint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (data.size() < kHead + kTail || std::memcmp(data.data(), kMagic, 8) != 0 ||
      std::memcmp(data.data() + data.size() - 8, kEnd, 8) != 0 ||
      get<uint32_t>(data, 8) != kVersion ||
      get<uint64_t>(data, data.size() - kTail) !=
          model_file::fnv1a64(data.data(), data.size() - kTail))
    return std::nullopt;
  return get<uint64_t>(data, 16);
}

std::unique_ptr<AnnIndex> obtain_ann_index(const DotProductHead& head, int32_t n, uint64_t model_fp,
                                           const AnnOptions& o, std::string* source,
                                           uint64_t replaced_fp) {
  bool stale = false;
  if (!o.index_file.empty() && std::filesystem::exists(o.index_file)) {
    // The index of the model being replaced (a retrained model reloaded with the same
    // --ann-index): rebuilt below and written over. Anything else is loaded, or refused.
    const std::optional<uint64_t> fp = replaced_fp != 0 && replaced_fp != model_fp
                                           ? ann_index_file_fingerprint(o.index_file)
                                           : std::nullopt;
    stale = fp && *fp == replaced_fp;
    if (!stale) {
      if (source) *source = "file";
      return AnnIndex::load(o.index_file, model_fp, n, head.dim, o);
    }
    std::fprintf(stderr,
                 "seqrec: note: %s holds the ANN index of the model being replaced; building "
                 "the new model's index and writing it there\n",
                 o.index_file.c_str());
  }
  auto idx = std::make_unique<AnnIndex>(head.items, head.bias, n, head.dim, o);
  if (!o.index_file.empty()) idx->save(o.index_file, model_fp);
  if (source) *source = stale ? "rebuilt" : "built";
  return idx;
}

bool ann_top_k(const AnnIndex& index, const PackedDotHead& head, const float* q, int32_t k,
               const TopKFilter& f, AnnScratch& sc, std::vector<std::pair<int32_t, float>>& out,
               int64_t* rescored, const PackedDotHead* added) {
  for (int32_t j = 0; j < head.dim(); ++j)
    if (!std::isfinite(q[j])) return false;
  // An index grown at run time may know items the head does not have yet: those wait.
  const int32_t nb = head.n_items();
  const int32_t n = std::min(nb + (added ? added->n_items() : 0), index.n_items());
  sc.excl.assign(f.excluded.begin(), f.excluded.end());
  std::sort(sc.excl.begin(), sc.excl.end());
  sc.excl.erase(std::unique(sc.excl.begin(), sc.excl.end()), sc.excl.end());
  const AnnOptions& o = index.options();
  const int64_t need = static_cast<int64_t>(k) + static_cast<int64_t>(sc.excl.size()) +
                       static_cast<int64_t>(f.forbidden.size());
  int64_t count = std::clamp<int64_t>(std::max<int64_t>(need * o.candidates, o.ef_search), 1, n);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  for (int attempt = 0; attempt < 3; ++attempt) {
    index.search(q, static_cast<int32_t>(count), sc.cand);
    const int64_t returned = static_cast<int64_t>(sc.cand.size());
    size_t w = 0;
    for (int32_t i : sc.cand) {
      if (i < 0 || i >= n) continue;
      if (std::binary_search(sc.excl.begin(), sc.excl.end(), i)) continue;
      if (std::binary_search(f.forbidden.begin(), f.forbidden.end(), i)) continue;
      sc.cand[w++] = i;
    }
    sc.cand.resize(w);
    sc.scores.resize(w);
    if (added && std::any_of(sc.cand.begin(), sc.cand.end(), [nb](int32_t i) { return i >= nb; })) {
      // Base items through the base head, added ones through theirs, back in place.
      sc.local.clear();
      for (int32_t i : sc.cand)
        if (i >= nb) sc.local.push_back(i - nb);
      std::stable_partition(sc.cand.begin(), sc.cand.end(), [nb](int32_t i) { return i < nb; });
      const size_t b = sc.cand.size() - sc.local.size();
      head.exact(q, std::span<const int32_t>(sc.cand.data(), b), sc.scores.data());
      added->exact(q, sc.local, sc.scores.data() + b);
    } else {
      head.exact(q, sc.cand, sc.scores.data());
    }
    if (rescored) *rescored += static_cast<int64_t>(w);
    out.clear();
    for (size_t j = 0; j < w; ++j) {
      const float v = sc.scores[j];
      if (std::isnan(v) || (f.drop_neg_inf && v == neg_inf)) continue;
      out.emplace_back(sc.cand[j], v);
    }
    if (static_cast<int64_t>(out.size()) >= k || count >= n) {
      // Fewer than k: final only when the index returned every item (else the graph did not
      // reach them all, and the exact pass decides).
      if (static_cast<int64_t>(out.size()) < k && returned < n) return false;
      auto better = [](const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
        return a.second > b.second || (a.second == b.second && a.first < b.first);
      };
      const size_t kk = std::min(out.size(), static_cast<size_t>(k));
      std::partial_sort(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(kk), out.end(),
                        better);
      out.resize(kk);
      return true;
    }
    count = std::min<int64_t>(count * 4, n);
  }
  return false;
}

}  // namespace seqrec::serve
