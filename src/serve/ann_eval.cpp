// `seqrec eval --retrieval ann`: the accuracy an ANN index costs against exact scoring
// (seqrec/ann.hpp, evaluate_ann()).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "seqrec/ann.hpp"
#include "seqrec/error.hpp"
#include "serve/ann_index.hpp"
#include "serve/dot_head.hpp"
#include "serve/session_codec.hpp"
#include "serve/topk.hpp"

namespace seqrec {

nlohmann::json AnnEvalResult::to_json() const {
  const std::string n = std::to_string(cutoff);
  return {{"cutoff", cutoff},
          {"predictions", predictions},
          {"used_index", used_index},
          {"notice", notice},
          {"list_recall@" + n, list_recall},
          {"exact", {{"Recall@" + n, recall_exact}, {"MRR@" + n, mrr_exact}}},
          {"ann", {{"Recall@" + n, recall_ann}, {"MRR@" + n, mrr_ann}}},
          {"index_build_seconds", build_seconds},
          {"index_bytes", index_bytes},
          {"exact_seconds", exact_seconds},
          {"ann_seconds", ann_seconds}};
}

AnnEvalResult evaluate_ann(const ModelBundle& bundle, const SequenceSet& test, Protocol protocol,
                           int exclude_seen, const AnnOptions& ann, int32_t cutoff, bool progress) {
  using Clock = std::chrono::steady_clock;
  check_ann_options(ann, "eval --retrieval ann");
  if (cutoff < 1) throw InputError("eval --retrieval ann: the cutoff must be at least 1");
  const Model& model = *bundle.model;
  const DotProductHead head = model.dot_product_head();
  if (head.dim <= 0)
    throw InputError("eval --retrieval ann: model type '" + model.type() +
                     "' has no dot-product output layer (ANN retrieval is for GRU4Rec, SASRec, "
                     "DSSM)");
  const int32_t n = model.n_items();
  const int mode = exclude_seen != kExcludeSeenDefault ? exclude_seen
                   : protocol == Protocol::Sequential  ? kExcludeSeenExceptTarget
                                                       : kExcludeSeenNone;

  // The predictions of the protocol: (sequence, prefix length); the target follows the prefix.
  std::vector<PrefixQuery> preds;
  for (size_t s = 0; s < test.size(); ++s) {
    const int32_t len = static_cast<int32_t>(test.length(s));
    if (len < 2) continue;
    if (protocol == Protocol::Sequential)
      preds.push_back({static_cast<int32_t>(s), len - 1});
    else
      for (int32_t t = 1; t < len; ++t) preds.push_back({static_cast<int32_t>(s), t});
  }
  AnnEvalResult r;
  r.cutoff = cutoff;
  r.predictions = static_cast<int64_t>(preds.size());
  if (preds.empty()) return r;

  // Query vectors of every prediction.
  std::vector<std::span<const int32_t>> seqs(test.size());
  for (size_t s = 0; s < test.size(); ++s) seqs[s] = test.seq(s);
  const size_t dim = static_cast<size_t>(head.dim);
  std::vector<float> queries(preds.size() * dim);
  constexpr size_t kBatch = 256;
  const int64_t batches = static_cast<int64_t>((preds.size() + kBatch - 1) / kBatch);
#pragma omp parallel for schedule(dynamic)
  for (int64_t b = 0; b < batches; ++b) {
    const size_t lo = static_cast<size_t>(b) * kBatch, hi = std::min(preds.size(), lo + kBatch);
    model.query_vectors(seqs, std::span<const PrefixQuery>(preds.data() + lo, hi - lo),
                        queries.data() + lo * dim);
  }

  // The excluded items of prediction p into `out` (the prefix, less the target unless "all").
  auto excluded = [&](const PrefixQuery& p, std::vector<int32_t>& out) {
    out.clear();
    if (mode == kExcludeSeenNone) return;
    const auto s = test.seq(static_cast<size_t>(p.seq));
    const int32_t target = s[static_cast<size_t>(p.len)];
    for (int32_t j = 0; j < p.len; ++j)
      if (mode == kExcludeSeenAll || s[static_cast<size_t>(j)] != target)
        out.push_back(s[static_cast<size_t>(j)]);
  };
  using List = std::vector<std::pair<int32_t, float>>;
  std::vector<List> exact_lists(preds.size()), ann_lists(preds.size());

  // Exact: every item scored (the serving head in fp32, exact scores).
  const serve::PackedDotHead exact_head(head, n, serve::HeadPrecision::Fp32);
  auto t0 = Clock::now();
#pragma omp parallel
  {
    std::vector<int32_t> ex;
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < static_cast<int64_t>(preds.size()); ++i) {
      excluded(preds[static_cast<size_t>(i)], ex);
      serve::TopKFilter f;
      f.excluded = ex;
      const float* q = queries.data() + static_cast<size_t>(i) * dim;
      List cand;
      serve::HeadQuery hq{q, static_cast<int32_t>(std::min<int64_t>(cutoff + ex.size(), n)), 0.0,
                          &cand};
      const serve::HeadQuery* hp = &hq;
      exact_head.select(1, &hp);
      exact_lists[static_cast<size_t>(i)] = exact_head.top_k(q, cand, 0.0, cutoff, f);
    }
  }
  r.exact_seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  // Through the index (or exact with a notice for a small catalogue, as serve does).
  if (n < ann.min_items) {
    r.notice = "the catalogue has " + std::to_string(n) + " items, fewer than --ann-min-items " +
               std::to_string(ann.min_items) + ": scored exactly, as serve does";
    ann_lists = exact_lists;
  } else {
    r.used_index = true;
    t0 = Clock::now();
    std::unique_ptr<serve::AnnIndex> index =
        serve::obtain_ann_index(head, n, serve::model_fingerprint(model), ann);
    r.build_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    r.index_bytes = index->bytes();
    if (progress)
      std::fprintf(stderr, "ANN index: %d items, %.1f s, %.1f MiB\n", n, r.build_seconds,
                   static_cast<double>(r.index_bytes) / 1048576.0);
    t0 = Clock::now();
#pragma omp parallel
    {
      std::vector<int32_t> ex;
      serve::AnnScratch sc;
#pragma omp for schedule(dynamic, 64)
      for (int64_t i = 0; i < static_cast<int64_t>(preds.size()); ++i) {
        excluded(preds[static_cast<size_t>(i)], ex);
        serve::TopKFilter f;
        f.excluded = ex;
        const float* q = queries.data() + static_cast<size_t>(i) * dim;
        List& out = ann_lists[static_cast<size_t>(i)];
        if (!serve::ann_top_k(*index, exact_head, q, cutoff, f, sc, out))
          out = exact_lists[static_cast<size_t>(i)];  // too few candidates: exact, as serve
      }
    }
    r.ann_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  // Metrics: the target's position in each list (absent = a miss).
  double overlap = 0.0, hit_e = 0.0, rr_e = 0.0, hit_a = 0.0, rr_a = 0.0;
  int64_t overlap_n = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    const PrefixQuery& p = preds[i];
    const int32_t target = test.seq(static_cast<size_t>(p.seq))[static_cast<size_t>(p.len)];
    const List &e = exact_lists[i], &a = ann_lists[i];
    if (!e.empty()) {
      int64_t common = 0;
      for (const auto& x : a)
        for (const auto& y : e)
          if (x.first == y.first) ++common;
      overlap += static_cast<double>(common) / static_cast<double>(e.size());
      ++overlap_n;
    }
    for (size_t j = 0; j < e.size(); ++j)
      if (e[j].first == target) {
        hit_e += 1.0;
        rr_e += 1.0 / static_cast<double>(j + 1);
      }
    for (size_t j = 0; j < a.size(); ++j)
      if (a[j].first == target) {
        hit_a += 1.0;
        rr_a += 1.0 / static_cast<double>(j + 1);
      }
  }
  const double np = static_cast<double>(preds.size());
  r.list_recall = overlap_n > 0 ? overlap / static_cast<double>(overlap_n) : 1.0;
  r.recall_exact = hit_e / np;
  r.mrr_exact = rr_e / np;
  r.recall_ann = hit_a / np;
  r.mrr_ann = rr_a / np;
  return r;
}

}  // namespace seqrec
