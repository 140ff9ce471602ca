// The recommender core: a model snapshot swapped atomically on reload, the session store,
// and the scoring path of one request (on the calling thread, one OpenMP thread).
#include "seqrec/recommender.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "core/parallel.hpp"
#include "io/model_file.hpp"
#include "seqrec/error.hpp"
#include "seqrec/features.hpp"
#include "serve/ann_index.hpp"
#include "serve/dot_head.hpp"
#include "serve/redis_store.hpp"
#include "serve/score_batcher.hpp"
#include "serve/session_codec.hpp"
#include "serve/session_store.hpp"
#include "serve/topk.hpp"

namespace seqrec {

namespace {

using serve::Clock;
using serve::Session;

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// An immutable loaded model and what the request path needs to know about it.
struct Snapshot {
  ModelBundle bundle;
  uint64_t generation = 0;
  uint64_t catalogue_generation = 0;
  // The same in every process that loaded the same file (serve/session_codec.hpp): what a
  // session kept outside the process (Redis, a snapshot) is checked against.
  uint64_t catalogue_fp = 0, model_fp = 0;
  bool incremental = false;
  bool exclude_default = false;
  int32_t context = 0;  // events given to score() (0 = the whole kept history)
  int32_t history = 0;  // events kept per session
  std::string path;
  double loaded_unix = 0.0;
  // Models with a dot-product output layer: its repacked copy, and the batcher that scores
  // concurrent requests through it (null otherwise).
  std::unique_ptr<serve::PackedDotHead> head;
  std::unique_ptr<serve::ScoreBatcher> batcher;
  // --retrieval ann: the index over the head's items (null: exact), how it was obtained,
  // and why there is none when one was asked for.
  std::unique_ptr<serve::AnnIndex> ann;
  std::string ann_source;
  double ann_build_seconds = 0.0;
  std::string ann_notice;
};

/// The live catalogue of one loaded model: its trained items, the items added at run time
/// (indices n_base, n_base + 1, ...; never reused) and the retired ones. Immutable once
/// published: a change makes a new one (copy-on-write) that is published together with the
/// model snapshot it belongs to, under the same lock, so that a request sees one consistent
/// catalogue from start to end. The added items' rows live in a buffer shared by the
/// catalogues of one model: a change only writes the row past the last one any published
/// catalogue has, so readers of older catalogues never see it change.
struct Catalogue {
  uint64_t version = 0;  // +1 per change; a reload starts again from the replay
  int32_t n_base = 0;    // trained items
  int32_t dim = 0;       // the head's width (0: no dot-product head)
  bool adds = false;     // the model adds items by their features
  std::string adds_why;  // why not
  std::shared_ptr<const FeatureEncoder> encoder;
  int32_t capacity = 0;                              // rows the buffers hold (max_added_items)
  std::shared_ptr<float[]> rows, bias;               // capacity x dim, capacity
  int32_t n_added = 0;                               // rows of this catalogue
  std::vector<std::string> ids;                      // added item j is index n_base + j
  std::unordered_map<std::string, int32_t> by_id;    // added id -> its newest index
  std::vector<int32_t> retired;                      // sorted ascending
  std::shared_ptr<const serve::PackedDotHead> head;  // over the added rows (null: none)

  int32_t total() const { return n_base + n_added; }
  int64_t live() const {
    return static_cast<int64_t>(total()) - static_cast<int64_t>(retired.size());
  }
  bool is_retired(int32_t i) const { return std::binary_search(retired.begin(), retired.end(), i); }
  int32_t find(const Vocab& v, const std::string& id) const {
    if (!by_id.empty()) {
      auto it = by_id.find(id);
      if (it != by_id.end()) return it->second;
    }
    return v.find(id);
  }
  const std::string& token(const Vocab& v, int32_t i) const {
    return i < n_base ? v.token(i) : ids[static_cast<size_t>(i - n_base)];
  }
  int64_t added_live() const {
    int64_t n = n_added;
    for (auto it = std::lower_bound(retired.begin(), retired.end(), n_base); it != retired.end();
         ++it)
      --n;
    return n;
  }
  /// A copy to change (the head is rebuilt by the caller when rows were added).
  std::shared_ptr<Catalogue> clone() const {
    auto c = std::make_shared<Catalogue>();
    c->version = version;
    c->n_base = n_base;
    c->dim = dim;
    c->adds = adds;
    c->adds_why = adds_why;
    c->encoder = encoder;
    c->capacity = capacity;
    c->rows = rows;
    c->bias = bias;
    c->n_added = n_added;
    c->ids = ids;
    c->by_id = by_id;
    c->retired = retired;
    c->head = head;
    return c;
  }
};

/// One change of the catalogue, as kept in memory and in the items file.
struct ItemOp {
  bool add = true;
  std::string id;
  nlohmann::json features;  // add: null = restore a retired trained item
  nlohmann::json to_json() const {
    nlohmann::json j = {{"op", add ? "add" : "retire"}, {"id", id}};
    if (add && !features.is_null()) j["features"] = features;
    return j;
  }
};

/// Per-thread buffers: a score row and index lists, reused across requests.
struct Scratch {
  std::vector<float> scores, query;
  std::vector<int32_t> items, forbidden, allowed, lexcl, lforb, lallow;
  std::vector<std::pair<int32_t, float>> candidates2;
  std::vector<std::pair<int32_t, float>> candidates;
  serve::AnnScratch ann;  // the ANN path's buffers
};

Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

constexpr double kMiB = 1048576.0;

void check_options(const RecommenderOptions& o) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw InputError("recommender options: " + what);
  };
  // The fields of the table, through its specs ("recommender options: parameter 'max_k'
  // must be between 1 and 1000000, got '0'").
  const std::vector<ParamSpec> specs = recommender_option_specs();
  auto check = [&](const std::string& name, const std::string& value) {
    for (const ParamSpec& s : specs)
      if (s.name == name) {
        canonical_value(s, value, "recommender options");
        return;
      }
    throw Error("internal: no recommender option '" + name + "'");
  };
  check("max_sessions", std::to_string(o.max_sessions));
  check("session_ttl", exact_text(o.session_ttl_seconds));
  check("max_history", std::to_string(o.max_history));
  check("default_k", std::to_string(o.default_k));
  check("max_k", std::to_string(o.max_k));
  check("session_shards", std::to_string(o.shards));
  check("max_batch", std::to_string(o.max_batch));
  check("batch_lanes", std::to_string(o.batch_lanes));
  check("session_store_timeout", exact_text(o.session_store_timeout_seconds));
  check("session_store_connections", std::to_string(o.session_store_connections));
  check("session_snapshot_interval", exact_text(o.session_snapshot_interval_seconds));
  check("reload_replay_events", std::to_string(o.reload_replay_events));
  check("max_added_items", std::to_string(o.max_added_items));
  need(o.max_item_id_bytes >= 1, "max_item_id_bytes must be at least 1");
  need(o.max_feature_value_bytes >= 1, "max_feature_value_bytes must be at least 1");
  check_ann_options(o.ann, "recommender options");
  if (o.session_store != "memory") {
    serve::parse_redis_url(o.session_store, "recommender options: session_store");
    need(o.session_snapshot.empty(),
         "session_snapshot is for the memory store (the Redis store keeps sessions in Redis)");
  }
  // The table's max_session_memory is in MiB for the command line; a library caller may
  // give any number of bytes.
  need(o.max_session_bytes >= 1, "max_session_bytes must be at least 1");
  need(o.default_k <= o.max_k, "default_k (" + std::to_string(o.default_k) +
                                   ") must not be larger than max_k (" + std::to_string(o.max_k) +
                                   ")");
  need(o.max_session_id_bytes >= 1, "max_session_id_bytes must be at least 1");
  need(o.threads_per_request >= 0 && o.threads_per_request <= 4096,
       "threads_per_request must be in [0, 4096]");
  need(o.sweep_interval_seconds >= 0 && std::isfinite(o.sweep_interval_seconds),
       "sweep_interval_seconds must be >= 0");
}

}  // namespace

