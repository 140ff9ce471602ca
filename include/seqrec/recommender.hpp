// The recommender core of `seqrec serve`: a loaded model, live session state and top-K
// selection, usable as a C++ API without HTTP.
//
//   seqrec::RecommenderOptions o;
//   o.max_sessions = 50000;
//   seqrec::Recommender rec("model.seqrec", o);
//   seqrec::SessionRequest req;
//   req.session_id = "user-17";
//   req.events = {{"item-1"}, {"item-42"}};
//   seqrec::Recommendation r = rec.add_events(req);   // r.items: top-20, best first
//
// Thread safety: every public member function may be called from any number of threads at
// once. Requests on different sessions run in parallel (the session table is split into
// independently locked shards); requests on the same session are applied one after the
// other in the order they take the session's lock. For models with a dot-product output
// layer (GRU4Rec, SASRec) the output layer of concurrent requests is computed in batches
// (RecommenderOptions::max_batch), with the same results as one request at a time.
//
// Session state. For a model with incremental inference (Model::new_state() != nullptr,
// e.g. GRU4Rec) a session holds the model's state and every event costs one Model::step():
// sessions are never replayed on the request path. Every session also keeps the ids of its
// last `max_history` events (at least the model's context_length()): models without state
// are scored on them (the last context_length() of them when that is > 0), and they are
// what `exclude_seen` removes. Memory is bounded by `max_sessions` and
// `max_session_bytes` (least recently used sessions are evicted first) and by an idle
// time-to-live.
//
// Hot reload. reload() / replace_model() validate the new model completely before
// swapping it in atomically; requests in flight finish on the model they started with. The
// rule for live sessions: if the new model has exactly the same catalogue (the same item
// ids in the same order) sessions are kept, and a session with model state gets a fresh
// state from its kept history (one replay of its last `reload_replay_events` events, once,
// at its next request); otherwise every session is dropped (they speak other item indices).
//
// Live catalogue. add_item() adds an item by its features (models that can score an item
// from its features: dssm), remove_item() retires one (any model). Added items get fresh
// indices after the trained ones (never an index a retired item had), retired items are
// forbidden at top-K, and the catalogue is published copy-on-write together with the model,
// so that every request sees one consistent catalogue; items_file keeps the changes across
// restarts (docs/http-api.md#items-added-at-run-time).
//
// Session stores. Sessions live in this process (the default), optionally written to a
// snapshot file and read back at start (save_session_snapshot(), session_snapshot), or in
// a Redis server shared by any number of Recommenders in any number of processes
// (RecommenderOptions::session_store): a session's events may then arrive at any of them
// and get the answers one Recommender would give. The Redis store's errors are
// SessionStoreUnavailable (not reachable within session_store_timeout_seconds) and
// SessionConflict (updated concurrently too often); recommend() never needs the store.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "seqrec/ann.hpp"
#include "seqrec/config.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"

