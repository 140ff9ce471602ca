// The session table of the recommender: sharded, each shard an LRU list under its own
// mutex, with limits on the number of sessions and their bytes and an idle time-to-live.
//
// The store owns Session objects through shared_ptr: a request that holds one may finish
// with it even if the session is evicted or dropped meanwhile (its result is then simply not
// kept). A Session's contents are guarded by its own mutex, the table by the shard's.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "seqrec/model.hpp"

namespace seqrec::serve {

using Clock = std::chrono::steady_clock;

/// One live session. All fields but `id` are guarded by `mu`.
struct Session {
  explicit Session(std::string session_id, int32_t history_cap)
      : id(std::move(session_id)), cap(history_cap) {}

  std::mutex mu;
  const std::string id;
  int32_t cap;                          ///< events kept
  std::vector<int32_t> buf;             ///< kept events; the last min(size, cap) count
  std::unique_ptr<SessionState> state;  ///< model state (incremental models)
  bool initialised = false;             ///< set by the first request
  uint64_t model_generation = 0;        ///< of the model that produced `state`
  uint64_t catalogue_generation = 0;    ///< of the item indices in `buf`
  int64_t length = 0;                   ///< known events, all of them
  std::optional<double> last_event_timestamp;

  /// The kept history, oldest first.
  std::span<const int32_t> history() const {
    const size_t n = std::min(buf.size(), static_cast<size_t>(cap));
    return {buf.data() + (buf.size() - n), n};
  }
  /// Appends an event; amortised O(1): the buffer grows to 2 x cap, then its older half
  /// is dropped in one move.
  void push(int32_t item);
  /// Forgets every event (not the id).
  void clear();
  /// Estimated memory held (for the byte limit).
  int64_t bytes() const;
};

enum class Eviction { Lru, Memory, Ttl, Reload };

struct StoreOptions {
  int64_t max_sessions = 100000;
  int64_t max_bytes = int64_t{1} << 30;
  double ttl_seconds = 0.0;  ///< 0 = no idle limit
  int32_t shards = 1;
  std::function<Clock::time_point()> now;  ///< defaults to steady_clock::now
};

struct StoreStats {
  int64_t live = 0, bytes = 0, created = 0, dropped = 0;
  int64_t evicted[4] = {0, 0, 0, 0};  ///< by Eviction
};

class SessionStore {
 public:
  explicit SessionStore(StoreOptions options);

  /// The session `id`, created with `make` when absent or expired; marks it used now.
  /// `created` tells which.
  std::shared_ptr<Session> acquire(const std::string& id,
                                   const std::function<std::shared_ptr<Session>()>& make,
                                   bool* created);
  /// Records the session's new size and enforces the shard's limits (the least recently
  /// used sessions go first; `s` itself only when it alone exceeds the byte limit). No-op
  /// when `s` is no longer in the table.
  void update_bytes(const std::shared_ptr<Session>& s, int64_t bytes);
  /// The session without marking it used (nullptr when absent or expired), and its idle time.
  std::shared_ptr<Session> peek(const std::string& id, double* idle_seconds) const;
  bool drop(const std::string& id);
  /// Removes every session idle for longer than the TTL; returns how many.
  int64_t expire_idle();
  /// Removes every session, counted as evicted for `why`; returns how many.
  int64_t clear(Eviction why);
  /// Every live session and its last use (copied shard by shard; the sessions may change
  /// afterwards, lock each one to read it).
  std::vector<std::pair<std::shared_ptr<Session>, Clock::time_point>> list() const;
  /// Adds a session last used at `last_used` (replacing one of the same id) as the most
  /// recently used one, counted as created, and enforces the shard's limits. Insert
  /// sessions oldest first to keep the LRU order.
  void insert(std::shared_ptr<Session> s, Clock::time_point last_used);
  StoreStats stats() const;
  int32_t shards() const { return static_cast<int32_t>(shards_.size()); }

 private:
  struct Entry {
    std::shared_ptr<Session> session;
    Clock::time_point last_used;
    int64_t bytes = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::list<Entry> lru;  // front = most recently used
    std::unordered_map<std::string, std::list<Entry>::iterator> index;
    int64_t max_sessions = 0, max_bytes = 0, bytes = 0;
  };

  Shard& shard_of(const std::string& id) const;
  bool expired(const Entry& e, Clock::time_point now) const;
  /// Removes `it` from `sh` (lock held) and counts it.
  void erase(Shard& sh, std::list<Entry>::iterator it, std::optional<Eviction> why);
  void enforce(Shard& sh, const Session* keep);
  Clock::time_point now() const { return options_.now ? options_.now() : Clock::now(); }

  StoreOptions options_;
  Clock::duration ttl_{};
  mutable std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<int64_t> live_{0}, bytes_{0}, created_{0}, dropped_{0};
  std::atomic<int64_t> evicted_[4]{};
};

}  // namespace seqrec::serve
