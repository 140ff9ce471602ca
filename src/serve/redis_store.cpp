#include "serve/redis_store.hpp"

#include <hiredis.h>
#include <signal.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <random>

#include "seqrec/error.hpp"
#include "seqrec/recommender.hpp"

namespace seqrec::serve {

namespace {

using namespace std::chrono_literals;

constexpr std::chrono::milliseconds kFirstBackoff = 50ms;
constexpr std::chrono::milliseconds kMaxBackoff = 1000ms;

// KEYS[1] the session; ARGV: expected version ("0" = absent), new version, data, TTL in ms
// ("0" = none). Returns 1 when written, 0 when the version had changed.
constexpr const char* kUpdateScript =
    "local v = redis.call('HGET', KEYS[1], 'v')\n"
    "if (v or '0') ~= ARGV[1] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])\n"
    "if ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
    "else redis.call('PERSIST', KEYS[1]) end\n"
    "return 1\n";

timeval to_timeval(std::chrono::steady_clock::duration d) {
  const auto us =
      std::max<int64_t>(1000, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
  timeval tv;
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

struct ReplyPtr {
  redisReply* r = nullptr;
  ~ReplyPtr() {
    if (r) freeReplyObject(r);
  }
};

/// Why a command on `c` got no reply (hiredis says "Resource temporarily unavailable" for a
/// timeout).
std::string describe(const redisContext* c) {
  if (c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
    return "no answer within the timeout";
  if (c->err == REDIS_ERR_EOF) return "the server closed the connection";
  return c->errstr[0] ? std::string(c->errstr) : std::string("connection lost");
}

uint64_t fresh_version() {
  thread_local std::mt19937_64 g{std::random_device{}()};
  // A new session starts at a random version, so that a writer that read a deleted or
  // expired session cannot mistake its successor for it (versions then count up).
  return (g() >> 2) + 1;
}

}  // namespace

std::string RedisAddress::url() const {
  return "redis://" + host + ":" + std::to_string(port) + (db ? "/" + std::to_string(db) : "");
}

RedisAddress parse_redis_url(const std::string& url, const std::string& what) {
  auto bad = [&](const std::string& why) -> RedisAddress {
    throw InputError(what + ": '" + url + "' " + why +
                     " (expected memory or redis://HOST:PORT[/DB])");
  };
  const std::string scheme = "redis://";
  if (url.rfind(scheme, 0) != 0) return bad("is not a session store");
  std::string rest = url.substr(scheme.size());
  RedisAddress a;
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), a.db);
      if (ec != std::errc() || p != db.data() + db.size() || a.db < 0 || a.db > 1000000)
        return bad("has a bad database number '" + db + "'");
    }
  }
  if (rest.find('@') != std::string::npos)
    return bad("has credentials, which are not supported (use a local or tunnelled Redis)");
  std::string port;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:PORT
    const auto close = rest.find(']');
    if (close == std::string::npos) return bad("has an unclosed '['");
    a.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("has junk after ']'");
      port = rest.substr(close + 2);
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    a.host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  } else {
    a.host = rest;
  }
  if (a.host.empty()) return bad("has no host");
  if (!port.empty()) {
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
    if (ec != std::errc() || p != port.data() + port.size() || a.port < 1 || a.port > 65535)
      return bad("has a bad port '" + port + "'");
  }
  return a;
}

RedisStore::RedisStore(RedisAddress address, std::string key_prefix, double timeout_seconds,
                       int max_connections)
    : address_(std::move(address)),
      prefix_(std::move(key_prefix)),
      timeout_(timeout_seconds),
      max_connections_(std::max(1, max_connections)),
      backoff_(kFirstBackoff) {
  // hiredis writes with write(): on a connection Redis has closed (a restart) that raises
  // SIGPIPE, whose default action ends the process. Ignore it (unless someone handles it).
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
    ::signal(SIGPIPE, SIG_IGN);
}

RedisStore::~RedisStore() {
  for (redisContext* c : idle_) redisFree(c);
}

void RedisStore::unavailable(const std::string& what) {
  throw SessionStoreUnavailable("session store " + address_.url() + " unavailable: " + what);
}

