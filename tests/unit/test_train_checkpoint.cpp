// Training checkpoints: an interrupted GRU4Rec or SASRec run resumed from its checkpoint
// reaches bit-identical weights to the uninterrupted run (also across early stopping and a
// raised epoch budget), the negative sample store resumes mid-generation, baselines
// checkpoint their final model, and resuming refuses other models, data, configurations,
// settings and damaged files with errors that name the field.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "app/checkpoint.hpp"
#include "models/gru4rec.hpp"
#include "models/sasrec.hpp"
#include "seqrec/checkpoint.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "test_data_util.hpp"
#include "train/sampler.hpp"

using namespace seqrec;
namespace fs = std::filesystem;

namespace {

/// Thrown from the checkpoint callback to stop training the way a kill would.
struct Killed {};

using seqrec::test::TempDir;

TrainData make_data(int64_t events, int32_t items, uint64_t seed) {
  GenerateOptions o;
  o.n_events = events;
  o.n_items = items;
  o.mean_length = 6.0;
  o.seed = seed;
  EventLog log = generate_sessions(o);
  TrainData d;
  d.items = std::move(log.items);
  d.train = std::move(log.seqs);
  d.source = "generated";
  return d;
}

Config config_of(const std::string& type,
                 const std::vector<std::pair<std::string, std::string>>& values) {
  Config c = default_config(type);
  for (const auto& [k, v] : values) c.set(k, v, "test");
  return c;
}

Config gru_cfg(const std::string& epochs = "4") {
  // Dropout on both layers, momentum and logQ: every piece of state a resume must restore.
  // 37 rows of samples: store generations end in the middle of epochs.
  return config_of("gru4rec", {{"layers", "16"},
                               {"batch_size", "8"},
                               {"n_sample", "32"},
                               {"sample_store_size", std::to_string(37 * 32)},
                               {"dropout_p_embed", "0.1"},
                               {"dropout_p_hidden", "0.2"},
                               {"momentum", "0.3"},
                               {"logq", "1"},
                               {"n_epochs", epochs}});
}

Config sas_cfg(const std::string& loss, const std::string& epochs = "4") {
  return config_of("sasrec", {{"hidden_units", "16"},
                              {"maxlen", "12"},
                              {"batch_size", "16"},
                              {"dropout_rate", "0.2"},
                              {"loss", loss},
                              {"n_negatives", "20"},
                              {"sampling", "pop"},
                              {"num_epochs", epochs}});
}

FitContext quiet(uint64_t seed = 5) {
  FitContext c;
  c.threads = 1;
  c.seed = seed;
  c.progress = false;
  return c;
}

/// Every tensor Model::save writes, as (name, shape, bytes).
struct Saved {
  std::string name;
  std::vector<int64_t> shape;
  std::string bytes;
  bool operator==(const Saved&) const = default;
};
std::vector<Saved> saved(const Model& m) {
  TensorWriter w;
  m.save(w);
  std::vector<Saved> out;
  for (const auto& e : w.entries())
    out.push_back({e.name, e.shape, std::string(static_cast<const char*>(e.data), e.nbytes)});
  return out;
}

void expect_same_weights(const Model& a, const Model& b) {
  const auto sa = saved(a), sb = saved(b);
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].name, sb[i].name);
    EXPECT_EQ(sa[i].shape, sb[i].shape) << sa[i].name;
    EXPECT_TRUE(sa[i].bytes == sb[i].bytes) << "tensor " << sa[i].name << " differs";
  }
}

/// Writes a checkpoint file after every epoch (as the app layer does) and "kills" the run
/// by throwing after epoch `kill_after` (0 = never).
std::function<void(const Model&, const TrainingState&)> checkpoint_to(const std::string& path,
                                                                      const TrainData& d,
                                                                      int64_t kill_after) {
  return [path, &d, kill_after](const Model& m, const TrainingState& st) {
    save_checkpoint(path, m, d.items, item_counts(d.train, d.items.size()), {}, st,
                    {{"note", "test"}});
    if (st.epoch == kill_after) throw Killed{};
  };
}

