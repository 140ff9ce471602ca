// The option tables: defaults written once (the structs' defaults are the tables'), the
// server's flags and the Recommender checked through one table, metric names parsed once.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "app/options.hpp"
#include "app/serve_options.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/eval.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"

using namespace seqrec;

TEST(AppOptions, DataTablesDefaultToTheStructs) {
  const GenerateOptions g = to_generate_options(Config(generate_option_specs()));
  const GenerateOptions d;
  EXPECT_EQ(g.n_events, d.n_events);
  EXPECT_EQ(g.n_items, d.n_items);
  EXPECT_EQ(g.zipf_exponent, d.zipf_exponent);
  EXPECT_EQ(g.mean_length, d.mean_length);
  EXPECT_EQ(g.follow_prob, d.follow_prob);
  EXPECT_EQ(g.n_successors, d.n_successors);
  EXPECT_EQ(g.days, d.days);
  EXPECT_EQ(g.seed, d.seed);
  const PrepareOptions p = to_prepare_options(Config(prepare_option_specs()));
  const PrepareOptions pd;
  EXPECT_EQ(p.protocol, pd.protocol);
  EXPECT_EQ(p.session.min_session_length, pd.session.min_session_length);
  EXPECT_EQ(p.session.min_item_support, pd.session.min_item_support);
  EXPECT_EQ(p.session.test_seconds, pd.session.test_seconds);
  EXPECT_EQ(p.session.valid_seconds, pd.session.valid_seconds);
  EXPECT_EQ(p.session.remove_repeats, pd.session.remove_repeats);
  EXPECT_EQ(p.sequential.user_core, pd.sequential.user_core);
  EXPECT_EQ(p.sequential.item_core, pd.sequential.item_core);
  EXPECT_EQ(p.sequential.remove_repeats, pd.sequential.remove_repeats);
}

TEST(AppOptions, EvalTableDefaultsToTheStruct) {
  const EvalOptions e = to_eval_options(Config(eval_option_specs()), "");
  const EvalOptions d;
  EXPECT_EQ(e.cutoffs, d.cutoffs);
  EXPECT_EQ(e.ties, d.ties);
  EXPECT_EQ(e.exclude_seen, d.exclude_seen);
  EXPECT_EQ(e.sampled_negatives, d.sampled_negatives);
  EXPECT_EQ(e.batch_size, d.batch_size);
  EXPECT_EQ(e.seed, d.seed);
  EXPECT_EQ(e.protocol, d.protocol);
}

TEST(AppOptions, ServeTableDefaultsToTheStructs) {
  const serve::http::ServeOptions o = to_serve_options(Config(serve_option_specs()), "m.seqrec");
  const serve::http::HttpOptions h;
  const RecommenderOptions r;
  EXPECT_EQ(o.model_path, "m.seqrec");
  EXPECT_EQ(o.http.host, h.host);
  EXPECT_EQ(o.http.port, h.port);
  EXPECT_EQ(o.http.threads, h.threads);
  EXPECT_EQ(o.http.max_connections, h.max_connections);
  EXPECT_EQ(o.http.max_body, h.max_body);
  EXPECT_EQ(o.http.keep_alive_seconds, h.keep_alive_seconds);
  EXPECT_EQ(o.http.read_timeout_seconds, h.read_timeout_seconds);
  EXPECT_EQ(o.http.write_timeout_seconds, h.write_timeout_seconds);
  EXPECT_EQ(o.http.access_log, h.access_log);
  EXPECT_EQ(o.http.allowed_hosts, h.allowed_hosts);
  EXPECT_EQ(o.http.api_key_scope, h.api_key_scope);
  EXPECT_EQ(o.http.reload_min_interval_seconds, h.reload_min_interval_seconds);
  EXPECT_EQ(o.http.api_key, "");  // only ever from a file
  EXPECT_EQ(o.api_key_file, "");
  EXPECT_EQ(o.port_file, "");
  EXPECT_EQ(o.recommender.max_sessions, r.max_sessions);
  EXPECT_EQ(o.recommender.max_session_bytes, r.max_session_bytes);
  EXPECT_EQ(o.recommender.session_ttl_seconds, r.session_ttl_seconds);
  EXPECT_EQ(o.recommender.max_history, r.max_history);
  EXPECT_EQ(o.recommender.default_k, r.default_k);
  EXPECT_EQ(o.recommender.max_k, r.max_k);
  EXPECT_EQ(o.recommender.shards, r.shards);
  EXPECT_EQ(o.recommender.max_batch, r.max_batch);
  EXPECT_EQ(o.recommender.batch_lanes, r.batch_lanes);
  EXPECT_EQ(o.recommender.head_storage, r.head_storage);
  EXPECT_EQ(o.recommender.session_store, r.session_store);
  EXPECT_EQ(o.recommender.session_key_prefix, r.session_key_prefix);
  EXPECT_EQ(o.recommender.session_store_timeout_seconds, r.session_store_timeout_seconds);
  EXPECT_EQ(o.recommender.session_store_connections, r.session_store_connections);
  EXPECT_EQ(o.recommender.session_snapshot, r.session_snapshot);
  EXPECT_EQ(o.recommender.session_snapshot_interval_seconds, r.session_snapshot_interval_seconds);
  EXPECT_EQ(o.recommender.reload_replay_events, r.reload_replay_events);
}

