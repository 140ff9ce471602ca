// ANN retrieval against exact int8 scoring on a generated catalogue (bench/ann.sh; the method
// is in include/seqrec/ann.hpp, the figures in docs/performance.md): index build time and
// memory, recall@K of the ANN top-K against the exact top-K over a sweep of ef_search, peak
// throughput and per-request latency at a fixed arrival rate, the two paths measured in the
// same process and alternated. Requests are one query each, as `seqrec serve` answers an
// unbatched request: exact = PackedDotHead::select + top_k (int8 pass, exact rescoring of the
// window); ANN = serve::ann_top_k (index candidates rescored exactly through the same head).
// Catalogue and queries: bench/ann_data.hpp. Prints one JSON object.
//
// Usage: ann_bench [--items N] [--dim D] [--data clustered|gaussian] [--queries Q]
//   [--threads T] [--m M] [--ef-construction E] [--sweep "16,32,..."] [--candidates C]
//   [--rate R] [--seconds S] [--rounds N] [--k K] [--seed S] [--target-recall 0.98]
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ann_data.hpp"
#include "core/isa.hpp"
#include "seqrec/ann.hpp"
#include "serve/ann_index.hpp"
#include "serve/dot_head.hpp"

using namespace seqrec;
using nlohmann::json;
using List = std::vector<std::pair<int32_t, float>>;