std::vector<ParamSpec> recommender_option_specs() {
  const RecommenderOptions d;
  std::vector<ParamSpec> specs = {
      param_int("max_sessions", std::to_string(d.max_sessions), 1, static_cast<double>(1LL << 40),
                "live sessions at most (least recently used evicted first)"),
      param_float("session_ttl", exact_text(d.session_ttl_seconds), 0, 1e9,
                  "seconds after which an idle session is dropped (0 = never)"),
      param_float("max_session_memory", exact_text(static_cast<double>(d.max_session_bytes) / kMiB),
                  0.001, 1e9, "MiB of session state at most (least recently used evicted first)"),
      param_int("max_history", std::to_string(d.max_history), 1, 1000000,
                "events kept per session for scoring and exclusion (at least the model's "
                "context length)"),
      param_int("default_k", std::to_string(d.default_k), 1, 1000000,
                "K when a request gives none"),
      param_int("max_k", std::to_string(d.max_k), 1, 1000000, "largest K a request may ask for"),
      param_int("session_shards", std::to_string(d.shards), 0, 4096,
                "independently locked parts of the session table (0 = automatic)"),
      param_int("max_batch", std::to_string(d.max_batch), 1, 4096,
                "GRU4Rec/SASRec: concurrent requests scored in one pass over the item matrix "
                "at most (1 = each alone)"),
      param_int("batch_lanes", std::to_string(d.batch_lanes), 1, 4096,
                "GRU4Rec/SASRec: scoring passes run at once"),
      param_choice("head_storage", "int8", {"int8", "bf16", "fp32"},
                   "GRU4Rec/SASRec: int8 (a quarter of the memory traffic, candidates rescored "
                   "exactly), bf16 (half the traffic, fewer candidates rescored exactly) or "
                   "fp32; the same results"),
      param_string("session_store", d.session_store,
                   "where live sessions are kept: memory (this process), or "
                   "redis://HOST:PORT[/DB] (shared by replicas; survives restarts)"),
      param_string("session_key_prefix", d.session_key_prefix,
                   "Redis store: the key of a session is this prefix + its id"),
      param_float("session_store_timeout", exact_text(d.session_store_timeout_seconds), 0.001, 60,
                  "Redis store: seconds a request may wait for the store (else 503)"),
      param_int("session_store_connections", std::to_string(d.session_store_connections), 1, 4096,
                "Redis store: connections at most"),
      param_string("session_snapshot", d.session_snapshot,
                   "memory store: file the live sessions are written to at shutdown and read "
                   "from at start"),
      param_float("session_snapshot_interval", exact_text(d.session_snapshot_interval_seconds), 0,
                  1e9,
                  "memory store: seconds between periodic snapshots to --session-snapshot (0 = "
                  "only at shutdown)"),
      param_int("reload_replay_events", std::to_string(d.reload_replay_events), 0, 1000000,
                "after a reload with the same catalogue, a session's new model state is built "
                "from its last N kept events (0 = all kept)"),
      param_int("max_added_items", std::to_string(d.max_added_items), 0, 10000000,
                "items added at run time (POST /v1/items) at most per loaded model, retired "
                "ones included (0 = adding is off)"),
      param_string("items_file", d.items_file,
                   "file where every item added or retired at run time is appended (synced) "
                   "and replayed from at start and after a reload (\"\" = none: they last "
                   "until the process ends)"),
  };
  for (ParamSpec& p : ann_option_specs()) specs.push_back(std::move(p));
  return specs;
}

RecommenderOptions to_recommender_options(const Config& c) {
  RecommenderOptions o;
  o.max_sessions = c.get_int("max_sessions");
  o.session_ttl_seconds = c.get_float("session_ttl");
  o.max_session_bytes = static_cast<int64_t>(c.get_float("max_session_memory") * kMiB);
  o.max_history = static_cast<int32_t>(c.get_int("max_history"));
  o.default_k = static_cast<int32_t>(c.get_int("default_k"));
  o.max_k = static_cast<int32_t>(c.get_int("max_k"));
  o.shards = static_cast<int32_t>(c.get_int("session_shards"));
  o.max_batch = static_cast<int32_t>(c.get_int("max_batch"));
  o.batch_lanes = static_cast<int32_t>(c.get_int("batch_lanes"));
  switch (serve::parse_head_precision(c.get_string("head_storage"))) {
    case serve::HeadPrecision::Fp32:
      o.head_storage = RecommenderOptions::HeadStorage::Fp32;
      break;
    case serve::HeadPrecision::Bf16:
      o.head_storage = RecommenderOptions::HeadStorage::Bf16;
      break;
    case serve::HeadPrecision::Int8:
      o.head_storage = RecommenderOptions::HeadStorage::Int8;
      break;
  }
  o.session_store = c.get_string("session_store");
  o.session_key_prefix = c.get_string("session_key_prefix");
  o.session_store_timeout_seconds = c.get_float("session_store_timeout");
  o.session_store_connections = static_cast<int32_t>(c.get_int("session_store_connections"));
  o.session_snapshot = c.get_string("session_snapshot");
  o.session_snapshot_interval_seconds = c.get_float("session_snapshot_interval");
  o.reload_replay_events = static_cast<int32_t>(c.get_int("reload_replay_events"));
  o.ann = to_ann_options(c);
  o.max_added_items = static_cast<int32_t>(c.get_int("max_added_items"));
  o.items_file = c.get_string("items_file");
  return o;
}

struct Recommender::Impl {
  RecommenderOptions options;
  serve::SessionStore store;
  mutable std::mutex snap_mu;  // guards the pointer `snap` only (copied under it)
  std::shared_ptr<const Snapshot> snap;
  std::mutex reload_mu;  // one reload at a time
  mutable std::atomic<int64_t> events{0}, unknown{0}, reloads{0}, reload_failures{0};
  mutable std::atomic<int64_t> batches{0}, batched{0}, rescored{0}, ann_requests{0},
      ann_fallbacks{0};
  // The Redis store (null for the memory store) and the counters the memory store keeps
  // itself otherwise.
  std::unique_ptr<serve::RedisStore> redis;
  mutable std::atomic<int64_t> shared_created{0}, shared_dropped{0}, store_failures{0},
      store_retries{0}, restored{0}, restore_skipped{0};
  // Background sweeper of idle sessions.
  std::mutex sweep_mu;
  std::condition_variable sweep_cv;
  bool stopping = false;
  std::thread sweeper;
  std::mutex snapshot_mu;  // one snapshot write at a time
  // The live catalogue of `snap` (published with it, under snap_mu), the changes made to it
  // (replayed onto every newly loaded model) and the items file they are appended to.
  std::shared_ptr<const Catalogue> cat;
  std::mutex items_mu;  // one catalogue change (or replay and publication) at a time
  std::vector<ItemOp> journal;
  int items_fd = -1;
  int64_t items_size = 0;  // bytes of the items file written
  mutable std::atomic<int64_t> items_added{0}, items_retired{0};

  void check_session_id(const std::string& id) const;
  /// The deadline of a request's work on the Redis store.
  Clock::time_point store_deadline() const {
    return Clock::now() + std::chrono::duration_cast<Clock::duration>(
                              std::chrono::duration<double>(options.session_store_timeout_seconds));
  }
  /// Applies the request's known events to the session (its lock held, or a private copy);
  /// returns how many. Fills the session fields of `r`.
  static int64_t apply_events(Session& ses, const Snapshot& snap, const Catalogue& cat,
                              const SessionRequest& req, Recommendation& r);
  /// The top-K of the session into r.items.
  void score_session(const Session& ses, const Snapshot& snap, const Catalogue& cat,
                     const RecommendOptions& o, Scratch& sc, Recommendation& r) const;
  /// A session as stored outside the process, and back (a session of another catalogue,
  /// or with indices outside this one, comes back with catalogue_generation 0, so that
  /// reconcile() resets it; a state of another model with model_generation 0, so that
  /// reconcile() rebuilds it).
  static serve::StoredSession to_stored(const Session& ses, const Snapshot& snap,
                                        double last_used_unix);
  static void from_stored(const serve::StoredSession& st, const Snapshot& snap,
                          const Catalogue& cat, Session& ses);
  /// add_events() on the Redis store: read, apply, write back if unchanged, else again.
  Recommendation add_events_shared(const SessionRequest& req, int32_t k);

  static serve::StoreOptions store_options(const RecommenderOptions& o) {
    serve::StoreOptions so;
    so.max_sessions = o.max_sessions;
    so.max_bytes = o.max_session_bytes;
    so.ttl_seconds = o.session_ttl_seconds;
    int64_t shards = o.shards > 0 ? o.shards : std::clamp<int64_t>(o.max_sessions / 1024, 1, 64);
    so.shards = static_cast<int32_t>(std::min<int64_t>(shards, o.max_sessions));
    so.now = o.now;
    return so;
  }

  explicit Impl(RecommenderOptions o) : options(std::move(o)), store(store_options(options)) {
    if (options.session_store != "memory")
      redis = std::make_unique<serve::RedisStore>(
          serve::parse_redis_url(options.session_store, "session_store"),
          options.session_key_prefix, options.session_store_timeout_seconds,
          options.session_store_connections);
  }

  ~Impl() {
    if (items_fd >= 0) ::close(items_fd);
    {
      std::lock_guard<std::mutex> lock(sweep_mu);
      stopping = true;
    }
    sweep_cv.notify_all();
    if (sweeper.joinable()) sweeper.join();
  }

