// Serving-head speed: the fused first pass (PackedDotHead::select) plus the exact top-K
// (top_k: filters, window, rescoring) per request, as `seqrec serve` runs them, on a trained
// model's output layer. Queries are real session vectors: each is the model's state after
// a few random items (GRU4Rec's hidden state). Built and run by bench/portable_vs_native.sh
// against one build's library; prints one JSON object.
//
// Usage: head_speed MODEL_FILE [--batch B] [--precision int8|fp32] [--seconds S] [--k K]
#include <chrono>
#include <cstdio>
#include <cstdlib>
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: head_speed MODEL_FILE [--batch B] [--precision int8|fp32] "
                 "[--seconds S] [--k K]\n");
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
