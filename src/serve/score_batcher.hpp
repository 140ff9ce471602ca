// Micro-batching of concurrent scoring requests, without a thread of its own and without
// waiting for company.
//
// A request thread calls run(job) with a job of the scoring function's own type. If fewer than
// `lanes` batches are being computed, it becomes a leader at once: it takes its own query and up to
// max_batch - 1 queries that are already queued (oldest first), computes them in one call of the
// scoring function, and wakes their threads. Otherwise it queues its query and waits; when a batch
// ends, a waiting thread whose query nobody has taken becomes the next leader and takes everything
// queued. So a lone request is scored immediately (no added latency), and under load the requests
// that arrive while a batch runs are scored together in the next one, which is what makes a
// memory-bound scoring function (PackedDotHead) cheaper per request as the load grows.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>

namespace seqrec::serve {

class ScoreBatcher {
 public:
  /// fn(n, jobs): computes n jobs at once (called by one thread per lane at a time, never
  /// with n < 1 or n > max_batch); a job is whatever the caller passes to run().
  using ScoreFn = std::function<void(int32_t n, void* const* jobs)>;

  /// max_batch >= 1 (1 = every request scored alone), lanes >= 1: batches computed at once.
  ScoreBatcher(ScoreFn fn, int32_t max_batch, int32_t lanes);
  ScoreBatcher(const ScoreBatcher&) = delete;
  ScoreBatcher& operator=(const ScoreBatcher&) = delete;

  /// Computes `job` (which must stay valid until it returns), possibly together with the
  /// jobs of other threads. Rethrows what the scoring function threw.
  void run(void* job);

  int32_t max_batch() const { return max_batch_; }
  int32_t lanes() const { return lanes_; }
  /// Batches computed, and queries scored in them (queries / batches = mean batch size).
  int64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  int64_t queries() const { return queries_.load(std::memory_order_relaxed); }

 private:
  struct Job {
    void* payload;
    bool taken = false;
    bool done = false;
    std::exception_ptr error;
  };

  ScoreFn fn_;
  int32_t max_batch_, lanes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;  // waiting, not taken
  int32_t running_ = 0;     // batches being computed
  std::atomic<int64_t> batches_{0}, queries_{0};
};

}  // namespace seqrec::serve
