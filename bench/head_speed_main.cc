// Serving-head speed: the fused first pass (PackedDotHead::select) plus the exact top-K
// (top_k: filters, window, rescoring) per request, as `seqrec serve` runs them, on a trained
// model's output layer. Queries are real session vectors: each is the model's state after
// a few random items (GRU4Rec's hidden state). Built and run by bench/portable_vs_native.sh
// against one build's library; prints one JSON object.
//
// Usage: head_speed MODEL_FILE [--batch B] [--precision int8|bf16|fp32] [--seconds S] [--k K]
//
// Synthetic catalogues, the storages alternated in one run (bench/head_speed.sh):
//   head_speed --synthetic ITEMS:DIM[,ITEMS:DIM...] [--precisions fp32,int8,bf16]
//              [--batches 1,8] [--rounds R] [--seconds S] [--k K]
// Items are random vectors (normal, norms spread by a log-normal factor, as trained item
// embeddings are), bias normal; queries are an item's vector plus as much noise, so that a
// few items stand out. For each catalogue the three heads are built once, then every round
// times each (storage, batch) for S / rounds seconds of CPU time, the storages in a rotated
// order; one JSON line per (catalogue, storage, batch): the median round's CPU microseconds
// a request (the thread's own CPU time: robust on a shared machine),
// items rescored exactly a request, and the head's bytes per item.
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/isa.hpp"
#include "seqrec/model.hpp"
#include "serve/dot_head.hpp"