  /// The background thread: sweeps idle sessions (memory store with a TTL) and writes
  /// periodic snapshots (session_snapshot_interval_seconds).
  void start_sweeper(Recommender* owner) {
    const bool sweep =
        !redis && options.sweep_interval_seconds > 0 && options.session_ttl_seconds > 0;
    const bool snapshots =
        !options.session_snapshot.empty() && options.session_snapshot_interval_seconds > 0;
    if (!sweep && !snapshots) return;
    sweeper = std::thread([this, owner, sweep, snapshots] {
      using D = Clock::duration;
      auto dur = [](double sec) {
        return std::chrono::duration_cast<D>(std::chrono::duration<double>(sec));
      };
      Clock::time_point next_sweep =
          sweep ? Clock::now() + dur(options.sweep_interval_seconds) : Clock::time_point::max();
      Clock::time_point next_snap =
          snapshots ? Clock::now() + dur(options.session_snapshot_interval_seconds)
                    : Clock::time_point::max();
      std::unique_lock<std::mutex> lock(sweep_mu);
      while (!sweep_cv.wait_until(lock, std::min(next_sweep, next_snap),
                                  [this] { return stopping; })) {
        lock.unlock();
        const auto t = Clock::now();
        if (t >= next_sweep) {
          store.expire_idle();
          next_sweep = t + dur(options.sweep_interval_seconds);
        }
        if (t >= next_snap) {
          try {
            owner->save_session_snapshot();
          } catch (const std::exception& e) {
            std::fprintf(stderr, "seqrec: periodic session snapshot failed: %s\n", e.what());
          }
          next_snap = Clock::now() + dur(options.session_snapshot_interval_seconds);
        }
        lock.lock();
      }
    });
  }

  std::shared_ptr<const Snapshot> current() const {
    std::lock_guard<std::mutex> lock(snap_mu);
    return snap;
  }
  /// The model and its live catalogue, consistent with each other.
  std::pair<std::shared_ptr<const Snapshot>, std::shared_ptr<const Catalogue>> view() const {
    std::lock_guard<std::mutex> lock(snap_mu);
    return {snap, cat};
  }

  /// The catalogue of a freshly loaded model, before any change.
  std::shared_ptr<Catalogue> base_catalogue(const Snapshot& s) const {
    auto c = std::make_shared<Catalogue>();
    c->n_base = s.bundle.items.size();
    c->dim = s.head ? s.head->dim() : 0;
    const Model& m = *s.bundle.model;
    if (!m.adds_items()) {
      c->adds_why = "model type '" + m.type() +
                    "' cannot add items by their features (only dssm or sasrec trained with "
                    "--item-features can)";
    } else if (!s.head) {
      c->adds_why = "adding items needs the dot-product head (dot_product_head is off)";
    } else if (!s.bundle.meta.is_object() || !s.bundle.meta.contains("item_feature_encoder")) {
      c->adds_why =
          "the model file has no item feature encoder (trained without --item-features, or by a "
          "seqrec before items could be added); retrain it with --item-features";
    } else {
      c->encoder = std::make_shared<const FeatureEncoder>(FeatureEncoder::from_json(
          s.bundle.meta.at("item_feature_encoder"), s.path.empty() ? "the model" : s.path));
      c->adds = true;
    }
    if (c->adds && options.max_added_items == 0) {
      c->adds = false;
      c->adds_why = "adding items is off (--max-added-items 0)";
    }
    return c;
  }

  void check_item_id(const std::string& id) const {
    if (id.empty()) throw InputError("'id' must not be empty");
    if (static_cast<int64_t>(id.size()) > options.max_item_id_bytes)
      throw InputError("'id' is longer than " + std::to_string(options.max_item_id_bytes) +
                       " bytes");
  }

  /// The catalogue after `op` (InputError, ItemConflict, UnknownItem when it cannot be
  /// applied; `cur` is unchanged). The result's head is rebuilt when a row was added.
  std::shared_ptr<Catalogue> apply_op(const Snapshot& s, const Catalogue& cur, const ItemOp& op,
                                      AddItemResult* ar, RemoveItemResult* rr) const {
    check_item_id(op.id);
    const Vocab& v = s.bundle.items;
    const int32_t idx = cur.find(v, op.id);
    if (!op.add) {
      if (idx < 0 || cur.is_retired(idx))
        throw UnknownItem("item '" + op.id + "' is not in the live catalogue" +
                          (idx >= 0 ? " (retired already)" : ""));
      auto next = cur.clone();
      next->retired.insert(std::lower_bound(next->retired.begin(), next->retired.end(), idx), idx);
      if (rr) {
        rr->id = op.id;
        rr->index = idx;
        rr->added = idx >= cur.n_base;
      }
      return next;
    }
    if (idx >= 0 && !cur.is_retired(idx))
      throw ItemConflict("item '" + op.id + "' is live already (" +
                         (idx < cur.n_base ? "a trained item" : "added at run time") +
                         "); retire it first (DELETE /v1/items/ID) to add it again");
    if (op.features.is_null()) {
      if (idx >= 0 && idx < cur.n_base) {  // a retired trained item: back with its own vector
        auto next = cur.clone();
        next->retired.erase(std::lower_bound(next->retired.begin(), next->retired.end(), idx));
        if (ar) {
          ar->id = op.id;
          ar->index = idx;
          ar->restored = true;
        }
        return next;
      }
      throw InputError("'features' is required to add item '" + op.id + "'" +
                       (idx >= 0 ? " again (it was added at run time and retired)" : "") +
                       (cur.adds ? "" : "; besides, " + cur.adds_why));
    }
    if (!cur.adds) throw InputError("cannot add items by features: " + cur.adds_why);
    if (cur.n_added >= options.max_added_items)
      throw ItemConflict("the catalogue has had " + std::to_string(cur.n_added) +
                         " items added since the model was loaded, the most --max-added-items "
                         "allows");
    FeatureEncoder::Row row =
        cur.encoder->encode(op.features, static_cast<size_t>(options.max_feature_value_bytes));
    auto next = cur.clone();
    if (!next->rows) {
      next->capacity = options.max_added_items;
      next->rows = std::shared_ptr<float[]>(
          new float[static_cast<size_t>(next->capacity) * static_cast<size_t>(cur.dim)]);
      next->bias = std::shared_ptr<float[]>(new float[static_cast<size_t>(next->capacity)]);
    }
    // The row past every published catalogue's rows: no reader looks at it yet.
    float* r = next->rows.get() + static_cast<int64_t>(cur.n_added) * cur.dim;
    float b = 0.0f;
    s.bundle.model->encode_item(row.index, row.value, r, &b);
    for (int32_t k = 0; k < cur.dim; ++k)
      if (!std::isfinite(r[k])) throw InputError("the item tower gave a non-finite vector");
    next->bias[static_cast<size_t>(cur.n_added)] = b;
    const int32_t index = cur.n_base + cur.n_added;
    next->n_added = cur.n_added + 1;
    next->ids.push_back(op.id);
    next->by_id[op.id] = index;
    const DotProductHead h{cur.dim, next->rows.get(),
                           s.bundle.model->dot_product_head().bias ? next->bias.get() : nullptr};
    next->head =
        std::make_shared<const serve::PackedDotHead>(h, next->n_added, s.head->precision());
    if (ar) {
      ar->id = op.id;
      ar->index = index;
      ar->unknown_values = std::move(row.unknown_values);
    }
    return next;
  }

  /// Publishes a catalogue change of the current model (items_mu held): its row into the
  /// ANN index first, then the catalogue.
  void publish_catalogue(const Snapshot& s, const Catalogue& prev,
                         std::shared_ptr<Catalogue> next) {
    next->version = prev.version + 1;
    if (s.ann && next->n_added > prev.n_added) {
      const int64_t j = prev.n_added;
      s.ann->add(next->rows.get() + j * next->dim, next->bias[static_cast<size_t>(j)]);
    }
    std::lock_guard<std::mutex> lock(snap_mu);
    cat = std::move(next);
  }

  /// The catalogue of a newly loaded model with the journal replayed onto it (items_mu
  /// held); changes that no longer apply are skipped with a notice.
  std::shared_ptr<Catalogue> replay(const Snapshot& s) const {
    std::shared_ptr<Catalogue> c = base_catalogue(s);
    for (size_t j = 0; j < journal.size(); ++j) {
      const ItemOp& op = journal[j];
      try {
        auto next = apply_op(s, *c, op, nullptr, nullptr);
        next->version = c->version + 1;
        if (s.ann && next->n_added > c->n_added) {
          const int64_t r = c->n_added;
          s.ann->add(next->rows.get() + r * next->dim, next->bias[static_cast<size_t>(r)]);
        }
        c = std::move(next);
      } catch (const Error& e) {
        std::fprintf(stderr, "seqrec: note: item change %zu (%s '%s') skipped for this model: %s\n",
                     j + 1, op.add ? "add" : "retire", op.id.c_str(), e.what());
      }
    }
    return c;
  }

  /// Appends a change to the items file, synced (items_mu held). IoError when it fails
  /// (the file is cut back to what it was).
  void append_item_op(const ItemOp& op) {
    if (items_fd < 0) return;
    const std::string line =
        op.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    size_t done = 0;
    while (done < line.size()) {
      const ssize_t w = ::write(items_fd, line.data() + done, line.size() - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const int err = errno;
        rewind_items_file();
        throw IoError("cannot write the items file '" + options.items_file +
                      "': " + std::strerror(err));
      }
      done += static_cast<size_t>(w);
    }
    if (::fsync(items_fd) != 0) {
      const int err = errno;
      rewind_items_file();
      throw IoError("cannot sync the items file '" + options.items_file +
                    "': " + std::strerror(err));
    }
    items_size += static_cast<int64_t>(line.size());
  }