namespace {

using ann_bench::now;
using ann_bench::pct;
using ann_bench::thread_cpu;

double median(std::vector<double> v) {
  return pct(std::move(v), 0.5);
}

/// One request's work on thread `t` for query j.
using Request = std::function<void(int t, int32_t j)>;

/// Closed loop: `threads` threads answer requests back to back for `seconds`; requests/s.
double peak(const Request& req, int threads, double seconds, int32_t nq) {
  std::atomic<int64_t> done{0};
  std::atomic<int32_t> next{0};
  const double t0 = now();
  std::vector<std::thread> ws;
  for (int t = 0; t < threads; ++t)
    ws.emplace_back([&, t] {
      int64_t mine = 0;
      while (now() - t0 < seconds) {
        req(t, next.fetch_add(1) % nq);
        ++mine;
      }
      done += mine;
    });
  for (auto& w : ws) w.join();
  return static_cast<double>(done.load()) / (now() - t0);
}

/// Open loop: requests arrive every 1/rate s (a server with `threads` workers and a queue);
/// latency = completion - arrival, so queueing counts. Stops early when the backlog passes
/// 1 s (overloaded: the rate is beyond what the threads sustain).
json open_loop(const Request& req, int threads, double rate, double seconds, int32_t nq) {
  const int64_t total = static_cast<int64_t>(rate * seconds);
  std::vector<double> lat(static_cast<size_t>(total), -1.0);
  std::atomic<int64_t> next{0};
  std::atomic<bool> overloaded{false};
  const double t0 = now() + 0.01;
  std::vector<std::thread> ws;
  for (int t = 0; t < threads; ++t)
    ws.emplace_back([&, t] {
      for (;;) {
        const int64_t i = next.fetch_add(1);
        if (i >= total || overloaded.load()) return;
        const double at = t0 + static_cast<double>(i) / rate;
        for (double w = at - now(); w > 0; w = at - now()) {
          if (w > 3e-4)
            std::this_thread::sleep_for(std::chrono::duration<double>(w - 2e-4));
          else
            std::this_thread::yield();
        }
        req(t, static_cast<int32_t>(i % nq));
        const double l = now() - at;
        lat[static_cast<size_t>(i)] = l;
        if (l > 1.0) overloaded = true;
      }
    });
  for (auto& w : ws) w.join();
  std::vector<double> ms;
  for (double l : lat)
    if (l >= 0) ms.push_back(l * 1e3);
  const double elapsed = now() - t0;
  return {{"rate", rate},
          {"requests", ms.size()},
          {"overloaded", overloaded.load()},
          {"achieved_rate", static_cast<double>(ms.size()) / elapsed},
          {"p50_ms", pct(ms, 0.5)},
          {"p90_ms", pct(ms, 0.9)},
          {"p99_ms", pct(ms, 0.99)},
          {"max_ms", pct(ms, 1.0)}};
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string x; std::getline(in, x, ',');) out.push_back(std::atoi(x.c_str()));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int32_t n = 1000000, dim = 64, nq = 2000, k = 20, threads = 2, rounds = 3;
  AnnOptions ao;
  ao.enabled = true;
  ao.min_items = 1;
  ao.candidates = 1;
  std::string data = "clustered", sweep_s = "20,40,80,160,320,640";
  double rate = 1000, seconds = 3, target = 0.98;
  uint32_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--items")
      n = std::atoi(v.c_str());
    else if (a == "--dim")
      dim = std::atoi(v.c_str());
    else if (a == "--data")
      data = v;
    else if (a == "--queries")
      nq = std::atoi(v.c_str());
    else if (a == "--threads")
      threads = std::atoi(v.c_str());
    else if (a == "--m")
      ao.m = std::atoi(v.c_str());
    else if (a == "--ef-construction")
      ao.ef_construction = std::atoi(v.c_str());
    else if (a == "--sweep")
      sweep_s = v;
    else if (a == "--candidates")
      ao.candidates = std::atoi(v.c_str());
    else if (a == "--rate")
      rate = std::atof(v.c_str());
    else if (a == "--seconds")
      seconds = std::atof(v.c_str());
    else if (a == "--rounds")
      rounds = std::atoi(v.c_str());
    else if (a == "--k")
      k = std::atoi(v.c_str());
    else if (a == "--seed")
      seed = static_cast<uint32_t>(std::atoi(v.c_str()));
    else if (a == "--target-recall")
      target = std::atof(v.c_str());
    else {
      std::fprintf(stderr, "ann_bench: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::vector<int> sweep = parse_list(sweep_s);
  omp_set_num_threads(threads);
  auto log = [](const char* fmt, auto... args) {
    std::fprintf(stderr, fmt, args...);
    std::fflush(stderr);
  };
  int64_t rss0, hwm0, rss1, hwm1;
  double t = now();
  const ann_bench::Catalogue c = ann_bench::generate(data, n, dim, nq, seed);
  log("generated %d x %d (%s) in %.1f s\n", n, dim, data.c_str(), now() - t);
  const DotProductHead dh{dim, c.items.data(), c.bias.data()};
  const serve::PackedDotHead head(dh, n, serve::HeadPrecision::Int8);
  ann_bench::memory(&rss0, &hwm0);

  // Per-thread buffers of both paths.
  struct Scratch {
    serve::AnnScratch ann;
    List cand, out;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(threads));
  auto query = [&](int32_t j) { return c.queries.data() + static_cast<size_t>(j) * dim; };
  auto exact_list = [&](int tt, int32_t j) -> List {
    Scratch& s = scratch[static_cast<size_t>(tt)];
    const float* q = query(j);
    serve::HeadQuery hq{q, k, 2.0 * head.error_bound(q), &s.cand};
    const serve::HeadQuery* hp = &hq;
    head.select(1, &hp);
    return head.top_k(q, s.cand, hq.window, k, {});
  };

  // The exact top-K of every query (the truth), timed: one query per call, `threads` threads.
  std::vector<List> truth(static_cast<size_t>(nq));
  t = now();
  {
    std::atomic<int32_t> next{0};
    std::vector<std::thread> ws;
    for (int tt = 0; tt < threads; ++tt)
      ws.emplace_back([&, tt] {
        for (int32_t j; (j = next.fetch_add(1)) < nq;)
          truth[static_cast<size_t>(j)] = exact_list(tt, j);
      });
    for (auto& w : ws) w.join();
  }
  log("exact top-%d of %d queries in %.1f s\n", k, nq, now() - t);

  // The index.
  t = now();
  serve::AnnIndex index(c.items.data(), c.bias.data(), n, dim, ao, threads);
  const double build_s = now() - t;
  ann_bench::memory(&rss1, &hwm1);
  log("index built in %.1f s (%d threads), RSS +%.0f MiB\n", build_s, threads,
      static_cast<double>(rss1 - rss0) / 1048576.0);

  auto ann_request = [&](int tt, int32_t j) {
    Scratch& s = scratch[static_cast<size_t>(tt)];
    if (!serve::ann_top_k(index, head, query(j), k, {}, s.ann, s.out)) std::abort();
  };
  auto exact_request = [&](int tt, int32_t j) {
    if (exact_list(tt, j).empty()) std::abort();
  };

  // Recall and speed over the sweep (one configuration after the other).
  json points = json::array();
  int best = -1;
  double best_recall = -1;
  for (int ef : sweep) {
    index.set_search_options(ef, ao.candidates);
    double overlap = 0;
    int64_t rescored = 0;
    std::vector<double> cpu_ms, wall_ms;
    for (int32_t j = 0; j < nq; ++j) {
      Scratch& s = scratch[0];
      int64_t r = 0;
      const double w0 = now(), c0 = thread_cpu();
      if (!serve::ann_top_k(index, head, query(j), k, {}, s.ann, s.out, &r)) std::abort();
      cpu_ms.push_back((thread_cpu() - c0) * 1e3);
      wall_ms.push_back((now() - w0) * 1e3);
      rescored += r;
      const List& e = truth[static_cast<size_t>(j)];
      int common = 0;
      for (const auto& a : s.out)
        for (const auto& b : e) common += a.first == b.first ? 1 : 0;
      overlap += static_cast<double>(common) / static_cast<double>(e.size());
    }
    const double recall = overlap / nq;
    const double rps = peak(ann_request, threads, seconds / 2, nq);
    json lat = open_loop(ann_request, threads, rate, seconds, nq);
    log("ef_search %d: recall@%d %.4f, peak %.0f req/s, p50 %.3f ms, p99 %.3f ms (cpu p99 "
        "%.3f ms)\n",
        ef, k, recall, rps, lat["p50_ms"].get<double>(), lat["p99_ms"].get<double>(),
        pct(cpu_ms, 0.99));
    points.push_back({{"ef_search", ef},
                      {"candidates", ao.candidates},
                      {"recall", recall},
                      {"rescored_per_request", static_cast<double>(rescored) / nq},
                      {"peak_rps", rps},
                      {"service_ms",
                       {{"cpu_p50", pct(cpu_ms, 0.5)},
                        {"cpu_p99", pct(cpu_ms, 0.99)},
                        {"wall_p50", pct(wall_ms, 0.5)},
                        {"wall_p99", pct(wall_ms, 0.99)}}},
                      {"latency", lat}});
    if (recall >= target && best < 0) best = ef;
    if (recall > best_recall) best_recall = recall;
  }
  if (best < 0) best = sweep.back();

  // Exact's service time, one thread, as the sweep measures ANN's.
  json exact_service;
  {
    std::vector<double> cpu_ms, wall_ms;
    for (int32_t j = 0; j < std::min<int32_t>(nq, 500); ++j) {
      const double w0 = now(), c0 = thread_cpu();
      exact_request(0, j);
      cpu_ms.push_back((thread_cpu() - c0) * 1e3);
      wall_ms.push_back((now() - w0) * 1e3);
    }
    exact_service = {{"cpu_p50", pct(cpu_ms, 0.5)},
                     {"cpu_p99", pct(cpu_ms, 0.99)},
                     {"wall_p50", pct(wall_ms, 0.5)},
                     {"wall_p99", pct(wall_ms, 0.99)}};
    log("exact service time: cpu p50 %.3f ms p99 %.3f ms\n", pct(cpu_ms, 0.5), pct(cpu_ms, 0.99));
  }

  // The operating point against exact, alternated round by round in this process.
  index.set_search_options(best, ao.candidates);
  json rounds_j = json::array();
  std::vector<double> a_peak, e_peak, a_p50, a_p99, e_p50, e_p99;
  for (int r = 0; r < rounds; ++r) {
    const double ap = peak(ann_request, threads, seconds / 2, nq);
    json al = open_loop(ann_request, threads, rate, seconds, nq);
    const double ep = peak(exact_request, threads, seconds / 2, nq);
    json el = open_loop(exact_request, threads, rate, seconds, nq);
    // Exact again at a rate it sustains (80 % of its peak), when it cannot take `rate`.
    json el80;
    if (ep < rate) el80 = open_loop(exact_request, threads, 0.8 * ep, seconds, nq);
    log("round %d: ann peak %.0f p99 %.3f ms | exact peak %.0f p99 %.3f ms%s\n", r, ap,
        al["p99_ms"].get<double>(), ep, el["p99_ms"].get<double>(),
        el["overloaded"].get<bool>() ? " (overloaded)" : "");
    a_peak.push_back(ap);
    e_peak.push_back(ep);
    a_p50.push_back(al["p50_ms"]);
    a_p99.push_back(al["p99_ms"]);
    e_p50.push_back(el["p50_ms"]);
    e_p99.push_back(el["p99_ms"]);
    rounds_j.push_back({{"ann_peak_rps", ap},
                        {"ann_latency", al},
                        {"exact_peak_rps", ep},
                        {"exact_latency", el},
                        {"exact_latency_at_80pct_of_its_peak", el80}});
  }
  int64_t rss2, hwm2;
  ann_bench::memory(&rss2, &hwm2);
  json j = {{"items", n},
            {"dim", dim},
            {"data", data},
            {"queries", nq},
            {"k", k},
            {"threads", threads},
            {"isa", isa::describe()},
            {"index",
             {{"m", ao.m},
              {"ef_construction", ao.ef_construction},
              {"build_seconds", build_s},
              {"bytes", index.bytes()},
              {"rss_increase_bytes", rss1 - rss0}}},
            {"memory",
             {{"rss_before_index_bytes", rss0},
              {"peak_rss_before_index_bytes", hwm0},
              {"peak_rss_bytes", hwm2},
              {"head_int8_bytes", head.bytes()},
              {"items_fp32_bytes", static_cast<int64_t>(n) * dim * 4}}},
            {"sweep", points},
            {"exact_service_ms", exact_service},
            {"operating_point",
             {{"ef_search", best},
              {"candidates", ao.candidates},
              {"best_recall_in_sweep", best_recall},
              {"target_recall", target},
              {"rounds", rounds_j},
              {"median",
               {{"ann_peak_rps", median(a_peak)},
                {"exact_peak_rps", median(e_peak)},
                {"peak_ratio", median(a_peak) / median(e_peak)},
                {"ann_p50_ms", median(a_p50)},
                {"ann_p99_ms", median(a_p99)},
                {"exact_p50_ms", median(e_p50)},
                {"exact_p99_ms", median(e_p99)}}}}}};
  std::printf("%s\n", j.dump().c_str());
  return 0;
}
