// The library choice of --retrieval ann, by measurement (bench/ann.sh, docs/performance.md):
// hnswlib's HNSW, faiss's HNSW and faiss's IVF-Flat on the same generated catalogue
// (bench/ann_data.hpp), each over the augmented vectors of seqrec's method
// (include/seqrec/ann.hpp): x_i = [v_i, b_i, sqrt(R^2 - |[v_i, b_i]|^2)] and queries
// y = [q, 1, 0], for which <y, x_i> is the item's score and |y - x_i|^2 falls as it rises.
// hnswlib: the graph built in L2 and searched by inner product, as seqrec does; faiss HNSW:
// built and searched in L2 (the same order); faiss IVF-Flat: inner product (k-means
// partitions, nprobe of them scanned). Reported: build time (the given threads), memory,
// and over a sweep of each index's search knob, recall@K of the index's own top K against
// the exact top K (faiss's flat inner-product scan) and the time of one query per call on
// one thread (wall and thread CPU time), as a serving thread searches.
//
// A bench-only program: bench/ann.sh builds it only when faiss is installed
// (libfaiss-dev); seqrec does not link faiss. hnswlib is compiled here with the flags of
// the library (portable: its SSE kernel), as seqrec runs it.
//
// Usage: ann_faiss [--items N] [--dim D] [--data clustered|gaussian] [--queries Q]
//   [--threads T] [--m M] [--ef-construction E] [--nlist L] [--k K]
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFFlat.h>
#include <hnswlib/hnswlib.h>
#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ann_data.hpp"

using nlohmann::json;