/// Trains `cfg` uninterrupted, and again killed after `kill_after` epochs then resumed from
/// the checkpoint file; the two must hold the same bytes. With `resume_cfg`, the first run
/// is a complete `kill_after`-epoch run of `cfg`, resumed with the larger budget of
/// `resume_cfg`, and the reference is an uninterrupted run of `resume_cfg`.
void check_resume_is_exact(const std::string& type, const Config& cfg, const TrainData& d,
                           int64_t kill_after, const FitContext& base, const Config* resume_cfg,
                           const std::string& ck_path) {
  auto full = create_model(type, resume_cfg ? *resume_cfg : cfg);
  FitContext c0 = base;
  std::vector<int64_t> full_epochs, resumed_epochs;
  c0.checkpoint = [&](const Model&, const TrainingState& st) { full_epochs.push_back(st.epoch); };
  full->fit(d.train, d.items.size(), c0);

  auto first = create_model(type, cfg);
  FitContext c1 = base;
  c1.checkpoint = checkpoint_to(ck_path, d, resume_cfg ? 0 : kill_after);
  if (resume_cfg) {
    first->fit(d.train, d.items.size(), c1);  // a complete shorter run
  } else {
    EXPECT_THROW(first->fit(d.train, d.items.size(), c1), Killed);
  }
  Checkpoint ck = load_checkpoint(ck_path);
  EXPECT_EQ(ck.state.epoch, kill_after);
  EXPECT_EQ(ck.info.value("note", ""), "test");

  auto second = create_model(type, resume_cfg ? *resume_cfg : cfg);
  FitContext c2 = base;
  c2.resume = &ck.state;
  c2.checkpoint = [&](const Model&, const TrainingState& st) {
    resumed_epochs.push_back(st.epoch);
  };
  second->fit(d.train, d.items.size(), c2);
  expect_same_weights(*full, *second);
  // The resumed run trained only the epochs after the checkpoint (a model that ignored
  // `resume` and trained from scratch would reach the same weights).
  std::vector<int64_t> rest;
  for (int64_t e : full_epochs)
    if (e > kill_after) rest.push_back(e);
  EXPECT_EQ(resumed_epochs, rest);
}

}  // namespace

TEST(SampleStoreResume, RestoredStoreHandsOutTheSameRows) {
  const std::vector<int64_t> counts{5, 1, 3, 9, 2, 7, 4, 1, 6, 8};
  train::SampleStore a(train::ItemSampler(counts, 0.5), 4, 4 * 7, 99);
  std::vector<std::vector<int32_t>> rows;
  for (int i = 0; i < 40; ++i) {
    const int32_t* r = a.next();
    rows.emplace_back(r, r + 4);
  }
  for (int at : {0, 3, 7, 16, 21}) {
    train::SampleStore b(train::ItemSampler(counts, 0.5), 4, 4 * 7, 99);
    for (int i = 0; i < at; ++i) b.next();
    train::SampleStore c(train::ItemSampler(counts, 0.5), 4, 4 * 7, 99);
    c.restore(b.generations(), b.position());
    for (int i = at; i < 40; ++i) {
      const int32_t* r = c.next();
      EXPECT_EQ(std::vector<int32_t>(r, r + 4), rows[static_cast<size_t>(i)]) << at << " " << i;
    }
  }
  train::SampleStore d(train::ItemSampler(counts, 0.5), 4, 4 * 7, 99);
  EXPECT_THROW(d.restore(0, 3), Error);  // nothing drawn yet means position = rows
  EXPECT_THROW(d.restore(2, 8), Error);  // beyond the 7 rows
  EXPECT_THROW(d.restore(-1, 7), Error);
}

TEST(CheckpointResume, Gru4recFourEpochsEqualTwoPlusTwo) {
  TempDir dir;
  const TrainData d = make_data(6000, 150, 3);
  check_resume_is_exact("gru4rec", gru_cfg(), d, 2, quiet(), nullptr, dir.file("g.ckpt"));
  // The checkpoint stopped in the middle of a sample store generation: the test covers the
  // regeneration on resume.
  const Checkpoint ck = load_checkpoint(dir.file("g.ckpt"));
  const int64_t pos = ck.state.values.at("sample_position").get<int64_t>();
  EXPECT_GT(pos, 0);
  EXPECT_LT(pos, ck.state.values.at("sample_rows").get<int64_t>());
  EXPECT_GT(ck.state.values.at("sample_generation").get<int64_t>(), 1);
}