redisContext* RedisStore::connect(Clock::time_point deadline, std::string* error) {
  const auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) {
    *error = "no answer within the timeout";
    return nullptr;
  }
  redisContext* c = redisConnectWithTimeout(address_.host.c_str(), address_.port, to_timeval(left));
  if (c == nullptr) {
    *error = "cannot allocate a connection";
    return nullptr;
  }
  if (c->err) {
    *error = std::string("connect: ") + c->errstr;
    redisFree(c);
    return nullptr;
  }
  redisSetTimeout(c, to_timeval(deadline - Clock::now()));
  // SELECT, then SCRIPT LOAD (the script is gone after a Redis restart).
  std::vector<std::vector<std::string>> setup;
  if (address_.db != 0) setup.push_back({"SELECT", std::to_string(address_.db)});
  setup.push_back({"SCRIPT", "LOAD", kUpdateScript});
  std::string sha;
  for (const auto& args : setup) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    ReplyPtr r{static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()))};
    if (!r.r || r.r->type == REDIS_REPLY_ERROR) {
      *error = args[0] + ": " + (r.r ? std::string(r.r->str, r.r->len) : describe(c));
      redisFree(c);
      return nullptr;
    }
    if (r.r->type == REDIS_REPLY_STRING) sha.assign(r.r->str, r.r->len);
  }
  std::lock_guard<std::mutex> lock(mu_);
  script_sha_ = sha;
  return c;
}

redisContext* RedisStore::acquire(Clock::time_point deadline, bool* reused) {
  std::unique_lock<std::mutex> lock(mu_);
  while (idle_.empty() && open_ >= max_connections_)
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= max_connections_)
      unavailable("no free connection within the timeout (" + std::to_string(max_connections_) +
                  " in use)");
  if (!idle_.empty()) {
    redisContext* c = idle_.back();
    idle_.pop_back();
    *reused = true;
    return c;
  }
  if (Clock::now() < retry_at_) unavailable(last_error_ + " (reconnecting)");
  ++open_;
  lock.unlock();
  std::string error;
  redisContext* c = connect(deadline, &error);
  lock.lock();
  if (c) {
    backoff_ = kFirstBackoff;
    last_error_.clear();
    *reused = false;
    return c;
  }
  --open_;
  last_error_ = error;
  retry_at_ = Clock::now() + backoff_;
  backoff_ = std::min<Clock::duration>(2 * backoff_, kMaxBackoff);
  cv_.notify_one();
  unavailable(error);
}

void RedisStore::release(redisContext* c, bool broken, bool penalise, const std::string& error) {
  std::vector<redisContext*> close;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!broken) {
      idle_.push_back(c);
    } else {
      // The others probably share its fate (a restart drops every connection).
      close.swap(idle_);
      close.push_back(c);
      open_ -= static_cast<int>(close.size());
      last_error_ = error;
      if (penalise) {  // a fresh connection failed: Redis is down or hung, back off
        retry_at_ = Clock::now() + backoff_;
        backoff_ = std::min<Clock::duration>(2 * backoff_, kMaxBackoff);
      }
    }
  }
  for (redisContext* x : close) redisFree(x);
  cv_.notify_all();
}

/// A connection for one command sequence; released (or closed, when broken) at the end.
struct RedisStore::Lease {
  RedisStore& store;
  redisContext* c = nullptr;
  bool reused = false;
  bool broken = false;
  std::string error;
  Clock::time_point deadline;

  Lease(RedisStore& s, Clock::time_point d) : store(s), deadline(d) {
    c = store.acquire(deadline, &reused);
  }
  ~Lease() {
    if (c) store.release(c, broken, !reused, error);
  }
  /// Runs a command; nullptr with `broken` set when the connection failed (it is then
  /// closed). An error reply is returned as such.
  redisReply* run(const std::vector<std::string_view>& args) {
    const auto left = deadline - Clock::now();
    if (left <= Clock::duration::zero()) {
      // The connection may be fine, but the request is out of time.
      throw SessionStoreUnavailable("session store " + store.address_.url() +
                                    " unavailable: no answer within the timeout");
    }
    redisSetTimeout(c, to_timeval(left));
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    argv.reserve(args.size());
    lens.reserve(args.size());
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (!r) {
      broken = true;
      error = describe(c);
    }
    return r;
  }
  /// Gives up on a broken connection now (so that a retry gets a fresh one).
  void drop() {
    store.release(c, true, !reused, error);
    c = nullptr;
  }
};