TEST(AppOptions, ServeValuesReachTheOptions) {
  Config c(serve_option_specs());
  c.set("max_session_memory", "2.5");
  c.set("session_shards", "3");
  c.set("head_storage", "fp32");
  c.set("access_log", "true");
  const serve::http::ServeOptions o = to_serve_options(c, "m");
  EXPECT_EQ(o.recommender.max_session_bytes, static_cast<int64_t>(2.5 * 1048576.0));
  EXPECT_EQ(o.recommender.shards, 3);
  EXPECT_EQ(o.recommender.head_storage, RecommenderOptions::HeadStorage::Fp32);
  EXPECT_TRUE(o.http.access_log);
  c.set("head_storage", "bf16");
  EXPECT_EQ(to_serve_options(c, "m").recommender.head_storage,
            RecommenderOptions::HeadStorage::Bf16);
  try {
    c.set("head_storage", "fp16", "flag");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    for (const char* name : {"head_storage", "int8", "bf16", "fp32"})
      EXPECT_NE(m.find(name), std::string::npos) << m;
  }
  c.set("allowed_hosts", "api.example.com, *.svc");
  c.set("api_key_file", "/etc/seqrec.key");
  c.set("api_key_scope", "all");
  c.set("reload_min_interval", "0");
  const serve::http::ServeOptions a = to_serve_options(c, "m");
  EXPECT_EQ(a.http.allowed_hosts, "api.example.com, *.svc");
  EXPECT_EQ(a.api_key_file, "/etc/seqrec.key");
  EXPECT_EQ(a.http.api_key_scope, serve::http::HttpOptions::ApiKeyScope::All);
  EXPECT_EQ(a.http.reload_min_interval_seconds, 0.0);
  c.set("allowed_hosts", "not a host");  // checked when the options are made
  EXPECT_THROW(to_serve_options(c, "m"), InputError);
  // The table's ranges are the command line's.
  EXPECT_THROW(c.set("max_history", "0"), InputError);
  EXPECT_THROW(c.set("port", "65536"), InputError);
}

TEST(AppOptions, RecommenderLimitsComeFromTheTable) {
  GenerateOptions go;
  go.n_events = 500;
  go.n_items = 20;
  const EventLog log = generate_sessions(go);
  auto bundle = [&] {
    ModelBundle b;
    b.model = create_model("pop", default_config("pop"));
    FitContext ctx;
    ctx.progress = false;
    b.model->fit(log.seqs, log.items.size(), ctx);
    b.items = log.items;
    return b;
  };
  // Out of the table's range: refused by the constructor with the table's message.
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  o.max_history = 0;
  std::string message;
  try {
    Recommender rec(bundle(), o);
  } catch (const InputError& e) {
    message = e.what();
  }
  const std::vector<ParamSpec> specs = recommender_option_specs();
  const ParamSpec* spec = nullptr;
  for (const ParamSpec& p : specs)
    if (p.name == "max_history") spec = &p;
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(message, "recommender options: parameter 'max_history' must be " + range_text(*spec) +
                         ", got '0'");
  o.max_history = 1000000;
  EXPECT_NO_THROW(Recommender(bundle(), o));
  o.max_batch = 4097;
  EXPECT_THROW(Recommender(bundle(), o), InputError);
}

TEST(EvalMetricAtK, ParsesNamesAndCutoffs) {
  MetricAtK m = parse_metric_at_k("ndcg@10", "--metric");
  EXPECT_EQ(m.metric, RankMetric::Ndcg);
  EXPECT_EQ(m.k, 10);
  EXPECT_EQ(m.result_key(), "ndcg@10");
  m = parse_metric_at_k("hr@20", "--metric");
  EXPECT_EQ(m.metric, RankMetric::Recall);
  EXPECT_EQ(m.result_key(), "recall@20");
  EXPECT_EQ(parse_metric_at_k("mrr@5", "x").result_key(), "mrr@5");
  for (const char* bad : {"recall", "recall@0", "recall@x", "auc@10"}) {
    try {
      parse_metric_at_k(bad, "--valid-metric");
      ADD_FAILURE() << bad;
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).rfind("--valid-metric", 0), 0u) << e.what();
    }
  }
}