  /// After a failed append: the file back to its last complete line (best effort).
  void rewind_items_file() {
    if (::ftruncate(items_fd, static_cast<off_t>(items_size)) == 0)
      (void)::lseek(items_fd, static_cast<off_t>(items_size), SEEK_SET);
  }

  /// Reads the items file into the journal and opens it for appending. A last line without
  /// its newline (a write cut short by a crash) is dropped with a warning and cut off.
  void open_items_file() {
    const std::string& path = options.items_file;
    if (path.empty()) return;
    std::string data;
    {
      std::ifstream f(path, std::ios::binary);
      if (f) data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    }
    size_t end = data.rfind('\n');
    end = end == std::string::npos ? 0 : end + 1;
    if (end < data.size())
      std::fprintf(stderr,
                   "seqrec: warning: %s: the last line is incomplete (%zu bytes without a "
                   "newline: a write cut short); it is ignored and cut off\n",
                   path.c_str(), data.size() - end);
    size_t pos = 0;
    int64_t line = 0;
    while (pos < end) {
      const size_t nl = data.find('\n', pos);
      const std::string_view l(data.data() + pos, nl - pos);
      pos = nl + 1;
      ++line;
      if (l.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      ItemOp op;
      try {
        const nlohmann::json j = nlohmann::json::parse(l);
        const std::string kind = j.at("op").get<std::string>();
        if (kind != "add" && kind != "retire")
          throw std::runtime_error("unknown op '" + kind + "'");
        op.add = kind == "add";
        op.id = j.at("id").get<std::string>();
        if (op.add && j.contains("features")) op.features = j.at("features");
      } catch (const std::exception& e) {
        throw InputError(path, line,
                         std::string("not an item change of seqrec's items file (") + e.what() +
                             "); repair or move the file");
      }
      journal.push_back(std::move(op));
    }
    items_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (items_fd < 0)
      throw IoError("cannot open the items file '" + path + "': " + std::strerror(errno));
    if (::ftruncate(items_fd, static_cast<off_t>(end)) != 0 ||
        ::lseek(items_fd, static_cast<off_t>(end), SEEK_SET) < 0)
      throw IoError("cannot prepare the items file '" + path + "': " + std::strerror(errno));
    items_size = static_cast<int64_t>(end);
  }

  /// Checks a bundle and wraps it into a snapshot (not yet published).
  std::shared_ptr<Snapshot> make_snapshot(ModelBundle b, const std::string& path) const {
    if (!b.model) throw Error(path + ": the bundle has no model");
    const int32_t n = b.model->n_items();
    if (n <= 0) throw Error(path + ": the model has no items");
    if (n != b.items.size())
      throw Error(path + ": the model scores " + std::to_string(n) +
                  " items but the catalogue has " + std::to_string(b.items.size()));
    auto s = std::make_shared<Snapshot>();
    s->incremental = b.model->new_state() != nullptr;
    s->exclude_default = b.meta.is_object() && b.meta.value("protocol", "") == "sequential";
    const int32_t ctx = std::max<int32_t>(0, b.model->context_length());
    s->history = std::max(options.max_history, ctx);
    s->context = ctx;
    // A smoke test on the request path's own calls, so that a model that cannot score
    // fails the reload instead of the requests.
    std::vector<float> row(static_cast<size_t>(n));
    const int32_t item0 = 0;
    std::span<const int32_t> seq(&item0, 1);
    std::vector<std::span<const int32_t>> seqs{seq};
    PrefixQuery q{0, 1};
    b.model->score(seqs, std::span<const PrefixQuery>(&q, 1), row.data());
    if (s->incremental) {
      auto st = b.model->new_state();
      b.model->step(*st, 0);
      b.model->score_state(*st, row.data());
    }
    const DotProductHead head =
        options.dot_product_head ? b.model->dot_product_head() : DotProductHead{};
    if (head.dim > 0) {
      const serve::HeadPrecision precision =
          options.head_storage == RecommenderOptions::HeadStorage::Fp32 ? serve::HeadPrecision::Fp32
          : options.head_storage == RecommenderOptions::HeadStorage::Bf16
              ? serve::HeadPrecision::Bf16
              : serve::HeadPrecision::Int8;
      s->head = std::make_unique<serve::PackedDotHead>(head, n, precision);
      // The head must give the model's own scores (up to rounding): check on one query.
      std::vector<float> query(static_cast<size_t>(head.dim)), via_head(static_cast<size_t>(n));
      if (s->incremental) {
        auto st = b.model->new_state();
        b.model->step(*st, 0);
        b.model->state_query(*st, query.data());
      } else {
        b.model->query_vectors(seqs, std::span<const PrefixQuery>(&q, 1), query.data());
      }
      std::vector<int32_t> all(static_cast<size_t>(n));
      for (int32_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
      s->head->exact(query.data(), all, via_head.data());
      for (int32_t i = 0; i < n; ++i) {
        const float a = via_head[static_cast<size_t>(i)], e = row[static_cast<size_t>(i)];
        if (!(std::fabs(a - e) <= 1e-3f * (1.0f + std::fabs(e))))
          throw Error(path +
                      ": the model's dot-product output layer disagrees with its scores "
                      "(item " +
                      std::to_string(i) + ": " + std::to_string(a) + " vs " + std::to_string(e) +
                      ")");
      }
      // And the serving path (first pass, then top-K) finds the exact top-K.
      {
        const int32_t k = std::min<int32_t>(n, 20);
        std::vector<std::pair<int32_t, float>> cand;
        serve::HeadQuery hq{query.data(), k, 2.0 * s->head->error_bound(query.data()), &cand};
        const serve::HeadQuery* hp = &hq;
        s->head->select(1, &hp);
        const auto got = s->head->top_k(query.data(), cand, hq.window, k, {});
        const auto want = serve::select_top_k(via_head.data(), n, k, {});
        if (got != want)
          throw Error(path + ": internal: the serving top-K differs from the exact one");
      }
      const serve::PackedDotHead* h = s->head.get();
      const Impl* self = this;
      s->batcher = std::make_unique<serve::ScoreBatcher>(
          [h, self](int32_t count, void* const* jobs) {
            h->select(count, reinterpret_cast<const serve::HeadQuery* const*>(jobs));
            self->batches.fetch_add(1, std::memory_order_relaxed);
            self->batched.fetch_add(count, std::memory_order_relaxed);
          },
          options.max_batch, options.batch_lanes);
    }
    s->catalogue_fp = serve::catalogue_fingerprint(b.items);
    s->model_fp = serve::model_fingerprint(*b.model);
    if (options.ann.enabled) make_ann(*s, head, n, path);
    s->bundle = std::move(b);
    s->path = path;
    s->loaded_unix = unix_now();
    return s;
  }

  /// --retrieval ann: the index of the snapshot, built or read from options.ann.index_file
  /// (written there after a build); a notice instead when ANN does not apply.
  void make_ann(Snapshot& s, const DotProductHead& head, int32_t n, const std::string& path) const {
    const AnnOptions& ao = options.ann;
    const std::string name = path.empty() ? "the model" : path;
    if (head.dim <= 0) {
      s.ann_notice = name +
                     ": --retrieval ann needs a model with a dot-product output layer "
                     "(GRU4Rec, SASRec, DSSM) and --dot-product-head; scoring every item exactly";
    } else if (n < ao.min_items) {
      s.ann_notice = name + ": the catalogue has " + std::to_string(n) +
                     " items, fewer than --ann-min-items " + std::to_string(ao.min_items) +
                     "; scoring every item exactly (as fast as an index at this size)";
    }
    if (!s.ann_notice.empty()) {
      std::fprintf(stderr, "seqrec: note: %s\n", s.ann_notice.c_str());
      return;
    }
    const auto t0 = Clock::now();
    // At a reload, the index file of the model being replaced is stale, not foreign.
    const std::shared_ptr<const Snapshot> prev = current();
    s.ann =
        serve::obtain_ann_index(head, n, s.model_fp, ao, &s.ann_source, prev ? prev->model_fp : 0);
    s.ann_build_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }

  /// Publishes a model with its catalogue (items_mu held).
  ReloadResult publish(std::shared_ptr<Snapshot> next, std::shared_ptr<Catalogue> next_cat) {
    const auto t0 = Clock::now();
    ReloadResult r;
    auto [prev, prev_cat] = view();
    next->generation = prev ? prev->generation + 1 : 1;
    r.catalogue_changed = !prev || prev->bundle.items.tokens() != next->bundle.items.tokens();
    // Sessions hold indices of added items too: they keep their meaning only when the new
    // catalogue gives every one of them to the same item (the replay normally does).
    if (prev_cat && !r.catalogue_changed &&
        (prev_cat->ids.size() > next_cat->ids.size() ||
         !std::equal(prev_cat->ids.begin(), prev_cat->ids.end(), next_cat->ids.begin())))
      r.catalogue_changed = true;
    next->catalogue_generation =
        prev ? prev->catalogue_generation + (r.catalogue_changed ? 1 : 0) : 1;
    r.generation = next->generation;
    {
      std::lock_guard<std::mutex> lock(snap_mu);
      snap = std::move(next);
      cat = std::move(next_cat);
    }
    // Sessions of another catalogue are useless: free them now. (A request racing with
    // this sees the catalogue generation differ and empties its session itself.)
    if (prev && r.catalogue_changed) r.sessions_dropped = store.clear(serve::Eviction::Reload);
    r.swap_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
  }

  /// Loads a bundle with `load`, validates it and publishes it, timing both parts.
  ReloadResult load_and_publish(const std::function<ModelBundle()>& load, const std::string& path) {
    const auto t0 = Clock::now();
    std::shared_ptr<Snapshot> next = make_snapshot(load(), path);
    std::lock_guard<std::mutex> items_lock(items_mu);
    std::shared_ptr<Catalogue> next_cat = replay(*next);
    const double load_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    ReloadResult r = publish(std::move(next), std::move(next_cat));
    r.load_seconds = load_seconds;
    r.seconds = load_seconds + r.swap_seconds;
    return r;
  }

  void check_request(const RecommendOptions& o, int32_t* k) const {
    *k = o.k.value_or(options.default_k);
    if (*k < 1 || *k > options.max_k)
      throw InputError("k must be between 1 and " + std::to_string(options.max_k) + ", got " +
                       std::to_string(*k));
  }

  /// Item indices of `ids` (sorted, unique) into `out`; unknown ids appended to `unknown`.
  static void lookup_sorted(const Vocab& v, const Catalogue& c, const std::vector<std::string>& ids,
                            std::vector<int32_t>& out, std::vector<std::string>& unknown) {
    out.clear();
    for (const auto& id : ids) {
      const int32_t i = c.find(v, id);
      if (i < 0)
        unknown.push_back(id);
      else
        out.push_back(i);
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }

  /// The filter of a request (lookups into sc.forbidden / sc.allowed); retired items are
  /// forbidden.
  static serve::TopKFilter make_filter(const Snapshot& s, const Catalogue& c,
                                       const RecommendOptions& o, std::span<const int32_t> seen,
                                       Scratch& sc, Recommendation& r) {
    const Vocab& v = s.bundle.items;
    serve::TopKFilter f;
    if (r.exclude_seen) f.excluded = seen;
    lookup_sorted(v, c, o.forbidden_items, sc.forbidden, r.unknown_filter_items);
    if (!c.retired.empty()) {
      const size_t n = sc.forbidden.size();
      sc.forbidden.insert(sc.forbidden.end(), c.retired.begin(), c.retired.end());
      std::inplace_merge(sc.forbidden.begin(),
                         sc.forbidden.begin() + static_cast<std::ptrdiff_t>(n), sc.forbidden.end());
      sc.forbidden.erase(std::unique(sc.forbidden.begin(), sc.forbidden.end()), sc.forbidden.end());
    }
    f.forbidden = sc.forbidden;
    if (o.allowed_items) {
      lookup_sorted(v, c, *o.allowed_items, sc.allowed, r.unknown_filter_items);
      f.has_allowed = true;
      f.allowed = sc.allowed;
    }
    f.drop_neg_inf = r.exclude_seen;
    return f;
  }

  static void fill(const Snapshot& s, const Catalogue& c,
                   const std::vector<std::pair<int32_t, float>>& top, Recommendation& r) {
    r.items.reserve(top.size());
    for (const auto& [i, score] : top) r.items.push_back({c.token(s.bundle.items, i), score});
  }

  /// Scores have been written into sc.scores: fill r.items.
  static void finish(const Snapshot& s, const Catalogue& c, const RecommendOptions& o,
                     std::span<const int32_t> seen, Scratch& sc, Recommendation& r) {
    const serve::TopKFilter f = make_filter(s, c, o, seen, sc, r);
    fill(s, c, serve::select_top_k(sc.scores.data(), s.bundle.items.size(), r.k, f), r);
  }

  /// The filter `f` for the added items' head: their indices made local (index - n_base).
  static serve::TopKFilter local_filter(const serve::TopKFilter& f, int32_t n_base, Scratch& sc) {
    auto local = [n_base](std::span<const int32_t> in, std::vector<int32_t>& out) {
      out.clear();
      for (int32_t i : in)
        if (i >= n_base) out.push_back(i - n_base);
    };
    serve::TopKFilter g = f;
    local(f.excluded, sc.lexcl);
    local(f.forbidden, sc.lforb);
    g.excluded = sc.lexcl;
    g.forbidden = sc.lforb;
    if (f.has_allowed) {
      local(f.allowed, sc.lallow);
      g.allowed = sc.lallow;
    }
    return g;
  }

  /// The best k of two lists ordered best first (score desc, index asc); b's local indices
  /// are shifted by `base` (all of them after a's indices, so ties keep catalogue order).
  static std::vector<std::pair<int32_t, float>> merge_top(
      const std::vector<std::pair<int32_t, float>>& a, std::vector<std::pair<int32_t, float>> b,
      int32_t base, int32_t k) {
    for (auto& x : b) x.first += base;
    std::vector<std::pair<int32_t, float>> out;
    out.reserve(std::min(a.size() + b.size(), static_cast<size_t>(k)));
    size_t i = 0, j = 0;
    while (static_cast<int32_t>(out.size()) < k && (i < a.size() || j < b.size())) {
      const bool take_a =
          j >= b.size() ||
          (i < a.size() &&
           (a[i].second > b[j].second || (a[i].second == b[j].second && a[i].first < b[j].first)));
      out.push_back(take_a ? a[i++] : b[j++]);
    }
    return out;
  }

  /// The exact top k among the added items (their own head, one query, no batch).
  static std::vector<std::pair<int32_t, float>> added_top_k(const Catalogue& c, const float* q,
                                                            const serve::TopKFilter& f, int32_t k,
                                                            Scratch& sc, int64_t* rescored) {
    const serve::PackedDotHead& h = *c.head;
    const serve::TopKFilter g = local_filter(f, c.n_base, sc);
    if (g.has_allowed) return h.top_k_among(q, g.allowed, k, g);
    serve::HeadQuery hq;
    hq.q = q;
    hq.keep = static_cast<int32_t>(std::min<int64_t>(
        static_cast<int64_t>(k) + static_cast<int64_t>(g.excluded.size() + g.forbidden.size()),
        h.n_items()));
    hq.window = 2.0 * h.error_bound(q);
    hq.out = &sc.candidates2;
    const serve::HeadQuery* hp = &hq;
    h.select(1, &hp);
    return h.top_k(q, sc.candidates2, hq.window, k, g, rescored);
  }

  /// A model with a dot-product head, its query vector in sc.query: the fused pass (in a
  /// batch with concurrent requests), then the exact top-K on this thread; the items added
  /// at run time through their own head, merged.
  void finish_head(const Snapshot& s, const Catalogue& c, const RecommendOptions& o,
                   std::span<const int32_t> seen, Scratch& sc, Recommendation& r) const {
    const serve::TopKFilter f = make_filter(s, c, o, seen, sc, r);
    const serve::PackedDotHead& head = *s.head;
    const serve::PackedDotHead* added = c.head.get();
    if (f.has_allowed) {  // an allow-list: score just those, exactly
      auto top = head.top_k_among(sc.query.data(), f.allowed, r.k, f);
      if (added)
        top = merge_top(top, added_top_k(c, sc.query.data(), f, r.k, sc, nullptr), c.n_base, r.k);
      fill(s, c, top, r);
      return;
    }
    if (s.ann) {
      int64_t n = 0;
      const bool ok =
          serve::ann_top_k(*s.ann, head, sc.query.data(), r.k, f, sc.ann, sc.candidates, &n, added);
      rescored.fetch_add(n, std::memory_order_relaxed);
      if (ok) {
        fill(s, c, sc.candidates, r);
        ann_requests.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      ann_fallbacks.fetch_add(1, std::memory_order_relaxed);
    }
    serve::HeadQuery hq;
    hq.q = sc.query.data();
    // Enough that k eligible items remain among the best `keep` (see PackedDotHead::top_k).
    hq.keep = static_cast<int32_t>(std::min<int64_t>(
        static_cast<int64_t>(r.k) + static_cast<int64_t>(f.excluded.size() + f.forbidden.size()),
        head.n_items()));
    hq.window = 2.0 * head.error_bound(hq.q);
    hq.out = &sc.candidates;
    s.batcher->run(&hq);
    int64_t n = 0;
    auto top = head.top_k(hq.q, sc.candidates, hq.window, r.k, f, &n);
    if (added) {
      int64_t n2 = 0;
      top = merge_top(top, added_top_k(c, hq.q, f, r.k, sc, &n2), c.n_base, r.k);
      n += n2;
    }
    fill(s, c, top, r);
    rescored.fetch_add(n, std::memory_order_relaxed);
  }

  /// The head's query vector after the whole of `seq` (non-empty), added items included.
  static void sequence_query(const Model& model, const Catalogue& c, std::span<const int32_t> seq,
                             float* out) {
    std::span<const int32_t> seqs[1] = {seq};
    const PrefixQuery q{0, static_cast<int32_t>(seq.size())};
    if (c.n_added > 0)
      model.query_vectors_with(seqs, std::span<const PrefixQuery>(&q, 1), c.rows.get(), c.n_added,
                               out);
    else
      model.query_vectors(seqs, std::span<const PrefixQuery>(&q, 1), out);
  }

  /// Brings a session in line with the model `s` (lock held): first use, or a reload since.
  void reconcile(Session& ses, const Snapshot& s, Recommendation& r) const {
    if (ses.initialised && ses.model_generation == s.generation) return;
    if (!ses.initialised || ses.catalogue_generation != s.catalogue_generation) {
      if (ses.initialised) r.session_reset = true;
      ses.clear();
      ses.state = s.bundle.model->new_state();
    } else if (s.incremental) {
      // Same catalogue, new weights: rebuild the state from the last reload_replay_events
      // kept events, once (a bounded cost per session; docs/http-api.md#post-v1reload).
      ses.state = s.bundle.model->new_state();
      std::span<const int32_t> h = ses.history();
      const size_t bound = static_cast<size_t>(options.reload_replay_events);
      if (bound > 0 && h.size() > bound) h = h.subspan(h.size() - bound);
      for (int32_t i : h) s.bundle.model->step(*ses.state, i);
    } else {
      ses.state.reset();
    }
    ses.cap = s.history;
    ses.initialised = true;
    ses.model_generation = s.generation;
    ses.catalogue_generation = s.catalogue_generation;
  }
};

Recommender::Recommender(const std::string& model_path, RecommenderOptions options) {
  check_options(options);
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->open_items_file();
  impl_->load_and_publish([&] { return load_model(model_path); }, model_path);
  restore_session_snapshot();
  impl_->start_sweeper(this);
}

Recommender::Recommender(ModelBundle bundle, RecommenderOptions options) {
  check_options(options);
  impl_ = std::make_unique<Impl>(std::move(options));
  impl_->open_items_file();
  impl_->load_and_publish([&] { return std::move(bundle); }, "");
  restore_session_snapshot();
  impl_->start_sweeper(this);
}

Recommender::~Recommender() = default;

void Recommender::restore_session_snapshot() {
  const std::string& p = impl_->options.session_snapshot;
  if (!p.empty() && std::filesystem::exists(p)) load_session_snapshot(p);
}

const RecommenderOptions& Recommender::options() const {
  return impl_->options;
}

void Recommender::Impl::check_session_id(const std::string& id) const {
  if (id.empty()) throw InputError("session_id must not be empty");
  if (static_cast<int64_t>(id.size()) > options.max_session_id_bytes)
    throw InputError("session_id is longer than " + std::to_string(options.max_session_id_bytes) +
                     " bytes");
}

int64_t Recommender::Impl::apply_events(Session& ses, const Snapshot& snap, const Catalogue& cat,
                                        const SessionRequest& req, Recommendation& r) {
  const Model& model = *snap.bundle.model;
  const Vocab& v = snap.bundle.items;
  int64_t known = 0;
  for (const auto& e : req.events) {
    const int32_t i = cat.find(v, e.item);
    if (i < 0) {
      r.unknown_items.push_back(e.item);
      continue;
    }
    ses.push(i);
    if (ses.state) model.step(*ses.state, i);
    if (e.timestamp) ses.last_event_timestamp = e.timestamp;
    ++known;
  }
  ses.length += known;
  r.session_length = ses.length;
  r.model_generation = snap.generation;
  r.exclude_seen = req.options.exclude_seen.value_or(snap.exclude_default);
  return known;
}

void Recommender::Impl::score_session(const Session& ses, const Snapshot& snap,
                                      const Catalogue& cat, const RecommendOptions& o, Scratch& sc,
                                      Recommendation& r) const {
  const Model& model = *snap.bundle.model;
  const std::span<const int32_t> hist = ses.history();
  if (hist.empty()) return;
  std::span<const int32_t> window = hist;
  if (snap.context > 0 && window.size() > static_cast<size_t>(snap.context))
    window = window.subspan(window.size() - static_cast<size_t>(snap.context));
  if (snap.head) {
    sc.query.resize(static_cast<size_t>(snap.head->dim()));
    if (ses.state)
      model.state_query(*ses.state, sc.query.data());
    else
      sequence_query(model, cat, window, sc.query.data());
    finish_head(snap, cat, o, hist, sc, r);
  } else {
    sc.scores.resize(static_cast<size_t>(snap.bundle.items.size()));
    if (ses.state) {
      model.score_state(*ses.state, sc.scores.data());
    } else {
      std::vector<std::span<const int32_t>> seqs{window};
      PrefixQuery q{0, static_cast<int32_t>(window.size())};
      model.score(seqs, std::span<const PrefixQuery>(&q, 1), sc.scores.data());
    }
    finish(snap, cat, o, hist, sc, r);
  }
}

serve::StoredSession Recommender::Impl::to_stored(const Session& ses, const Snapshot& snap,
                                                  double last_used_unix) {
  serve::StoredSession st;
  st.catalogue_fp = snap.catalogue_fp;
  st.length = ses.length;
  st.last_event_timestamp = ses.last_event_timestamp;
  st.last_used_unix = last_used_unix;
  const auto h = ses.history();
  st.history.assign(h.begin(), h.end());
  // A state of an older model is not kept (model_fp 0): the reader recomputes it.
  if (ses.state && ses.model_generation == snap.generation) {
    st.model_fp = snap.model_fp;
    st.state = snap.bundle.model->encode_state(*ses.state);
  } else if (!snap.incremental) {
    st.model_fp = snap.model_fp;
  }
  return st;
}

void Recommender::Impl::from_stored(const serve::StoredSession& st, const Snapshot& snap,
                                    const Catalogue& cat, Session& ses) {
  ses.initialised = true;
  ses.catalogue_generation = 0;  // another catalogue until shown otherwise: reconcile resets
  ses.model_generation = 0;
  ses.length = st.length;
  ses.last_event_timestamp = st.last_event_timestamp;
  if (st.catalogue_fp != snap.catalogue_fp) return;
  const int32_t n = cat.total();  // added items included (docs/http-api.md)
  for (int32_t i : st.history)
    if (i < 0 || i >= n) return;
  ses.catalogue_generation = snap.catalogue_generation;
  ses.cap = snap.history;
  const size_t keep = std::min(st.history.size(), static_cast<size_t>(snap.history));
  ses.buf.assign(st.history.end() - static_cast<std::ptrdiff_t>(keep), st.history.end());
  if (!snap.incremental) {
    ses.model_generation = snap.generation;
  } else if (st.model_fp == snap.model_fp && !st.state.empty()) {
    ses.state = snap.bundle.model->decode_state(st.state);
    // A state that does not decode is rebuilt from the history by reconcile().
    if (ses.state) ses.model_generation = snap.generation;
  }
}

Recommendation Recommender::Impl::add_events_shared(const SessionRequest& req, int32_t k) {
  // Optimistic retries: a request whose read-apply-write window keeps being overtaken (a
  // busy session, or this thread descheduled on a loaded machine) backs off exponentially
  // with jitter, so that it gets its turn; bounded by the attempts and the store deadline.
  constexpr int kAttempts = 64;
  Scratch& sc = scratch();
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(options.session_store_timeout_seconds));
  const int64_t ttl_ms = static_cast<int64_t>(std::ceil(options.session_ttl_seconds * 1000.0));
  try {
    for (int attempt = 0;; ++attempt) {
      Recommendation r;
      r.k = k;
      auto [s, c] = view();
      const Snapshot& snap = *s;
      const Catalogue& cat = *c;
      std::optional<serve::RedisStore::Value> got = redis->get(req.session_id, deadline);
      Session ses(req.session_id, snap.history);
      serve::StoredSession st;
      if (got && serve::decode_session(got->data, st))
        from_stored(st, snap, cat, ses);
      else if (got)
        ses.initialised = true;  // unreadable (another format): reset, as a foreign catalogue
      r.new_session = !got;
      reconcile(ses, snap, r);
      const int64_t known = apply_events(ses, snap, cat, req, r);
      const std::string data = serve::encode_session(to_stored(ses, snap, unix_now()));
      if (!redis->put_if(req.session_id, got ? got->version : 0, data, ttl_ms, deadline)) {
        // Another update came first: start again from its result.
        ++store_retries;
        if (attempt + 1 >= kAttempts || Clock::now() >= deadline)
          throw SessionConflict("session '" + req.session_id + "' was updated concurrently " +
                                std::to_string(attempt + 1) +
                                " times while this request was applied; nothing was applied, "
                                "try again");
        thread_local std::minstd_rand jitter{std::random_device{}()};
        const int64_t cap_us = std::min<int64_t>(int64_t{50} << std::min(attempt, 7), 5000);
        std::this_thread::sleep_for(std::chrono::microseconds(jitter() % (cap_us + 1)));
        continue;
      }
      if (r.new_session) ++shared_created;
      events += known;
      unknown += static_cast<int64_t>(r.unknown_items.size());
      score_session(ses, snap, cat, req.options, sc, r);
      return r;
    }
  } catch (const SessionStoreUnavailable&) {
    ++store_failures;
    throw;
  }
}

Recommendation Recommender::add_events(const SessionRequest& req) {
  Impl& m = *impl_;
  Recommendation r;
  m.check_session_id(req.session_id);
  m.check_request(req.options, &r.k);
  ThreadScope threads(m.options.threads_per_request, ZeroThreads::KeepCurrent);
  if (m.redis) return m.add_events_shared(req, r.k);
  Scratch& sc = scratch();

  bool created = false;
  const int32_t cap0 = m.current()->history;
  std::shared_ptr<Session> ses = m.store.acquire(
      req.session_id, [&] { return std::make_shared<Session>(req.session_id, cap0); }, &created);
  r.new_session = created;
  int64_t bytes = 0;
  {
    std::lock_guard<std::mutex> lock(ses->mu);
    // The newest model, read under the session's lock so that a session never goes back
    // to an older model than one it has seen.
    auto [s, c] = m.view();
    const Snapshot& snap = *s;
    m.reconcile(*ses, snap, r);
    const int64_t known = Impl::apply_events(*ses, snap, *c, req, r);
    m.events += known;
    m.unknown += static_cast<int64_t>(r.unknown_items.size());
    m.score_session(*ses, snap, *c, req.options, sc, r);
    bytes = ses->bytes();
  }
  m.store.update_bytes(ses, bytes);
  return r;
}

Recommendation Recommender::recommend(const ItemsRequest& req) const {
  const Impl& m = *impl_;
  Recommendation r;
  m.check_request(req.options, &r.k);
  Scratch& sc = scratch();
  ThreadScope threads(m.options.threads_per_request, ZeroThreads::KeepCurrent);
  auto [s, c] = m.view();
  const Snapshot& snap = *s;
  const Catalogue& cat = *c;
  const Vocab& v = snap.bundle.items;
  sc.items.clear();
  for (const auto& id : req.items) {
    const int32_t i = cat.find(v, id);
    if (i < 0)
      r.unknown_items.push_back(id);
    else
      sc.items.push_back(i);
  }
  m.unknown += static_cast<int64_t>(r.unknown_items.size());
  r.session_length = static_cast<int64_t>(sc.items.size());
  r.model_generation = snap.generation;
  r.exclude_seen = req.options.exclude_seen.value_or(snap.exclude_default);
  if (sc.items.empty()) return r;
  std::span<const int32_t> seq(sc.items);
  if (snap.head) {
    sc.query.resize(static_cast<size_t>(snap.head->dim()));
    Impl::sequence_query(*snap.bundle.model, cat, seq, sc.query.data());
    m.finish_head(snap, cat, req.options, seq, sc, r);
  } else {
    sc.scores.resize(static_cast<size_t>(v.size()));
    std::vector<std::span<const int32_t>> seqs{seq};
    PrefixQuery q{0, static_cast<int32_t>(seq.size())};
    snap.bundle.model->score(seqs, std::span<const PrefixQuery>(&q, 1), sc.scores.data());
    Impl::finish(snap, cat, req.options, seq, sc, r);
  }
  return r;
}

AddItemResult Recommender::add_item(const std::string& id, const nlohmann::json& features) {
  Impl& m = *impl_;
  ItemOp op;
  op.add = true;
  op.id = id;
  op.features = features;
  AddItemResult r;
  std::lock_guard<std::mutex> lock(m.items_mu);
  auto [s, c] = m.view();
  std::shared_ptr<Catalogue> next = m.apply_op(*s, *c, op, &r, nullptr);
  m.append_item_op(op);
  m.journal.push_back(std::move(op));
  m.publish_catalogue(*s, *c, next);
  ++m.items_added;
  r.live_items = next->live();
  r.catalogue_version = next->version;
  return r;
}

RemoveItemResult Recommender::remove_item(const std::string& id) {
  Impl& m = *impl_;
  ItemOp op;
  op.add = false;
  op.id = id;
  RemoveItemResult r;
  std::lock_guard<std::mutex> lock(m.items_mu);
  auto [s, c] = m.view();
  std::shared_ptr<Catalogue> next = m.apply_op(*s, *c, op, nullptr, &r);
  m.append_item_op(op);
  m.journal.push_back(std::move(op));
  m.publish_catalogue(*s, *c, next);
  ++m.items_retired;
  r.live_items = next->live();
  r.catalogue_version = next->version;
  return r;
}

std::shared_ptr<const ModelBundle> Recommender::bundle() const {
  std::shared_ptr<const Snapshot> s = impl_->current();
  return {s, &s->bundle};
}

bool Recommender::drop_session(const std::string& session_id) {
  Impl& m = *impl_;
  if (!m.redis) return m.store.drop(session_id);
  m.check_session_id(session_id);
  try {
    const bool dropped = m.redis->del(session_id, m.store_deadline());
    if (dropped) ++m.shared_dropped;
    return dropped;
  } catch (const SessionStoreUnavailable&) {
    ++m.store_failures;
    throw;
  }
}

std::optional<SessionInfo> Recommender::session_info(const std::string& session_id) const {
  const Impl& m = *impl_;
  if (m.redis) {
    m.check_session_id(session_id);
    std::optional<serve::RedisStore::Value> got;
    try {
      got = m.redis->get(session_id, m.store_deadline());
    } catch (const SessionStoreUnavailable&) {
      ++m.store_failures;
      throw;
    }
    serve::StoredSession st;
    if (!got || !serve::decode_session(got->data, st)) return std::nullopt;
    auto [s, c] = m.view();
    SessionInfo info;
    info.session_id = session_id;
    info.length = st.length;
    info.last_event_timestamp = st.last_event_timestamp;
    info.idle_seconds = std::max(0.0, unix_now() - st.last_used_unix);
    info.bytes = static_cast<int64_t>(got->data.size());
    const int32_t n = c->total();
    if (st.catalogue_fp == s->catalogue_fp) {
      const size_t keep = std::min(st.history.size(), static_cast<size_t>(s->history));
      for (size_t j = st.history.size() - keep; j < st.history.size(); ++j)
        if (st.history[j] >= 0 && st.history[j] < n)
          info.history.push_back(c->token(s->bundle.items, st.history[j]));
    }
    return info;
  }
  double idle = 0.0;
  std::shared_ptr<Session> ses = m.store.peek(session_id, &idle);
  if (!ses) return std::nullopt;
  SessionInfo info;
  info.session_id = session_id;
  info.idle_seconds = idle;
  auto [s, c] = m.view();
  std::lock_guard<std::mutex> lock(ses->mu);
  info.length = ses->length;
  info.last_event_timestamp = ses->last_event_timestamp;
  info.bytes = ses->bytes();
  // Indices are only meaningful under the catalogue they were recorded with.
  if (ses->catalogue_generation == s->catalogue_generation)
    for (int32_t i : ses->history())
      if (i < c->total()) info.history.push_back(c->token(s->bundle.items, i));
  return info;
}

namespace {
constexpr char kSnapMagic[8] = {'S', 'Q', 'R', 'C', 'S', 'E', 'S', 'S'};
constexpr char kSnapEnd[8] = {'S', 'Q', 'R', 'C', 'E', 'N', 'D', '\0'};
constexpr uint32_t kSnapVersion = 1;

template <class T>
void put_raw(std::string& out, const T& v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
}  // namespace

int64_t Recommender::save_session_snapshot(const std::string& path) {
  Impl& m = *impl_;
  if (m.redis)
    throw Error("session snapshots are for the memory store; the Redis store keeps sessions in " +
                m.redis->address().url());
  const std::string p = path.empty() ? m.options.session_snapshot : path;
  if (p.empty()) throw Error("save_session_snapshot: no file given (session_snapshot is empty)");
  std::lock_guard<std::mutex> one(m.snapshot_mu);
  std::shared_ptr<const Snapshot> s = m.current();
  auto sessions = m.store.list();
  // Oldest first, so that reading them back in order rebuilds the LRU order.
  std::stable_sort(sessions.begin(), sessions.end(),
                   [](const auto& a, const auto& b) { return a.second < b.second; });
  const Clock::time_point now_steady = m.options.now ? m.options.now() : Clock::now();
  const double now_unix = unix_now();
  // Layout (little-endian): magic "SQRCSESS", version u32, reserved u32, catalogue
  // fingerprint u64, count u64; per session: id size u32, id, record size u32, record
  // (serve/session_codec.hpp); then FNV-1a 64 of everything before, and "SQRCEND\0".
  std::string out(kSnapMagic, 8);
  put_raw(out, kSnapVersion);
  put_raw(out, uint32_t{0});
  put_raw(out, s->catalogue_fp);
  const size_t count_at = out.size();
  put_raw(out, uint64_t{0});
  uint64_t count = 0;
  for (const auto& [ses, used] : sessions) {
    std::string rec;
    {
      std::lock_guard<std::mutex> lock(ses->mu);
      if (!ses->initialised || ses->catalogue_generation != s->catalogue_generation) continue;
      const double idle = std::chrono::duration<double>(now_steady - used).count();
      rec = serve::encode_session(Impl::to_stored(*ses, *s, now_unix - std::max(0.0, idle)));
    }
    put_raw(out, static_cast<uint32_t>(ses->id.size()));
    out += ses->id;
    put_raw(out, static_cast<uint32_t>(rec.size()));
    out += rec;
    ++count;
  }
  std::memcpy(out.data() + count_at, &count, sizeof count);
  put_raw(out, model_file::fnv1a64(out.data(), out.size()));
  out.append(kSnapEnd, 8);
  serve::write_file_atomically(p, out);
  return static_cast<int64_t>(count);
}

int64_t Recommender::load_session_snapshot(const std::string& path, int64_t* skipped) {
  Impl& m = *impl_;
  if (m.redis)
    throw Error("session snapshots are for the memory store; the Redis store keeps sessions in " +
                m.redis->address().url());
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IoError("cannot read the session snapshot '" + path + "'");
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& why) {
    throw InputError(path + ": " + why +
                     " (a session snapshot of seqrec serve --session-snapshot; delete or move it "
                     "to start without the saved sessions)");
  };
  constexpr size_t kHead = 8 + 4 + 4 + 8 + 8, kTail = 8 + 8;
  if (data.size() < 8 || std::memcmp(data.data(), kSnapMagic, 8) != 0)
    bad("not a seqrec session snapshot");
  if (data.size() < kHead + kTail || std::memcmp(data.data() + data.size() - 8, kSnapEnd, 8) != 0)
    bad("truncated session snapshot (no end marker)");
  uint32_t version = 0;
  std::memcpy(&version, data.data() + 8, 4);
  if (version != kSnapVersion)
    bad("session snapshot format version " + std::to_string(version) + ", this seqrec reads " +
        std::to_string(kSnapVersion));
  uint64_t sum = 0;
  std::memcpy(&sum, data.data() + data.size() - kTail, 8);
  if (sum != model_file::fnv1a64(data.data(), data.size() - kTail))
    bad("corrupt session snapshot (checksum mismatch)");
  uint64_t count = 0;
  std::memcpy(&count, data.data() + 24, 8);
  std::string_view in(data.data() + kHead, data.size() - kHead - kTail);
  auto [s, c] = m.view();
  const Clock::time_point now_steady = m.options.now ? m.options.now() : Clock::now();
  const double now_unix = unix_now();
  int64_t added = 0, skip = 0;
  for (uint64_t j = 0; j < count; ++j) {
    uint32_t n = 0;
    auto take = [&](void* dst, size_t bytes) {
      if (in.size() < bytes) bad("damaged session snapshot (record " + std::to_string(j) + ")");
      std::memcpy(dst, in.data(), bytes);
      in.remove_prefix(bytes);
    };
    take(&n, 4);
    std::string id(n, '\0');
    take(id.data(), n);
    take(&n, 4);
    std::string rec(n, '\0');
    take(rec.data(), n);
    serve::StoredSession st;
    std::string why;
    if (!serve::decode_session(rec, st, &why))
      bad("damaged session snapshot (record " + std::to_string(j) + ": " + why + ")");
    const double idle = std::max(0.0, now_unix - st.last_used_unix);
    if (st.catalogue_fp != s->catalogue_fp || id.empty() ||
        (m.options.session_ttl_seconds > 0 && idle > m.options.session_ttl_seconds)) {
      ++skip;
      continue;
    }
    auto ses = std::make_shared<Session>(id, s->history);
    Impl::from_stored(st, *s, *c, *ses);
    if (ses->catalogue_generation != s->catalogue_generation) {  // indices out of range
      ++skip;
      continue;
    }
    m.store.insert(ses, now_steady - std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(idle)));
    ++added;
  }
  if (!in.empty()) bad("damaged session snapshot (bytes after the last record)");
  m.restored += added;
  m.restore_skipped += skip;
  if (skipped) *skipped = skip;
  return added;
}

SessionStoreHealth Recommender::session_store_health() const {
  const Impl& m = *impl_;
  SessionStoreHealth h;
  if (!m.redis) {
    h.type = "memory";
    return h;
  }
  h.type = "redis";
  h.where = m.redis->address().url();
  h.ok = m.redis->healthy(&h.error);
  return h;
}

ReloadResult Recommender::reload(const std::string& path) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.reload_mu);
  const std::string p = path.empty() ? m.current()->path : path;
  try {
    if (p.empty()) throw Error("reload: the model was given in memory; name a model file");
    ReloadResult r = m.load_and_publish([&] { return load_model(p); }, p);
    ++m.reloads;
    return r;
  } catch (...) {
    ++m.reload_failures;
    throw;
  }
}

