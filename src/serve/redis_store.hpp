// The Redis session store: each session is one Redis hash `PREFIX + id` with two fields,
// `v` (a version counter, decimal) and `d` (the session, serve/session_codec.hpp), expiring
// through Redis' own TTL. Any number of Recommenders, in any number of processes, share it.
//
// Updates are optimistic: the caller reads (get), applies its events locally, and writes
// back with put_if(), a Lua script that writes only when the version is still the one read
// and bumps it; otherwise nothing is written and the caller starts again from the read. A
// script runs atomically in Redis and costs one round trip on any connection of a pool,
// where WATCH/MULTI/EXEC would cost three and pin the WATCH to one connection.
//
// Connections: synchronous hiredis contexts in a pool (at most `max_connections`, opened
// on demand, one per concurrent request), each command bounded by what is left of the
// request's deadline (SO_RCVTIMEO/SO_SNDTIMEO). A failed connection is closed with every
// idle one (after a Redis restart they are all dead), and new connections are then tried
// only after a backoff (50 ms doubling to 1 s), so that while Redis is down requests fail
// at once instead of each waiting for a connect timeout. Every failure throws
// SessionStoreUnavailable (seqrec/recommender.hpp). A process with a RedisStore ignores
// SIGPIPE (unless it already handles it): hiredis writes with write(), and a write to a
// connection that Redis closed would otherwise end the process.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct redisContext;

namespace seqrec::serve {

/// redis://HOST:PORT[/DB] (PORT defaults to 6379, DB to 0).
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string url() const;
};
/// Parses a redis:// URL; InputError naming `what` otherwise.
RedisAddress parse_redis_url(const std::string& url, const std::string& what);

class RedisStore {
 public:
  using Clock = std::chrono::steady_clock;
  RedisStore(RedisAddress address, std::string key_prefix, double timeout_seconds,
             int max_connections);
  ~RedisStore();
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  struct Value {
    uint64_t version = 0;
    std::string data;
  };
  /// The session's value, nothing when there is none.
  std::optional<Value> get(const std::string& id, Clock::time_point deadline);
  /// Writes `data` as version `expected + 1` when the stored version is `expected` (0 = no
  /// session), with a TTL of `ttl_ms` (0 = none); false (nothing written) otherwise.
  bool put_if(const std::string& id, uint64_t expected, const std::string& data, int64_t ttl_ms,
              Clock::time_point deadline);
  /// Deletes the session; whether there was one.
  bool del(const std::string& id, Clock::time_point deadline);
  /// PING within the timeout (or the last error while waiting to reconnect); never throws.
  bool healthy(std::string* error);
  const RedisAddress& address() const { return address_; }
  double timeout_seconds() const { return timeout_; }

 private:
  struct Lease;
  redisContext* acquire(Clock::time_point deadline, bool* reused);
  void release(redisContext* c, bool broken, bool penalise, const std::string& error);
  redisContext* connect(Clock::time_point deadline, std::string* error);
  [[noreturn]] void unavailable(const std::string& what);

  RedisAddress address_;
  std::string prefix_;
  double timeout_;
  int max_connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<redisContext*> idle_;
  int open_ = 0;
  Clock::time_point retry_at_{};
  Clock::duration backoff_;
  std::string last_error_;
  std::string script_sha_;  // of the update script, once loaded
};

}  // namespace seqrec::serve