TEST(CheckpointResume, Gru4recCompletedShortRunExtendedEqualsLongRun) {
  TempDir dir;
  const TrainData d = make_data(6000, 150, 3);
  const Config four = gru_cfg("4");
  check_resume_is_exact("gru4rec", gru_cfg("2"), d, 2, quiet(), &four, dir.file("g.ckpt"));
}

TEST(CheckpointResume, Gru4recEarlyStoppingSurvivesTheKill) {
  TempDir dir;
  const TrainData d = make_data(5000, 120, 4);
  // Validation peaks at epoch 2; patience 2 stops after epoch 4 of 6 with epoch 2's weights.
  FitContext base = quiet();
  base.patience = 2;
  base.validate = [](const Model&, int epoch) {
    const double s[] = {0.1, 0.5, 0.4, 0.3, 0.9, 0.9};
    return s[epoch - 1];
  };
  for (int64_t kill : {1, 3, 4}) {
    SCOPED_TRACE("killed after epoch " + std::to_string(kill));
    check_resume_is_exact("gru4rec", gru_cfg("6"), d, kill, base, nullptr, dir.file("g.ckpt"));
  }
  const Checkpoint ck = load_checkpoint(dir.file("g.ckpt"));
  EXPECT_TRUE(ck.state.stopped_early);
  Gru4recModel m(gru_cfg("6"));
  FitContext c = base;
  c.resume = &ck.state;
  m.fit(d.train, d.items.size(), c);
  EXPECT_EQ(m.fit_stats().epochs_run, 4);
  EXPECT_EQ(m.fit_stats().best_epoch, 2);
  EXPECT_EQ(m.fit_stats().epoch_loss.size(), 4u);
}

TEST(CheckpointResume, SasrecFourEpochsEqualTwoPlusTwo) {
  TempDir dir;
  const TrainData d = make_data(5000, 80, 6);
  for (const char* loss : {"bce", "sampled_softmax", "ce"}) {
    SCOPED_TRACE(loss);
    check_resume_is_exact("sasrec", sas_cfg(loss), d, 2, quiet(), nullptr, dir.file("s.ckpt"));
  }
  const Config four = sas_cfg("gbce", "4");
  check_resume_is_exact("sasrec", sas_cfg("gbce", "2"), d, 2, quiet(), &four, dir.file("s.ckpt"));
}

TEST(CheckpointResume, SasrecEarlyStoppingSurvivesTheKill) {
  TempDir dir;
  const TrainData d = make_data(4000, 60, 8);
  FitContext base = quiet();
  base.patience = 2;
  base.validate = [](const Model&, int epoch) {
    const double s[] = {0.1, 0.5, 0.4, 0.3, 0.9, 0.9};
    return s[epoch - 1];
  };
  for (int64_t kill : {1, 3, 4})
    check_resume_is_exact("sasrec", sas_cfg("bce", "6"), d, kill, base, nullptr,
                          dir.file("s.ckpt"));
}