using namespace seqrec;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t a = 0;
  while (a <= s.size()) {
    const size_t b = std::min(s.find(sep, a), s.size());
    if (b > a) out.push_back(s.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

/// This thread's CPU time in seconds (on a shared machine, what the work itself took,
/// without the time the thread waited for a core).
double thread_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// Times select + top_k over `queries`, `batch` at a time, for `seconds` of this thread's
/// CPU time: CPU microseconds a request and items rescored a request.
std::pair<double, double> time_head(const serve::PackedDotHead& packed,
                                    const std::vector<std::vector<float>>& queries, int batch,
                                    int k, double seconds, size_t& next) {
  std::vector<std::vector<std::pair<int32_t, float>>> cand(static_cast<size_t>(batch));
  std::vector<serve::HeadQuery> hq(static_cast<size_t>(batch));
  std::vector<const serve::HeadQuery*> hp(static_cast<size_t>(batch));
  int64_t rescored_total = 0, requests = 0;
  const double t0 = thread_cpu();
  double t = t0;
  while (t - t0 < seconds) {
    for (int r = 0; r < batch; ++r) {
      const std::vector<float>& q = queries[next++ % queries.size()];
      hq[static_cast<size_t>(r)] = {q.data(), k, 2.0 * packed.error_bound(q.data()),
                                    &cand[static_cast<size_t>(r)]};
      hp[static_cast<size_t>(r)] = &hq[static_cast<size_t>(r)];
    }
    packed.select(batch, hp.data());
    for (int r = 0; r < batch; ++r) {
      int64_t rescored = 0;
      const auto top = packed.top_k(hq[static_cast<size_t>(r)].q, cand[static_cast<size_t>(r)],
                                    hq[static_cast<size_t>(r)].window, k, {}, &rescored);
      rescored_total += rescored;
      if (top.empty()) std::abort();
    }
    requests += batch;
    t = thread_cpu();
  }
  return {(t - t0) / static_cast<double>(requests) * 1e6,
          static_cast<double>(rescored_total) / static_cast<double>(requests)};
}

int synthetic(int argc, char** argv) {
  std::string shapes, precisions = "fp32,int8,bf16", batches = "1,8";
  int rounds = 5, k = 20;
  double seconds = 2.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--synthetic")
      shapes = argv[i + 1];
    else if (a == "--precisions")
      precisions = argv[i + 1];
    else if (a == "--batches")
      batches = argv[i + 1];
    else if (a == "--rounds")
      rounds = std::max(1, std::atoi(argv[i + 1]));
    else if (a == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (a == "--k")
      k = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "head_speed: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::vector<std::string> precs = split(precisions, ',');
  std::vector<int> bs;
  for (const auto& b : split(batches, ',')) bs.push_back(std::max(1, std::atoi(b.c_str())));
  for (const std::string& shape : split(shapes, ',')) {
    const auto parts = split(shape, ':');
    if (parts.size() != 2) {
      std::fprintf(stderr, "head_speed: --synthetic wants ITEMS:DIM, got %s\n", shape.c_str());
      return 2;
    }
    const int32_t n = std::atoi(parts[0].c_str()), dim = std::atoi(parts[1].c_str());
    std::mt19937 rng(static_cast<uint32_t>(n * 131 + dim));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<float> items(static_cast<size_t>(n) * dim), bias(static_cast<size_t>(n));
    const float unit = 1.0f / std::sqrt(static_cast<float>(dim));
    for (int32_t i = 0; i < n; ++i) {
      const float norm = std::exp(0.3f * normal(rng));
      for (int32_t j = 0; j < dim; ++j)
        items[static_cast<size_t>(i) * dim + j] = norm * unit * normal(rng);
      bias[static_cast<size_t>(i)] = 0.1f * normal(rng);
    }
    std::vector<std::vector<float>> queries(256, std::vector<float>(static_cast<size_t>(dim)));
    std::uniform_int_distribution<int32_t> pick(0, n - 1);
    for (auto& q : queries) {
      const int32_t i = pick(rng);
      for (int32_t j = 0; j < dim; ++j)
        q[static_cast<size_t>(j)] =
            4.0f * (items[static_cast<size_t>(i) * dim + j] + unit * normal(rng));
    }
    const DotProductHead head{dim, items.data(), bias.data()};
    std::vector<std::unique_ptr<serve::PackedDotHead>> heads;
    for (const auto& p : precs)
      heads.push_back(
          std::make_unique<serve::PackedDotHead>(head, n, serve::parse_head_precision(p)));
    // [precision][batch] -> per round (us, rescored)
    std::vector<std::vector<std::vector<std::pair<double, double>>>> res(
        precs.size(), std::vector<std::vector<std::pair<double, double>>>(bs.size()));
    size_t next = 0;
    const double slice = seconds / static_cast<double>(rounds);
    for (int round = 0; round < rounds; ++round)
      for (size_t b = 0; b < bs.size(); ++b)
        for (size_t j = 0; j < precs.size(); ++j) {
          const size_t p = (j + static_cast<size_t>(round)) % precs.size();
          res[p][b].push_back(time_head(*heads[p], queries, bs[b], k, slice, next));
        }
    for (size_t p = 0; p < precs.size(); ++p)
      for (size_t b = 0; b < bs.size(); ++b) {
        auto r = res[p][b];
        std::vector<double> us;
        for (const auto& x : r) us.push_back(x.first);
        std::sort(us.begin(), us.end());
        nlohmann::json j = {{"items", n},
                            {"dim", dim},
                            {"precision", precs[p]},
                            {"batch", bs[b]},
                            {"k", k},
                            {"cpu_us_per_request_median", us[us.size() / 2]},
                            {"cpu_us_per_request_rounds", us},
                            {"rescored_per_request", r[0].second},
                            {"head_bytes_per_item",
                             static_cast<double>(heads[p]->bytes()) / static_cast<double>(n)},
                            {"isa", isa::describe()}};
        std::printf("%s\n", j.dump().c_str());
        std::fflush(stdout);
      }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--synthetic") return synthetic(argc, argv);
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: head_speed MODEL_FILE [--batch B] [--precision int8|bf16|fp32] "
                 "[--seconds S] [--k K]\n"
                 "       head_speed --synthetic ITEMS:DIM[,...] [--precisions fp32,int8,bf16] "
                 "[--batches 1,8] [--rounds R] [--seconds S] [--k K]\n");
    return 2;
  }
  int batch = 1, k = 20;
  double seconds = 3.0;
  std::string precision = "int8";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--batch")
      batch = std::atoi(argv[i + 1]);
    else if (a == "--precision")
      precision = argv[i + 1];
    else if (a == "--seconds")
      seconds = std::atof(argv[i + 1]);
    else if (a == "--k")
      k = std::atoi(argv[i + 1]);
  }
  const ModelBundle b = load_model(argv[1]);
  const DotProductHead head = b.model->dot_product_head();
  if (head.dim == 0 || !b.model->new_state()) {
    std::fprintf(stderr, "head_speed: the model needs a dot-product head and session states\n");
    return 1;
  }
  const int32_t n = b.model->n_items();
  const serve::PackedDotHead packed(head, n, serve::parse_head_precision(precision));
  // 256 distinct session vectors, cycled.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int32_t> item(0, n - 1);
  std::vector<std::vector<float>> qs(256, std::vector<float>(static_cast<size_t>(head.dim)));
  for (auto& q : qs) {
    auto st = b.model->new_state();
    for (int e = 0; e < 4; ++e) b.model->step(*st, item(rng));
    b.model->state_query(*st, q.data());
  }
  std::vector<std::vector<std::pair<int32_t, float>>> cand(static_cast<size_t>(batch));
  std::vector<serve::HeadQuery> hq(static_cast<size_t>(batch));
  std::vector<const serve::HeadQuery*> hp(static_cast<size_t>(batch));
  // Chunks of about seconds / 7 each; the median chunk's time per request is reported.
  std::vector<double> per_request_us;
  size_t next = 0;
  int64_t rescored_total = 0, requests_total = 0;
  for (int chunk = 0; chunk < 7; ++chunk) {
    const double t0 = now();
    int64_t requests = 0;
    while (now() - t0 < seconds / 7.0) {
      for (int r = 0; r < batch; ++r) {
        const std::vector<float>& q = qs[next++ % qs.size()];
        hq[static_cast<size_t>(r)] = {q.data(), k, 2.0 * packed.error_bound(q.data()),
                                      &cand[static_cast<size_t>(r)]};
        hp[static_cast<size_t>(r)] = &hq[static_cast<size_t>(r)];
      }
      packed.select(batch, hp.data());
      for (int r = 0; r < batch; ++r) {
        int64_t rescored = 0;
        const auto top = packed.top_k(hq[static_cast<size_t>(r)].q, cand[static_cast<size_t>(r)],
                                      hq[static_cast<size_t>(r)].window, k, {}, &rescored);
        rescored_total += rescored;
        if (top.empty()) return 1;
      }
      requests += batch;
    }
    requests_total += requests;
    per_request_us.push_back((now() - t0) / static_cast<double>(requests) * 1e6);
  }
  std::sort(per_request_us.begin(), per_request_us.end());
  nlohmann::json j = {{"items", n},
                      {"dim", head.dim},
                      {"precision", precision},
                      {"batch", batch},
                      {"k", k},
                      {"us_per_request_median", per_request_us[per_request_us.size() / 2]},
                      {"us_per_request_chunks", per_request_us},
                      {"rescored_per_request",
                       static_cast<double>(rescored_total) / static_cast<double>(requests_total)},
                      {"isa", isa::describe()}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
