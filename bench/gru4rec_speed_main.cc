// GRU4Rec training speed on a generated RSC15-like data set (or a GRU4Rec-style log file
// given with --data, e.g. rsc15-100k's train_full, the data of REFERENCE.md's figures),
// with a profile of where the time goes and the GEMM phase measured against dnnl_sgemm at the same
// shapes. Built and run by bench/gru4rec_speed.sh (it needs the library's private headers, so it is
// not one of the CMake bench/*.cpp targets). Prints one JSON object.
//
// Usage: gru4rec_speed [--events N] [--items N] [--preset NAME]... [--threads N]
//                      [--epochs N] [--seed N] [--data FILE]
#include <oneapi/dnnl/dnnl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/parallel.hpp"
#include "core/progress.hpp"
#include "models/gru4rec.hpp"
#include "seqrec/data.hpp"
#include "seqrec/model.hpp"

using namespace seqrec;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

/// GFLOP/s of dnnl_sgemm for C(m x n) = op(A) op(B), row-major, median-free best of reps.
double sgemm_gflops(char ta, char tb, int64_t m, int64_t n, int64_t k) {
  std::vector<float> a(static_cast<size_t>(m * k), 0.01f), b(static_cast<size_t>(k * n), 0.02f),
      c(static_cast<size_t>(m * n), 0.0f);
  const int64_t lda = ta == 'N' ? k : m, ldb = tb == 'N' ? n : k;
  const double flops =
      2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k);
  for (int i = 0; i < 3; ++i)
    dnnl_sgemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), n);
  const int reps = static_cast<int>(std::max(5.0, 2e9 / flops));
  const double t0 = now();
  for (int i = 0; i < reps; ++i)
    dnnl_sgemm(ta, tb, m, n, k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(), n);
  return flops * reps / (now() - t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = 1000000, items = 37000, epochs = 1;
  int threads = 2;
  uint64_t seed = 42;
  std::vector<std::string> presets;
  std::string data_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--events")
      events = std::stoll(val());
    else if (a == "--items")
      items = std::stoll(val());
    else if (a == "--preset")
      presets.push_back(val());
    else if (a == "--threads")
      threads = std::stoi(val());
    else if (a == "--epochs")
      epochs = std::stoll(val());
    else if (a == "--seed")
      seed = std::stoull(val());
    else if (a == "--data")
      data_path = val();
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (presets.empty()) presets = {"rsc15", "bprmax"};
  set_threads(threads);

  nlohmann::json out;
  EventLog log;
  if (data_path.empty()) {
    GenerateOptions go;
    go.n_events = events;
    go.n_items = static_cast<int32_t>(items);
    go.mean_length = 3.9;  // RSC15: ~31.6M clicks in ~8M sessions
    go.seed = 7;
    const double tg = now();
    log = generate_sessions(go);
    const double gen_s = now() - tg;
    out["data"] = {{"events", log.seqs.n_events()},
                   {"sessions", log.seqs.size()},
                   {"items", log.items.size()},
                   {"generator", "seqrec::generate_sessions, mean_length 3.9, seed 7"},
                   {"generate_seconds", gen_s}};
  } else {
    log = read_events(data_path);
    out["data"] = {{"events", log.seqs.n_events()},
                   {"sessions", log.seqs.size()},
                   {"items", log.items.size()},
                   {"file", data_path}};
  }
  out["threads"] = threads;
  const ModelInfo& info = find_model("gru4rec");
  for (const std::string& name : presets) {
    Config cfg = default_config("gru4rec");
    bool found = false;
    for (const Preset& p : info.presets)
      if (p.name == name) {
        for (const auto& [k, v] : p.values) cfg.set(k, v, "preset");
        found = true;
      }
    if (!found) {
      std::fprintf(stderr, "unknown preset %s\n", name.c_str());
      return 2;
    }
    cfg.set("n_epochs", std::to_string(epochs));
    Gru4recModel model(cfg);
    FitContext ctx;
    ctx.threads = threads;
    ctx.seed = seed;
    ctx.progress = false;
    const double t0 = now();
    model.fit(log.seqs, log.items.size(), ctx);
    const double fit_s = now() - t0;
    const auto& st = model.fit_stats();
    const auto& pr = model.net().profile();
    const auto& P = model.params();
    const double train_events = static_cast<double>(pr.rows);
    const double step_s = pr.total();
    const int64_t B = P.batch_size, H = P.layers.back();
    const int64_t uy = pr.steps > 0 ? pr.distinct_columns / pr.steps : 0;
    // dnnl at this preset's shapes (full batch, mean distinct columns).
    const double g_scores = sgemm_gflops('N', 'T', B, uy, H);
    const double g_dwy = sgemm_gflops('T', 'N', uy, H, B);
    const double g_dh = sgemm_gflops('N', 'N', B, H, uy);
    const double g_gru = sgemm_gflops('N', 'T', B, 3 * H, H);
    const double gemm_out_s = pr.output_gemm;
    const double out_gflops = pr.output_gemm_flops / gemm_out_s / 1e9;
    const double ref_gflops = 3.0 / (1.0 / g_scores + 1.0 / g_dwy + 1.0 / g_dh);
    nlohmann::json r;
    r["preset"] = name;
    r["params"] = cfg.to_json();
    r["epochs"] = st.epochs_run;
    r["events_per_s"] = train_events / fit_s;
    r["events_per_s_steps_only"] = train_events / step_s;
    r["seconds_per_epoch"] = fit_s / static_cast<double>(std::max<int64_t>(1, epochs));
    r["epoch_loss"] = st.epoch_loss;
    r["steps"] = pr.steps;
    r["mean_rows_per_step"] = pr.steps ? static_cast<double>(pr.rows) / pr.steps : 0.0;
    r["mean_distinct_output_columns"] = uy;
    r["profile_seconds"] = {{"unique_gather", pr.unique_gather}, {"gru_forward", pr.gru_forward},
                            {"output_gemms", pr.output_gemm},    {"loss", pr.loss},
                            {"gru_backward", pr.gru_backward},   {"adagrad_update", pr.update},
                            {"outside_steps", fit_s - step_s}};
    r["gemm"] = {
        {"output_phase_gflops", out_gflops},
        {"dnnl_same_shapes_gflops",
         {{"scores_NT", g_scores},
          {"dWy_TN", g_dwy},
          {"dh_NN", g_dh},
          {"harmonic_mean", ref_gflops}}},
        {"output_phase_fraction_of_dnnl", out_gflops / ref_gflops},
        {"gru_shape_dnnl_gflops", g_gru},
        {"output_gemm_gflop_per_step", pr.steps ? pr.output_gemm_flops / pr.steps / 1e9 : 0.0},
        {"gru_gemm_gflop_per_step", pr.steps ? pr.gru_gemm_flops / pr.steps / 1e9 : 0.0}};
    out["runs"].push_back(r);
    std::fprintf(stderr, "%s: %.0f events/s\n", name.c_str(), train_events / fit_s);
  }
  out["dnnl_reference_gflops_256x2304x100"] = sgemm_gflops('N', 'T', 256, 2304, 100);
  out["peak_rss_mb"] = static_cast<double>(peak_rss_bytes()) / 1048576.0;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