namespace seqrec {

/// Limits and defaults of a Recommender. Every limit is checked by the constructor
/// (InputError naming the field; the ranges of the tunable ones are those of
/// recommender_option_specs()).
struct RecommenderOptions {
  /// Live sessions at most; the least recently used one is evicted beyond it.
  int64_t max_sessions = 100000;
  /// Bytes of session state at most (history, model state and bookkeeping as estimated by
  /// the store; not the process RSS).
  int64_t max_session_bytes = int64_t{1} << 30;
  /// A session not used for this many seconds is dropped (0 = never).
  double session_ttl_seconds = 1800.0;
  /// Events of a session kept for scoring and exclusion (raised to the model's
  /// context_length() when that is larger).
  int32_t max_history = 1000;
  /// K when a request gives none, and the largest K a request may ask for.
  int32_t default_k = 20;
  int32_t max_k = 1000;
  /// Independently locked parts of the session table (0 = automatic: max_sessions / 1024,
  /// between 1 and 64). The session and byte limits are split evenly between shards, so
  /// eviction is least-recently-used within a shard (exact LRU with one shard).
  int32_t shards = 0;
  /// Longest session id, in bytes.
  int32_t max_session_id_bytes = 256;
  /// Seconds between sweeps of idle sessions by a background thread (0 = no thread; call
  /// expire_idle() yourself). Idle sessions are also noticed when they are next used.
  double sweep_interval_seconds = 5.0;
  /// OpenMP threads a request is scored with (set for the duration of each call, then
  /// restored). 1 suits a server, whose parallelism is across requests; 0 leaves the
  /// calling thread's setting alone.
  int32_t threads_per_request = 1;
  /// Models with a dot-product output layer (Model::dot_product_head(): GRU4Rec, SASRec)
  /// are scored through a repacked copy of it, and concurrent requests are gathered into
  /// one pass over the item matrix: at most `max_batch` requests per pass (1 = each request
  /// alone). A request never waits for company: it is scored at once if fewer than
  /// `batch_lanes` passes are running, else with the requests queued behind them. A
  /// request's scores do not depend on the batch it was scored in.
  int32_t max_batch = 32;
  int32_t batch_lanes = 1;
  /// How the repacked output layer is stored for the scoring pass. Int8: one byte a weight
  /// (a quarter of the memory traffic of a pass); the items it finds within a rigorous
  /// error bound of the K-th best are then rescored exactly from the model's float weights,
  /// so the results are exactly those of Fp32 (float weights, every score exact). Bf16: two
  /// bytes a weight (bfloat16; AVX512-BF16's vdpbf16ps where the CPU has it), a bound
  /// several times tighter than Int8's, so fewer items rescored; the same exact results.
  enum class HeadStorage { Int8, Fp32, Bf16 };
  HeadStorage head_storage = HeadStorage::Int8;
  /// Score models with a dot-product output layer through the repacked head above (true),
  /// or like every other model, one request at a time through Model::score / score_state
  /// (false: the path of `seqrec recommend` and `seqrec eval`, whose scores it reproduces
  /// bit for bit; max_batch, batch_lanes and head_storage are then unused).
  bool dot_product_head = true;
  /// Where live sessions are kept: "memory" (this process; the default), or
  /// "redis://HOST:PORT[/DB]" (a Redis server shared by any number of Recommenders, in this
  /// process or others, so that a session's next event may reach any of them). With Redis
  /// each session is one key `session_key_prefix + id` expiring after session_ttl_seconds
  /// (Redis' own TTL); max_sessions, max_session_bytes and shards then do not apply (Redis'
  /// maxmemory does), and an update is atomic (optimistic: read, apply, write back only if
  /// unchanged, else again). docs/http-api.md#session-stores.
  std::string session_store = "memory";
  std::string session_key_prefix = "seqrec:session:";
  /// Redis: the time a request may spend on the store (connecting, waiting for a free
  /// connection, commands) before it fails with SessionStoreUnavailable.
  double session_store_timeout_seconds = 0.5;
  /// Redis: connections at most (a request holds one for its round trips).
  int32_t session_store_connections = 32;
  /// Memory store: a snapshot file of the live sessions, read by the constructor when it
  /// exists and written by save_session_snapshot() (by `seqrec serve` at shutdown, and
  /// every session_snapshot_interval_seconds when that is > 0). "" = none.
  std::string session_snapshot;
  double session_snapshot_interval_seconds = 0.0;
  /// After a reload with the same catalogue, a session with model state gets a fresh state
  /// from its last `reload_replay_events` kept events only (0 = every kept event), so that
  /// the first request of each session after a reload costs at most that many steps.
  int32_t reload_replay_events = 100;
  /// Top-K retrieval for models with a dot-product head: exact (the default: every item
  /// scored) or through an ANN index built (or read from ann.index_file) at every load;
  /// seqrec/ann.hpp. The index's candidates are rescored exactly and the request's filters
  /// and K applied exactly; when fewer than K eligible items are among the candidates, more
  /// are asked for (x4, twice), then the request is scored exactly (counted in
  /// RecommenderStats::ann_exact_fallbacks). An allow-list is always scored exactly (only
  /// its items). A catalogue below ann.min_items, or a model without a dot-product head,
  /// is scored exactly with a notice on stderr and in model_info().scoring.
  AnnOptions ann;
  /// Items added at run time (add_item()) at most, counting every add since the model was
  /// loaded (a retired added item keeps its index, so it still counts); 0 = adding is off.
  int32_t max_added_items = 10000;
  /// Longest item id of add_item() / remove_item(), in bytes.
  int32_t max_item_id_bytes = 256;
  /// Longest feature value of add_item() (a string), in bytes.
  int32_t max_feature_value_bytes = 65536;
  /// The items file (docs/http-api.md#items-added-at-run-time): every add_item() and
  /// remove_item() is appended to it as one JSON line and synced before it takes effect,
  /// and the file is replayed at start and after every reload. "" = none: added and
  /// retired items then last until the process ends (a reload replays them from memory).
  std::string items_file;
  /// The clock for idle times (tests inject a fake one).
  std::function<std::chrono::steady_clock::time_point()> now;
};

/// The session store cannot be reached within session_store_timeout_seconds (Redis down,
/// slow or restarting). The request had no effect, or for an update whose write was sent
/// but not answered, an unknown one. `seqrec serve` answers 503.
class SessionStoreUnavailable : public Error {
 public:
  using Error::Error;
};

/// Concurrent updates of one session (from this or other processes) kept winning the race
/// for longer than the bounded retries; nothing was applied. `seqrec serve` answers 409.
class SessionConflict : public Error {
 public:
  using Error::Error;
};

/// add_item() for an id that is live already (trained or added, and not retired), or
/// beyond max_added_items. `seqrec serve` answers 409.
class ItemConflict : public Error {
 public:
  using Error::Error;
};

/// remove_item() of an id that is not in the live catalogue. `seqrec serve` answers 404.
class UnknownItem : public Error {
 public:
  using Error::Error;
};

/// What add_item() did.
struct AddItemResult {
  std::string id;
  int32_t index = 0;  ///< its catalogue index (a fresh one, unless a trained item restored)
  /// A retired trained item brought back with its trained vector (no features given).
  bool restored = false;
  /// Feature values the model's feature file never had ("genres=Western"): they add nothing.
  std::vector<std::string> unknown_values;
  int64_t live_items = 0;  ///< live catalogue size afterwards
  uint64_t catalogue_version = 0;
};

/// What remove_item() did.
struct RemoveItemResult {
  std::string id;
  int32_t index = 0;
  bool added = false;  ///< the item had been added at run time (else: a trained item)
  int64_t live_items = 0;
  uint64_t catalogue_version = 0;
};

/// The state of the session store, for health checks.
struct SessionStoreHealth {
  std::string type;   ///< "memory" or "redis"
  std::string where;  ///< the Redis URL; "" for memory
  bool ok = true;
  std::string error;  ///< why not ok
};

/// The tunable limits of RecommenderOptions as one parameter table (name, type, default,
/// range, help), from which `seqrec serve` makes its flags and help text; the Recommender
/// constructor checks an options struct against the same specs, so a limit and its message
/// are written once. The names are those of the flags (--max-sessions for max_sessions):
/// max_sessions, session_ttl (session_ttl_seconds), max_session_memory (max_session_bytes,
/// in MiB), max_history, default_k, max_k, session_shards (shards), max_batch, batch_lanes,
/// head_storage ("int8", "bf16" or "fp32"), session_store, session_key_prefix,
/// session_store_timeout, session_store_connections, session_snapshot,
/// session_snapshot_interval, reload_replay_events, max_added_items, items_file, and the
/// ANN table ann_option_specs()
/// (retrieval, ann_m, ann_ef_construction, ann_ef_search, ann_candidates, ann_min_items,
/// ann_index). Defaults are those of
/// RecommenderOptions.
std::vector<ParamSpec> recommender_option_specs();
/// RecommenderOptions with the values of `c` (a Config of recommender_option_specs());
/// the fields outside the table keep their defaults.
RecommenderOptions to_recommender_options(const Config& c);

/// Options of one recommendation.
struct RecommendOptions {
  std::optional<int32_t> k;  ///< number of items, 1..max_k (unset = default_k)
  /// Remove the session's items (its kept history) from the ranking. Unset: on for models
  /// trained on a sequential split (meta "protocol" == "sequential"), off otherwise.
  std::optional<bool> exclude_seen;
  /// When set, only these items may be recommended.
  std::optional<std::vector<std::string>> allowed_items;
  /// These items are never recommended.
  std::vector<std::string> forbidden_items;
};

/// One event of a session.
struct SessionEvent {
  std::string item;                 ///< the item id as in the training data
  std::optional<double> timestamp;  ///< optional, seconds; recorded, not used for scoring
};

/// Add events to a session (created on first use) and recommend its next items.
struct SessionRequest {
  std::string session_id;
  std::vector<SessionEvent> events;  ///< may be empty: recommend for the session as it is
  RecommendOptions options;
};

/// Recommend for an explicit list of items, without any session state.
struct ItemsRequest {
  std::vector<std::string> items;
  RecommendOptions options;
};

struct ScoredItem {
  std::string item;
  float score = 0.0f;
};

/// The answer to a SessionRequest or an ItemsRequest.
struct Recommendation {
  std::vector<ScoredItem> items;                  ///< best first; ties in score by catalogue order
  std::vector<std::string> unknown_items;         ///< event / list items not in the catalogue
  std::vector<std::string> unknown_filter_items;  ///< allowed/forbidden ids not in it
  int32_t k = 0;                                  ///< the K used
  bool exclude_seen = false;                      ///< whether the session's items were excluded
  int64_t session_length = 0;  ///< known events of the session (all of them, not only kept)
  bool new_session = false;    ///< the session did not exist before this request
  /// The session existed but was emptied because the model was reloaded with another
  /// catalogue.
  bool session_reset = false;
  uint64_t model_generation = 0;  ///< which loaded model answered (1 = the first)
};

/// What a Recommender serves.
struct ServedModelInfo {
  std::string type;
  std::string path;  ///< empty for a model handed over in memory
  int32_t n_items = 0;
  uint64_t generation = 0;
  double loaded_unix_seconds = 0.0;
  bool incremental = false;    ///< has per-session model state (new_state() != nullptr)
  int32_t context_length = 0;  ///< Model::context_length()
  int32_t history_length = 0;  ///< events kept per session
  bool exclude_seen_default = false;
  /// How requests are scored: {"path": "model"} (Model::score / score_state, one request at
  /// a time) or {"path": "dot-product head", "head_storage": "int8"|"bf16"|"fp32",
  /// "head_bytes",
  /// "max_batch", "batch_lanes", "retrieval": "exact"|"ann"}; with retrieval "ann" also
  /// "ann": {"m", "ef_construction", "ef_search", "candidates", "index_bytes",
  /// "build_seconds", "source": "built"|"file", "index_file"}; "ann_notice" when ANN was
  /// asked for but the requests are scored exactly (small catalogue, no head).
  nlohmann::json scoring;
  /// The live catalogue: {"trained", "added" (indices given to added items), "added_live",
  /// "retired", "live", "version", "adds_items" (whether the model adds items by their
  /// features), "items_file"}.
  nlohmann::json catalogue;
  nlohmann::json config;  ///< the model's configuration
  nlohmann::json meta;    ///< training metadata from the model file
};

/// A live session, as reported by session_info().
struct SessionInfo {
  std::string session_id;
  int64_t length = 0;                ///< known events
  std::vector<std::string> history;  ///< the kept events, oldest first
  std::optional<double> last_event_timestamp;
  double idle_seconds = 0.0;
  int64_t bytes = 0;
};

/// Counters for monitoring.
struct RecommenderStats {
  int64_t live_sessions = 0;
  int64_t session_bytes = 0;
  int64_t sessions_created = 0;
  int64_t sessions_dropped = 0;  ///< by drop_session()
  int64_t evicted_lru = 0;       ///< over max_sessions
  int64_t evicted_memory = 0;    ///< over max_session_bytes
  int64_t evicted_ttl = 0;       ///< idle too long
  int64_t evicted_reload = 0;    ///< dropped by a reload that changed the catalogue
  int64_t events = 0;            ///< known events applied to sessions
  int64_t unknown_items = 0;     ///< unknown ids seen in requests
  int64_t reloads = 0;           ///< successful reloads
  int64_t reload_failures = 0;
  uint64_t model_generation = 0;
  /// Passes over a dot-product head, and the requests scored in them (requests / batches =
  /// the mean batch size); both 0 for models without a head.
  int64_t scoring_batches = 0;
  int64_t scoring_batched_requests = 0;
  /// Items scored exactly after an int8 or bf16 pass (RecommenderOptions::HeadStorage).
  int64_t scoring_rescored_items = 0;
  /// Requests answered through the ANN index, and those of them that found fewer than K
  /// eligible candidates and were scored exactly instead.
  int64_t ann_requests = 0;
  int64_t ann_exact_fallbacks = 0;
  /// Requests that failed because the session store was unavailable, and optimistic
  /// updates that found the session changed and were done again (Redis store).
  int64_t session_store_failures = 0;
  int64_t session_store_retries = 0;
  /// Items added (add_item(), and the replays of the items file) and retired since start;
  /// the live catalogue now: every item not retired, trained and added, and the added ones.
  int64_t items_added = 0;
  int64_t items_retired = 0;
  int64_t catalogue_live = 0;
  int64_t catalogue_added_live = 0;
  /// Sessions read from the snapshot file at start, and those of it that were skipped
  /// (another catalogue, or idle longer than the TTL).
  int64_t sessions_restored = 0;
  int64_t sessions_restore_skipped = 0;
};

/// Outcome of a successful reload.
struct ReloadResult {
  uint64_t generation = 0;
  bool catalogue_changed = false;
  int64_t sessions_dropped = 0;
  double seconds = 0.0;       ///< the whole reload: load_seconds + swap_seconds
  double load_seconds = 0.0;  ///< reading, checking and test-scoring the new model
  double swap_seconds = 0.0;  ///< publishing it (and dropping sessions of another catalogue)
};

class Recommender {
 public:
  /// Loads and validates a model file (Error on any problem).
  Recommender(const std::string& model_path, RecommenderOptions options = {});
  /// Serves a model already in memory; reload() then needs a path (reload(path)).
  Recommender(ModelBundle bundle, RecommenderOptions options = {});
  ~Recommender();
  Recommender(const Recommender&) = delete;
  Recommender& operator=(const Recommender&) = delete;