TEST(CheckpointResume, StateThatDoesNotFitIsAnError) {
  TempDir dir;
  const TrainData d = make_data(3000, 80, 9);
  auto m = create_model("gru4rec", gru_cfg("2"));
  FitContext c = quiet();
  c.checkpoint = checkpoint_to(dir.file("g.ckpt"), d, 0);
  m->fit(d.train, d.items.size(), c);
  Checkpoint ck = load_checkpoint(dir.file("g.ckpt"));
  // More epochs done than the budget.
  auto one = create_model("gru4rec", gru_cfg("1"));
  FitContext r = quiet();
  r.resume = &ck.state;
  EXPECT_THROW(one->fit(d.train, d.items.size(), r), InputError);
  // A missing state tensor and a missing field name themselves.
  TrainingState st = ck.state;
  st.tensors.erase(st.tensors.begin());
  r.resume = &st;
  auto m2 = create_model("gru4rec", gru_cfg("3"));
  try {
    m2->fit(d.train, d.items.size(), r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is missing"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(dir.file("g.ckpt")), std::string::npos) << e.what();
  }
  st = ck.state;
  st.values.erase("dropout_rng");
  try {
    m2->fit(d.train, d.items.size(), r);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'dropout_rng'"), std::string::npos) << e.what();
  }
}

// ---- the app layer: train_model_checkpointed, check_resume, check_train_paths

namespace {

nlohmann::json run_settings(uint64_t seed) {
  return {{"seed", seed}, {"validation", false}, {"monitor", false}, {"patience", 0}};
}

ModelBundle app_train(const std::string& type, const Config& cfg, const TrainData& d,
                      const std::string& ck, const std::string& resume, uint64_t seed = 5) {
  CheckpointOptions o;
  o.path = ck;
  o.resume = resume;
  o.run = run_settings(seed);
  o.threads = 1;
  o.progress = false;
  nlohmann::json history = nlohmann::json::array();
  return train_model_checkpointed(type, cfg, d, quiet(seed), o, &history);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  } catch (const Error& e) {
    return std::string("(not an InputError) ") + e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(CheckpointApp, ResumeChecksModelDataConfigurationAndSettings) {
  TempDir dir;
  const TrainData d = make_data(3000, 80, 10);
  const std::string ck = dir.file("g.ckpt");
  ModelBundle b = app_train("gru4rec", gru_cfg("2"), d, ck, "");
  EXPECT_EQ(model_file_kind(ck), "checkpoint");
  const Checkpoint c = load_checkpoint(ck);
  EXPECT_EQ(c.state.epoch, 2);
  EXPECT_EQ(c.info.value("kind", ""), "epoch");
  EXPECT_EQ(c.bundle.meta.value("checkpoint_epoch", -1), 2);

  // Another model type.
  std::string e = error_of([&] { app_train("sasrec", sas_cfg("bce", "2"), d, "", ck); });
  EXPECT_NE(e.find("model type differs"), std::string::npos) << e;
  EXPECT_NE(e.find("--resume " + ck), std::string::npos) << e;
  // Other data: one event fewer.
  TrainData d2 = d;
  d2.train = SequenceSet();
  for (size_t i = 0; i < d.train.size(); ++i) {
    auto s = d.train.seq(i);
    auto t = d.train.seq_times(i);
    if (i == 0) {
      s = s.first(s.size() - 1);
      t = t.first(t.size() - 1);
    }
    d2.train.push(d.train.ids[i], s, t);
  }
  e = error_of([&] { app_train("gru4rec", gru_cfg("4"), d2, "", ck); });
  EXPECT_NE(e.find("data field 'n_events'"), std::string::npos) << e;
  // Same counts, other items: the hash tells.
  d2 = d;
  std::swap(d2.train.items[0], d2.train.items[1]);
  if (d2.train.items[0] == d2.train.items[1]) d2.train.items[0] = (d2.train.items[0] + 1) % 80;
  e = error_of([&] { app_train("gru4rec", gru_cfg("4"), d2, "", ck); });
  EXPECT_NE(e.find("data field 'sequences_hash'"), std::string::npos) << e;
  // Another parameter.
  Config other = gru_cfg("4");
  other.set("layers", "24", "test");
  e = error_of([&] { app_train("gru4rec", other, d, "", ck); });
  EXPECT_NE(e.find("parameter 'layers' differs"), std::string::npos) << e;
  // Another seed.
  e = error_of([&] { app_train("gru4rec", gru_cfg("4"), d, "", ck, 6); });
  EXPECT_NE(e.find("setting 'seed' differs"), std::string::npos) << e;
  // A smaller epoch budget than the checkpoint's progress.
  e = error_of([&] { app_train("gru4rec", gru_cfg("1"), d, "", ck); });
  EXPECT_NE(e.find("completed 2 epochs"), std::string::npos) << e;
  // A larger one continues, and equals a fresh 3-epoch run.
  ModelBundle more = app_train("gru4rec", gru_cfg("3"), d, "", ck);
  ModelBundle fresh = app_train("gru4rec", gru_cfg("3"), d, "", "");
  expect_same_weights(*more.model, *fresh.model);
  EXPECT_EQ(more.meta["resumed_from"]["epoch"], 2);
  EXPECT_GE(more.meta["train_seconds"].get<double>(), c.info["elapsed_seconds"].get<double>());
}

TEST(CheckpointApp, DamagedOrWrongFilesAreClearErrors) {
  TempDir dir;
  const TrainData d = make_data(3000, 80, 11);
  const std::string ck = dir.file("g.ckpt");
  ModelBundle b = app_train("gru4rec", gru_cfg("1"), d, ck, "");
  const std::string model = dir.file("final.seqrec");
  save_model(model, b);
  EXPECT_EQ(model_file_kind(model), "model");
  EXPECT_EQ(model_file_kind(dir.file("absent")), "");

  // A final model is not a checkpoint.
  std::string e = error_of([&] { load_checkpoint(model); });
  EXPECT_NE(e.find("not a training checkpoint"), std::string::npos) << e;
  // Truncated and corrupted copies.
  const auto size = fs::file_size(ck);
  fs::copy_file(ck, dir.file("cut.ckpt"));
  fs::resize_file(dir.file("cut.ckpt"), size / 2);
  e = error_of([&] { load_checkpoint(dir.file("cut.ckpt")); });
  EXPECT_NE(e.find("corrupt or truncated"), std::string::npos) << e;
  fs::copy_file(ck, dir.file("flip.ckpt"));
  {
    std::fstream f(dir.file("flip.ckpt"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(size - 100));
    f.put('\x5a');
  }
  e = error_of([&] { load_checkpoint(dir.file("flip.ckpt")); });
  EXPECT_NE(e.find("checksum mismatch"), std::string::npos) << e;
  // A checkpoint still loads as a model (the weights of its last epoch).
  ModelBundle as_model = load_model(ck);
  EXPECT_EQ(as_model.model->type(), "gru4rec");

  // Paths: never one kind over the other.
  CheckpointOptions o;
  o.path = ck;
  e = error_of([&] { check_train_paths(ck, o); });
  EXPECT_NE(e.find("same file"), std::string::npos) << e;
  o.path.clear();
  e = error_of([&] { check_train_paths(ck, o); });
  EXPECT_NE(e.find("is a training checkpoint"), std::string::npos) << e;
  o.path = model;
  e = error_of([&] { check_train_paths(dir.file("new.seqrec"), o); });
  EXPECT_NE(e.find("is a final model file"), std::string::npos) << e;
  {
    std::ofstream f(dir.file("notes.txt"));
    f << "precious\n";
  }
  o.path = dir.file("notes.txt");
  e = error_of([&] { check_train_paths(dir.file("new.seqrec"), o); });
  EXPECT_NE(e.find("is a text file"), std::string::npos) << e;
  EXPECT_NE(e.find("--force"), std::string::npos) << e;
  o.path = ck;
  o.resume = dir.file("new.seqrec");
  e = error_of([&] { check_train_paths(dir.file("new.seqrec"), o); });
  EXPECT_NE(e.find("--resume and --out"), std::string::npos) << e;
  o.resume = ck;
  EXPECT_EQ(error_of([&] { check_train_paths(dir.file("new.seqrec"), o); }), "(no error)");
}

TEST(CheckpointApp, BaselinesCheckpointTheirFinalModel) {
  TempDir dir;
  const TrainData d = make_data(3000, 80, 12);
  for (const char* type : {"pop", "sr", "vsknn"}) {
    const std::string ck = dir.file(std::string(type) + ".ckpt");
    ModelBundle a = app_train(type, default_config(type), d, ck, "");
    const Checkpoint c = load_checkpoint(ck);
    EXPECT_EQ(c.info.value("kind", ""), "final") << type;
    ModelBundle b = app_train(type, default_config(type), d, ck, ck);
    expect_same_weights(*a.model, *b.model);
    EXPECT_EQ(b.meta["resumed_from"]["epoch"], 0);
  }
  // A single-pass checkpoint admits no change of configuration at all.
  const std::string ck = dir.file("sr.ckpt");
  Config other = default_config("sr");
  other.set("steps", "3", "test");
  const std::string e = error_of([&] { app_train("sr", other, d, "", ck); });
  EXPECT_NE(e.find("parameter 'steps' differs"), std::string::npos) << e;
}
