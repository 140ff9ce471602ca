#include "app/workflow.hpp"

#include <chrono>
#include <cstdio>

#include "app/options.hpp"
#include "core/progress.hpp"
#include "seqrec/error.hpp"

namespace seqrec {

std::string folder_display(std::string d) {
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d == "/" ? d : d + "/";
}

ModelBundle train_model(const std::string& type, const Config& config, const TrainData& data,
                        const FitContext& ctx) {
  ModelBundle b;
  b.model = create_model(type, config);
  const auto t0 = std::chrono::steady_clock::now();
  b.model->fit(data.train, data.items.size(), ctx);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  b.items = data.items;
  b.item_counts = item_counts(data.train, data.items.size());
  b.meta = {{"train_source", data.source},
            {"protocol", data.protocol},
            {"train_seconds", secs},
            {"train_peak_rss_bytes", peak_rss_bytes()},
            {"train_stats", sequence_stats(data.train)}};
  if (const std::string prec = b.model->training_precision(); !prec.empty())
    b.meta["precision"] = prec;  // the precision fit() used (config has the requested one)
  return b;
}

nlohmann::json ItemFeatures::describe() const {
  nlohmann::json j = table.describe();
  j["alignment"] = alignment.to_json();
  return j;
}

bool model_uses_item_features(const std::string& type) {
  return type == "dssm" || type == "sasrec";
}

ItemFeatures load_item_features(const std::string& path, const FeatureReadOptions& opt,
                                const Vocab& items, bool quiet) {
  ItemFeatures f;
  f.table = read_features(path, opt);
  f.rows = align_features(f.table, items, &f.alignment, "item");
  if (!quiet)
    std::fprintf(stderr,
                 "item features from %s (%s): %d features; %lld of %d items have features, "
                 "%lld have none; %lld ids of the file are not in the data\n",
                 path.c_str(), f.table.format.c_str(), f.table.n_features(),
                 static_cast<long long>(f.alignment.matched), items.size(),
                 static_cast<long long>(f.alignment.without_features),
                 static_cast<long long>(f.alignment.not_in_vocab));
  return f;
}

EpochValidation::EpochValidation(const std::string& data, const TrainData& train, MetricAtK metric,
                                 const ReadOptions& read, int threads)
    : EpochValidation(load_test_data(data, SplitPart::Valid, train.items, read), train,
                      std::move(metric), threads) {}

EpochValidation::EpochValidation(TestData valid, const TrainData& train, MetricAtK metric,
                                 int threads)
    : metric_(std::move(metric)), valid_(std::move(valid)) {
  counts_ = item_counts(train.train, train.items.size());
  options_ = to_eval_options(Config(eval_option_specs()), train.protocol);
  options_.cutoffs = {metric_.k};
  options_.threads = threads;
  options_.progress = false;
}

void EpochValidation::attach(FitContext& ctx, nlohmann::json* history) const {
  ctx.validate = [this, history](const Model& m, int epoch) {
    EvalResult r = evaluate(m, valid_.test, options_, counts_);
    const std::string key = metric_.result_key();
    const double v = r.metrics.at(key);
    progress_break_line();  // the epoch's progress bar may still be on this line
    std::fprintf(stderr, "epoch %d: validation %s = %.4f\n", epoch, key.c_str(), v);
    history->push_back({{"epoch", epoch}, {"metrics", r.metrics}});
    return v;
  };
}

EvalResult evaluate_bundle(const ModelBundle& bundle, const TestData& data, EvalOptions opt) {
  if (count_predictions(data.test, opt.protocol) == 0)
    throw InputError(data.source, 0,
                     "the test set gives 0 predictions: none of its " +
                         std::to_string(data.test.size()) +
                         " sequences has 2 or more events over items the model knows (" +
                         std::to_string(data.dropped_events) +
                         " events with unknown items were skipped); metrics would be "
                         "meaningless. Prepare the data with `seqrec prepare`, which refuses "
                         "degenerate test sets");
  if (opt.cold_items.empty()) opt.cold_items = data.cold_items;
  EvalResult r = evaluate(*bundle.model, data.test, opt, bundle.item_counts);
  r.n_skipped_unknown = data.dropped_events;
  return r;
}

}  // namespace seqrec