  /// Applies the known events in order (unknown ones are reported and skipped), then
  /// recommends. InputError for an empty or too long session id or K out of range.
  Recommendation add_events(const SessionRequest& request);
  /// Recommends after the known items of the list (no state is kept or touched).
  Recommendation recommend(const ItemsRequest& request) const;
  /// Adds an item to the live catalogue, recommendable from the next request on; thread-
  /// safe with every other call (requests see the catalogue before or after, never a mix).
  /// `features` ({"column": value, ...}, the columns of the feature file the model was
  /// trained with; FeatureEncoder::encode) gives the item's vector through the model's item
  /// tower; the item gets a fresh index (never one a retired item had). With `features`
  /// null, a retired trained item is restored with its trained vector. InputError for a bad
  /// id or features, for features given to a model that cannot add items by features
  /// (Model::adds_items(): dssm trained with item features), or for null features on an
  /// id that is not a retired trained item; ItemConflict when the id is live or
  /// max_added_items is reached; IoError when the items file cannot be written (then
  /// nothing changed).
  AddItemResult add_item(const std::string& id, const nlohmann::json& features);
  /// Retires an item (trained or added): it is never recommended again until added again.
  /// Sessions that hold it keep it (it still counts for their scores). UnknownItem when
  /// the id is not live; IoError as add_item().
  RemoveItemResult remove_item(const std::string& id);

