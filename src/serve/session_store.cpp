#include "serve/session_store.hpp"

#include <algorithm>

namespace seqrec::serve {

void Session::push(int32_t item) {
  if (buf.size() >= 2 * static_cast<size_t>(cap)) {
    buf.erase(buf.begin(), buf.end() - (cap - 1));
  }
  if (buf.capacity() == 0) buf.reserve(std::min<size_t>(16, 2 * static_cast<size_t>(cap)));
  buf.push_back(item);
}

void Session::clear() {
  buf.clear();
  buf.shrink_to_fit();
  state.reset();
  length = 0;
  last_event_timestamp.reset();
}

int64_t Session::bytes() const {
  // The object, its id, the history buffer, the model state, and the table's entry (list
  // node, hash node, key copy) as a flat estimate.
  int64_t b = static_cast<int64_t>(sizeof(Session)) + 2 * static_cast<int64_t>(id.capacity()) +
              static_cast<int64_t>(buf.capacity() * sizeof(int32_t)) + 128;
  if (state) b += static_cast<int64_t>(state->bytes());
  return b;
}

SessionStore::SessionStore(StoreOptions options) : options_(std::move(options)) {
  const int32_t n = std::max<int32_t>(1, options_.shards);
  if (options_.ttl_seconds > 0)
    ttl_ = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.ttl_seconds));
  shards_.reserve(static_cast<size_t>(n));
  // The limits are split evenly, remainders to the first shards, so their sums are exact.
  for (int32_t i = 0; i < n; ++i) {
    auto sh = std::make_unique<Shard>();
    sh->max_sessions = options_.max_sessions / n + (i < options_.max_sessions % n ? 1 : 0);
    sh->max_bytes = options_.max_bytes / n + (i < options_.max_bytes % n ? 1 : 0);
    shards_.push_back(std::move(sh));
  }
}

SessionStore::Shard& SessionStore::shard_of(const std::string& id) const {
  // Mix the hash: std::hash of a string is fine, but the low bits pick the shard.
  uint64_t h = std::hash<std::string>{}(id);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return *shards_[h % shards_.size()];
}

bool SessionStore::expired(const Entry& e, Clock::time_point t) const {
  return ttl_ > Clock::duration::zero() && t - e.last_used > ttl_;
}

void SessionStore::erase(Shard& sh, std::list<Entry>::iterator it, std::optional<Eviction> why) {
  sh.bytes -= it->bytes;
  bytes_ -= it->bytes;
  --live_;
  if (why)
    ++evicted_[static_cast<int>(*why)];
  else
    ++dropped_;
  sh.index.erase(it->session->id);
  sh.lru.erase(it);
}

void SessionStore::enforce(Shard& sh, const Session* keep) {
  while (!sh.lru.empty() &&
         (static_cast<int64_t>(sh.lru.size()) > sh.max_sessions || sh.bytes > sh.max_bytes)) {
    const Eviction why =
        static_cast<int64_t>(sh.lru.size()) > sh.max_sessions ? Eviction::Lru : Eviction::Memory;
    auto victim = std::prev(sh.lru.end());
    // The session in use goes last: only when it alone is over the limits.
    if (victim->session.get() == keep && sh.lru.size() > 1) victim = std::prev(victim);
    erase(sh, victim, why);
  }
}

std::shared_ptr<Session> SessionStore::acquire(
    const std::string& id, const std::function<std::shared_ptr<Session>()>& make, bool* created) {
  Shard& sh = shard_of(id);
  const Clock::time_point t = now();
  std::lock_guard<std::mutex> lock(sh.mu);
  auto found = sh.index.find(id);
  if (found != sh.index.end()) {
    if (!expired(*found->second, t)) {
      sh.lru.splice(sh.lru.begin(), sh.lru, found->second);
      found->second->last_used = t;
      *created = false;
      return found->second->session;
    }
    erase(sh, found->second, Eviction::Ttl);
  }
  std::shared_ptr<Session> s = make();
  const int64_t b = s->bytes();
  sh.lru.push_front(Entry{s, t, b});
  sh.index.emplace(s->id, sh.lru.begin());
  sh.bytes += b;
  bytes_ += b;
  ++live_;
  ++created_;
  enforce(sh, s.get());
  *created = true;
  return s;
}