ReloadResult Recommender::replace_model(ModelBundle bundle) {
  Impl& m = *impl_;
  std::lock_guard<std::mutex> lock(m.reload_mu);
  try {
    ReloadResult r = m.load_and_publish([&] { return std::move(bundle); }, "");
    ++m.reloads;
    return r;
  } catch (...) {
    ++m.reload_failures;
    throw;
  }
}

int64_t Recommender::expire_idle() {
  if (impl_->redis) return 0;  // Redis expires its keys itself
  return impl_->store.expire_idle();
}

ServedModelInfo Recommender::model_info() const {
  auto [s, c] = impl_->view();
  ServedModelInfo i;
  const Model& model = *s->bundle.model;
  i.type = model.type();
  i.path = s->path;
  i.n_items = s->bundle.items.size();
  i.generation = s->generation;
  i.loaded_unix_seconds = s->loaded_unix;
  i.incremental = s->incremental;
  i.context_length = s->context;
  i.history_length = s->history;
  i.exclude_seen_default = s->exclude_default;
  if (s->head)
    i.scoring = {{"path", "dot-product head"},
                 {"head_storage", serve::head_precision_name(s->head->precision())},
                 {"head_bytes", s->head->bytes()},
                 {"max_batch", s->batcher->max_batch()},
                 {"batch_lanes", s->batcher->lanes()},
                 {"retrieval", s->ann ? "ann" : "exact"}};
  else
    i.scoring = {{"path", "model"}, {"retrieval", "exact"}};
  if (s->ann) {
    const AnnOptions& o = s->ann->options();
    i.scoring["ann"] = {{"m", o.m},
                        {"ef_construction", o.ef_construction},
                        {"ef_search", o.ef_search},
                        {"candidates", o.candidates},
                        {"index_bytes", s->ann->bytes()},
                        {"index_items", s->ann->n_items()},
                        {"build_seconds", s->ann_build_seconds},
                        {"source", s->ann_source},
                        {"index_file", o.index_file}};
  }
  if (!s->ann_notice.empty()) i.scoring["ann_notice"] = s->ann_notice;
  i.catalogue = {{"trained", c->n_base},
                 {"added", c->n_added},
                 {"added_live", c->added_live()},
                 {"retired", c->retired.size()},
                 {"live", c->live()},
                 {"version", c->version},
                 {"adds_items", c->adds},
                 {"items_file", impl_->options.items_file}};
  if (!c->adds) i.catalogue["adds_items_why_not"] = c->adds_why;
  i.config = model.config().to_json();
  i.meta = s->bundle.meta;
  return i;
}