std::optional<RedisStore::Value> RedisStore::get(const std::string& id,
                                                 Clock::time_point deadline) {
  const std::string key = prefix_ + id;
  // A pooled connection may have died since its last use (Redis restarted): then one more
  // try on a fresh connection (a read may be repeated).
  for (int attempt = 0;; ++attempt) {
    Lease l(*this, deadline);
    ReplyPtr r{l.run({"HMGET", key, "v", "d"})};
    if (!r.r) {
      const bool retry = l.reused && attempt == 0;
      const std::string why = l.error;
      l.drop();
      if (retry) continue;
      unavailable(why);
    }
    if (r.r->type == REDIS_REPLY_ERROR) unavailable(std::string(r.r->str, r.r->len));
    if (r.r->type != REDIS_REPLY_ARRAY || r.r->elements != 2)
      unavailable("unexpected answer to HMGET");
    const redisReply* v = r.r->element[0];
    const redisReply* d = r.r->element[1];
    if (d->type != REDIS_REPLY_STRING) return std::nullopt;
    Value out;
    if (v->type == REDIS_REPLY_STRING) {
      auto [p, ec] = std::from_chars(v->str, v->str + v->len, out.version);
      if (ec != std::errc()) out.version = 0;
    }
    // A value without a readable version is written over as if absent (version "0" does
    // not match it, so the update retries, then fails: see put_if's caller).
    out.data.assign(d->str, d->len);
    return out;
  }
}

bool RedisStore::put_if(const std::string& id, uint64_t expected, const std::string& data,
                        int64_t ttl_ms, Clock::time_point deadline) {
  const std::string key = prefix_ + id;
  const std::string want = std::to_string(expected);
  const std::string next = std::to_string(expected == 0 ? fresh_version() : expected + 1);
  const std::string ttl = std::to_string(std::max<int64_t>(0, ttl_ms));
  Lease l(*this, deadline);
  std::string sha;
  {
    std::lock_guard<std::mutex> lock(mu_);
    sha = script_sha_;
  }
  ReplyPtr r{l.run({"EVALSHA", sha, "1", key, want, next, data, ttl})};
  if (r.r && r.r->type == REDIS_REPLY_ERROR &&
      std::string_view(r.r->str, r.r->len).rfind("NOSCRIPT", 0) == 0) {
    freeReplyObject(r.r);
    r.r = static_cast<redisReply*>(nullptr);
    r.r = l.run({"EVAL", kUpdateScript, "1", key, want, next, data, ttl});
  }
  if (!r.r) unavailable(l.error + " (the update may or may not have been applied)");
  if (r.r->type == REDIS_REPLY_ERROR) unavailable(std::string(r.r->str, r.r->len));
  if (r.r->type != REDIS_REPLY_INTEGER) unavailable("unexpected answer to the update script");
  return r.r->integer == 1;
}

bool RedisStore::del(const std::string& id, Clock::time_point deadline) {
  const std::string key = prefix_ + id;
  for (int attempt = 0;; ++attempt) {
    Lease l(*this, deadline);
    ReplyPtr r{l.run({"DEL", key})};
    if (!r.r) {
      const bool retry = l.reused && attempt == 0;
      const std::string why = l.error;
      l.drop();
      if (retry) continue;
      unavailable(why);
    }
    if (r.r->type == REDIS_REPLY_ERROR) unavailable(std::string(r.r->str, r.r->len));
    return r.r->type == REDIS_REPLY_INTEGER && r.r->integer > 0;
  }
}

bool RedisStore::healthy(std::string* error) {
  try {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(timeout_));
    for (int attempt = 0;; ++attempt) {
      Lease l(*this, deadline);
      ReplyPtr r{l.run({"PING"})};
      if (!r.r) {
        const bool retry = l.reused && attempt == 0;
        const std::string why = l.error;
        l.drop();
        if (retry) continue;
        unavailable(why);
      }
      if (r.r->type == REDIS_REPLY_ERROR) unavailable(std::string(r.r->str, r.r->len));
      return true;
    }
  } catch (const std::exception& e) {
    if (error) *error = e.what();
    return false;
  }
}

}  // namespace seqrec::serve