void SessionStore::update_bytes(const std::shared_ptr<Session>& s, int64_t b) {
  Shard& sh = shard_of(s->id);
  std::lock_guard<std::mutex> lock(sh.mu);
  auto found = sh.index.find(s->id);
  if (found == sh.index.end() || found->second->session != s) return;
  const int64_t delta = b - found->second->bytes;
  found->second->bytes = b;
  sh.bytes += delta;
  bytes_ += delta;
  enforce(sh, s.get());
}

std::shared_ptr<Session> SessionStore::peek(const std::string& id, double* idle_seconds) const {
  Shard& sh = shard_of(id);
  const Clock::time_point t = now();
  std::lock_guard<std::mutex> lock(sh.mu);
  auto found = sh.index.find(id);
  if (found == sh.index.end() || expired(*found->second, t)) return nullptr;
  if (idle_seconds)
    *idle_seconds = std::chrono::duration<double>(t - found->second->last_used).count();
  return found->second->session;
}

bool SessionStore::drop(const std::string& id) {
  Shard& sh = shard_of(id);
  std::lock_guard<std::mutex> lock(sh.mu);
  auto found = sh.index.find(id);
  if (found == sh.index.end()) return false;
  if (expired(*found->second, now())) {
    erase(sh, found->second, Eviction::Ttl);
    return false;
  }
  erase(sh, found->second, std::nullopt);
  return true;
}

int64_t SessionStore::expire_idle() {
  if (ttl_ <= Clock::duration::zero()) return 0;
  int64_t n = 0;
  const Clock::time_point t = now();
  for (auto& shp : shards_) {
    Shard& sh = *shp;
    std::lock_guard<std::mutex> lock(sh.mu);
    // The list is in order of last use, so the idle ones are at the back.
    while (!sh.lru.empty() && expired(sh.lru.back(), t)) {
      erase(sh, std::prev(sh.lru.end()), Eviction::Ttl);
      ++n;
    }
  }
  return n;
}

int64_t SessionStore::clear(Eviction why) {
  int64_t n = 0;
  for (auto& shp : shards_) {
    Shard& sh = *shp;
    std::lock_guard<std::mutex> lock(sh.mu);
    while (!sh.lru.empty()) {
      erase(sh, std::prev(sh.lru.end()), why);
      ++n;
    }
  }
  return n;
}

std::vector<std::pair<std::shared_ptr<Session>, Clock::time_point>> SessionStore::list() const {
  std::vector<std::pair<std::shared_ptr<Session>, Clock::time_point>> out;
  out.reserve(static_cast<size_t>(std::max<int64_t>(0, live_.load())));
  for (auto& shp : shards_) {
    Shard& sh = *shp;
    std::lock_guard<std::mutex> lock(sh.mu);
    for (const Entry& e : sh.lru) out.emplace_back(e.session, e.last_used);
  }
  return out;
}

void SessionStore::insert(std::shared_ptr<Session> s, Clock::time_point last_used) {
  Shard& sh = shard_of(s->id);
  std::lock_guard<std::mutex> lock(sh.mu);
  if (auto found = sh.index.find(s->id); found != sh.index.end())
    erase(sh, found->second, std::nullopt);
  const int64_t b = s->bytes();
  sh.lru.push_front(Entry{s, last_used, b});
  sh.index.emplace(s->id, sh.lru.begin());
  sh.bytes += b;
  bytes_ += b;
  ++live_;
  ++created_;
  enforce(sh, nullptr);
}

StoreStats SessionStore::stats() const {
  StoreStats s;
  s.live = live_.load();
  s.bytes = bytes_.load();
  s.created = created_.load();
  s.dropped = dropped_.load();
  for (int i = 0; i < 4; ++i) s.evicted[i] = evicted_[i].load();
  return s;
}

}  // namespace seqrec::serve