namespace {

using ann_bench::now;
using ann_bench::pct;
using ann_bench::thread_cpu;

int64_t rss() {
  int64_t r, h;
  ann_bench::memory(&r, &h);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  int32_t n = 1000000, dim = 64, nq = 1000, k = 20, threads = 2, m = 16, efc = 200, nlist = 4096;
  std::string data = "clustered";
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
      m = std::atoi(v.c_str());
    else if (a == "--ef-construction")
      efc = std::atoi(v.c_str());
    else if (a == "--nlist")
      nlist = std::atoi(v.c_str());
    else if (a == "--k")
      k = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "ann_faiss: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const ann_bench::Catalogue c = ann_bench::generate(data, n, dim, nq, 1);
  // Augmented vectors: [v, b, extra] for items, [q, 1, 0] for queries; padded to a multiple
  // of 16 as seqrec pads them for hnswlib (zeros change no inner product or distance).
  const int32_t da = (dim + 2 + 15) / 16 * 16;
  std::vector<float> x(static_cast<size_t>(n) * da, 0.0f), y(static_cast<size_t>(nq) * da, 0.0f);
  std::vector<double> sq(static_cast<size_t>(n));
  double r2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::copy_n(c.items.data() + i * dim, dim, x.data() + i * da);
    x[static_cast<size_t>(i * da + dim)] = c.bias[static_cast<size_t>(i)];
    for (int32_t k = 0; k <= dim; ++k)
      sq[static_cast<size_t>(i)] += static_cast<double>(x[static_cast<size_t>(i * da + k)]) *
                                    x[static_cast<size_t>(i * da + k)];
    r2 = std::max(r2, sq[static_cast<size_t>(i)]);
  }
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i * da + dim + 1)] =
        static_cast<float>(std::sqrt(std::max(0.0, r2 - sq[static_cast<size_t>(i)])));
  for (int64_t j = 0; j < nq; ++j) {
    std::copy_n(c.queries.data() + j * dim, dim, y.data() + j * da);
    y[static_cast<size_t>(j * da + dim)] = 1.0f;
  }
  // The truth: exact inner-product top K.
  std::vector<faiss::Index::idx_t> truth(static_cast<size_t>(nq) * k);
  {
    faiss::IndexFlatIP flat(da);
    flat.add(n, x.data());
    std::vector<float> dist(static_cast<size_t>(nq) * k);
    flat.search(nq, y.data(), k, dist.data(), truth.data());
  }
  auto recall_of = [&](int64_t j, const std::vector<int64_t>& got) {
    int common = 0;
    for (int64_t g : got)
      for (int32_t r = 0; r < k; ++r) common += g == truth[static_cast<size_t>(j * k + r)] ? 1 : 0;
    return static_cast<double>(common) / k;
  };
  json out = {{"items", n},     {"dim", dim},
              {"data", data},   {"queries", nq},
              {"k", k},         {"threads_build", threads},
              {"m", m},         {"ef_construction", efc},
              {"nlist", nlist}, {"indexes", json::array()}};
  const std::vector<int> efs = {20, 40, 80, 160, 320, 640};
  // One sweep: search(j, knob, out ids) for each knob value, one query per call, 1 thread.
  auto sweep = [&](const std::string& name, const std::vector<int>& knobs, const char* knob_name,
                   auto&& search, double build_s, int64_t bytes) {
    json pts = json::array();
    omp_set_num_threads(1);
    std::vector<int64_t> ids;
    for (int knob : knobs) {
      std::vector<double> ms, cpu;
      double rec = 0;
      for (int64_t j = 0; j < nq; ++j) {
        const double t0 = now(), c0 = thread_cpu();
        search(j, knob, ids);
        ms.push_back((now() - t0) * 1e3);
        cpu.push_back((thread_cpu() - c0) * 1e3);
        rec += recall_of(j, ids);
      }
      pts.push_back({{knob_name, knob},
                     {"recall", rec / nq},
                     {"p50_ms", pct(ms, 0.5)},
                     {"p99_ms", pct(ms, 0.99)},
                     {"cpu_p50_ms", pct(cpu, 0.5)},
                     {"cpu_p99_ms", pct(cpu, 0.99)}});
      std::fprintf(stderr, "%s %s=%d recall %.4f p50 %.3f ms p99 %.3f ms cpu p50 %.3f p99 %.3f\n",
                   name.c_str(), knob_name, knob, rec / nq, pct(ms, 0.5), pct(ms, 0.99),
                   pct(cpu, 0.5), pct(cpu, 0.99));
    }
    omp_set_num_threads(threads);
    out["indexes"].push_back({{"index", name},
                              {"build_seconds", build_s},
                              {"rss_increase_bytes", bytes},
                              {"sweep", pts}});
  };

  {  // hnswlib
    const int64_t r0 = rss();
    double t0 = now();
    hnswlib::InnerProductSpace space(static_cast<size_t>(da));
    hnswlib::L2Space l2(static_cast<size_t>(da));
    hnswlib::HierarchicalNSW<float> h(&l2, static_cast<size_t>(n), static_cast<size_t>(m),
                                      static_cast<size_t>(efc), 100);
    h.addPoint(x.data(), 0);
#pragma omp parallel for schedule(dynamic, 64)
    for (int64_t i = 1; i < n; ++i)
      h.addPoint(x.data() + i * da, static_cast<hnswlib::labeltype>(i));
    const double build = now() - t0;
    h.fstdistfunc_ = space.get_dist_func();  // searched by inner product, as seqrec does
    h.dist_func_param_ = space.get_dist_func_param();
    std::fprintf(stderr, "hnswlib built in %.1f s\n", build);
    sweep(
        "hnswlib HNSW", efs, "ef_search",
        [&](int64_t j, int ef, std::vector<int64_t>& ids) {
          h.setEf(static_cast<size_t>(ef));
          auto pq = h.searchKnn(y.data() + j * da, static_cast<size_t>(k));
          ids.clear();
          for (; !pq.empty(); pq.pop()) ids.push_back(static_cast<int64_t>(pq.top().second));
        },
        build, rss() - r0);
  }
  {  // faiss HNSW
    const int64_t r0 = rss();
    double t0 = now();
    faiss::IndexHNSWFlat h(da, m, faiss::METRIC_L2);
    h.hnsw.efConstruction = efc;
    h.add(n, x.data());
    const double build = now() - t0;
    std::fprintf(stderr, "faiss HNSW built in %.1f s\n", build);
    std::vector<float> dist(static_cast<size_t>(k));
    std::vector<faiss::Index::idx_t> lab(static_cast<size_t>(k));
    sweep(
        "faiss HNSWFlat", efs, "ef_search",
        [&](int64_t j, int ef, std::vector<int64_t>& ids) {
          h.hnsw.efSearch = ef;
          h.search(1, y.data() + j * da, k, dist.data(), lab.data());
          ids.assign(lab.begin(), lab.end());
        },
        build, rss() - r0);
  }
  {  // faiss IVF-Flat
    const int64_t r0 = rss();
    double t0 = now();
    faiss::IndexFlatIP quantizer(da);
    faiss::IndexIVFFlat ivf(&quantizer, da, static_cast<size_t>(nlist),
                            faiss::METRIC_INNER_PRODUCT);
    ivf.cp.niter = 10;
    const int64_t nt = std::min<int64_t>(n, 64LL * nlist);
    ivf.train(nt, x.data());
    ivf.add(n, x.data());
    const double build = now() - t0;
    std::fprintf(stderr, "faiss IVF-Flat built in %.1f s\n", build);
    std::vector<float> dist(static_cast<size_t>(k));
    std::vector<faiss::Index::idx_t> lab(static_cast<size_t>(k));
    sweep(
        "faiss IVFFlat", {4, 8, 16, 32, 64, 128}, "nprobe",
        [&](int64_t j, int np, std::vector<int64_t>& ids) {
          ivf.nprobe = static_cast<size_t>(np);
          ivf.search(1, y.data() + j * da, k, dist.data(), lab.data());
          ids.assign(lab.begin(), lab.end());
        },
        build, rss() - r0);
  }
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
