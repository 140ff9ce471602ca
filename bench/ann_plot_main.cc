// The recall/latency trade-off plot of bench/ann.sh: reads the JSON files that ann_bench
// wrote (one per catalogue) and draws, with the compare report's SVG writer
// (src/report/svg.hpp), recall@K against p99 latency at the fixed arrival rate and against
// peak throughput, one line per catalogue over its ef_search sweep; exact int8 scoring is
// the point at recall 1 (its peak; its p99 only when it sustains the rate).
//
// Usage: ann_plot OUT.svg RESULT.json...
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "report/svg.hpp"

using nlohmann::json;
namespace svg = seqrec::svg;

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: ann_plot OUT.svg RESULT.json...\n");
    return 2;
  }
  svg::LineChart lat{"p99 latency at the fixed rate",
                     {"recall@20 vs exact top-20"},
                     {"p99 ms (log)", true, false},
                     {}};
  svg::LineChart thr{
      "peak throughput", {"recall@20 vs exact top-20"}, {"requests/s (log)", true, false}, {}};
  std::string rate, threads;
  size_t colour = 0;
  for (int a = 2; a < argc; ++a) {
    std::ifstream f(argv[a]);
    const json j = json::parse(f, nullptr, false);
    if (j.is_discarded() || !j.contains("sweep")) {
      std::fprintf(stderr, "ann_plot: %s is not an ann_bench result\n", argv[a]);
      return 1;
    }
    const std::string name = std::to_string(j["items"].get<int64_t>() / 1000) +
                             "k items d=" + std::to_string(j["dim"].get<int>()) + " (" +
                             j["data"].get<std::string>() + ")";
    svg::Series l{"ANN " + name, svg::palette(colour), {}, {}, {}, {}};
    svg::Series t = l;
    for (const json& p : j["sweep"]) {
      l.x.push_back(p["recall"]);
      l.y.push_back(p["latency"]["p99_ms"]);
      t.x.push_back(p["recall"]);
      t.y.push_back(p["peak_rps"]);
    }
    lat.series.push_back(l);
    thr.series.push_back(t);
    // Exact: the median of the rounds of the operating point.
    const json& m = j["operating_point"]["median"];
    svg::Series e{"exact int8 " + name, svg::palette(colour + 7), {1.0}, {}, {}, {}};
    svg::Series et = e;
    et.y = {m["exact_peak_rps"].get<double>()};
    bool sustained = true;
    for (const json& r : j["operating_point"]["rounds"])
      if (r["exact_latency"]["overloaded"].get<bool>()) sustained = false;
    if (sustained) {
      e.y = {m["exact_p99_ms"].get<double>()};
      lat.series.push_back(e);
    }
    thr.series.push_back(et);
    ++colour;
    rate = std::to_string(static_cast<int>(j["sweep"][0]["latency"]["rate"].get<double>()));
    threads = std::to_string(j["threads"].get<int>());
  }
  const std::string caption = "HNSW (hnswlib, inner product over [v,b]·[q,1]) + exact rescoring; " +
                              rate + " requests/s arriving, " + threads +
                              " worker threads; points = ef_search sweep. Exact int8 cannot "
                              "sustain the rate where its p99 point is missing.";
  std::ofstream(argv[1]) << svg::line_charts({lat, thr}, caption, 2, 420);
  return 0;
}