RecommenderStats Recommender::stats() const {
  const Impl& m = *impl_;
  serve::StoreStats st = m.store.stats();
  RecommenderStats r;
  r.live_sessions = st.live;
  r.session_bytes = st.bytes;
  r.sessions_created = st.created + m.shared_created.load();
  r.sessions_dropped = st.dropped + m.shared_dropped.load();
  r.evicted_lru = st.evicted[static_cast<int>(serve::Eviction::Lru)];
  r.evicted_memory = st.evicted[static_cast<int>(serve::Eviction::Memory)];
  r.evicted_ttl = st.evicted[static_cast<int>(serve::Eviction::Ttl)];
  r.evicted_reload = st.evicted[static_cast<int>(serve::Eviction::Reload)];
  r.events = m.events.load();
  r.unknown_items = m.unknown.load();
  r.reloads = m.reloads.load();
  r.reload_failures = m.reload_failures.load();
  {
    auto [s, c] = m.view();
    r.model_generation = s->generation;
    r.catalogue_live = c->live();
    r.catalogue_added_live = c->added_live();
  }
  r.items_added = m.items_added.load();
  r.items_retired = m.items_retired.load();
  r.scoring_batches = m.batches.load();
  r.scoring_batched_requests = m.batched.load();
  r.scoring_rescored_items = m.rescored.load();
  r.ann_requests = m.ann_requests.load();
  r.ann_exact_fallbacks = m.ann_fallbacks.load();
  r.session_store_failures = m.store_failures.load();
  r.session_store_retries = m.store_retries.load();
  r.sessions_restored = m.restored.load();
  r.sessions_restore_skipped = m.restore_skipped.load();
  return r;
}

}  // namespace seqrec