  /// Forgets a session; false when there was none.
  bool drop_session(const std::string& session_id);
  /// The session, or nothing when there is none (does not count as a use).
  std::optional<SessionInfo> session_info(const std::string& session_id) const;

  /// Loads the model file again (or `path`, which then becomes the file of later reloads),
  /// validates it and swaps it in. On any error the old model keeps serving and Error is
  /// thrown. Reloads are serialised.
  ReloadResult reload(const std::string& path = "");
  /// Swaps in a model already in memory (validated the same way).
  ReloadResult replace_model(ModelBundle bundle);

  /// Drops sessions idle for longer than the TTL now; returns how many.
  int64_t expire_idle();

  /// The model being served now (a reload swaps in another; this one stays valid while the
  /// pointer is held). For a host that also evaluates or saves the model it serves.
  std::shared_ptr<const ModelBundle> bundle() const;
  /// Memory store: writes every live session to `path` (default: options().session_snapshot)
  /// atomically (a new file in the same folder, synced, then renamed over `path`); returns
  /// how many. Sessions written with one model are read back by a Recommender serving the
  /// same catalogue (with another model their state is recomputed from their kept history).
  /// Error for the Redis store (its sessions live in Redis) or a failed write.
  int64_t save_session_snapshot(const std::string& path = "");
  /// Memory store: adds the sessions of a snapshot file; returns how many were added.
  /// Sessions of another catalogue, and those idle longer than the TTL, are skipped (counted
  /// in `skipped` when given). InputError for a truncated or foreign file.
  int64_t load_session_snapshot(const std::string& path, int64_t* skipped = nullptr);
  /// Whether the session store answers (Redis: a PING within the store timeout, or the
  /// last error while reconnecting); never throws.
  SessionStoreHealth session_store_health() const;

  ServedModelInfo model_info() const;
  RecommenderStats stats() const;
  const RecommenderOptions& options() const;

 private:
  void restore_session_snapshot();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace seqrec
