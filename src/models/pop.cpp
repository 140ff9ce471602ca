// Most popular: every item scored by its number of training events, whatever the prefix.
#include <cstring>
#include <memory>

#include "core/progress.hpp"
#include "models/model_base.hpp"

namespace seqrec {

namespace {

class PopModel final : public ModelBase {
 public:
  using ModelBase::ModelBase;
  std::string type() const override { return "pop"; }

  void fit(const SequenceSet& train, int32_t n_items, const FitContext& ctx) override {
    check_training_data(train, n_items, "pop");
    Progress bar("pop", train.n_events(), "events", ctx.progress);
    n_items_ = n_items;
    counts_ = count_items(train, n_items);
    bar.add(train.n_events());
    bar.finish();
    finalize();
  }

  void score(std::span<const std::span<const int32_t>> seqs, std::span<const PrefixQuery> queries,
             float* out) const override {
    const size_t n = static_cast<size_t>(n_items_);
    for (size_t q = 0; q < queries.size(); ++q) {
      query_prefix(seqs, queries[q]);  // validates the query
      std::memcpy(out + q * n, scores_.data(), n * sizeof(float));
    }
  }

  void save(TensorWriter& w) const override {
    w.add<int64_t>("item_counts", std::span<const int64_t>(counts_));
  }

  void load(const TensorReader& r) override {
    const auto c = read_vector<int64_t>(r, "item_counts");
    if (c.empty()) bad_tensor(r, "item_counts", "is empty");
    counts_.assign(c.begin(), c.end());
    n_items_ = static_cast<int32_t>(counts_.size());
    finalize();
  }

 private:
  void finalize() {
    scores_.resize(counts_.size());
    for (size_t i = 0; i < counts_.size(); ++i) scores_[i] = static_cast<float>(counts_[i]);
  }

  std::vector<int64_t> counts_;
  std::vector<float> scores_;
};

}  // namespace

ModelInfo pop_model_info() {
  return {"pop",
          "most popular: every item scored by its number of training events (no parameters)",
          {},
          [](const Config& c) { return std::make_unique<PopModel>(c); }};
}

}  // namespace seqrec
