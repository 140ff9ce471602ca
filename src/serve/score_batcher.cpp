#include "serve/score_batcher.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "seqrec/error.hpp"

namespace seqrec::serve {

ScoreBatcher::ScoreBatcher(ScoreFn fn, int32_t max_batch, int32_t lanes)
    : fn_(std::move(fn)), max_batch_(max_batch), lanes_(lanes) {
  if (!fn_) throw InputError("score batcher: no scoring function");
  if (max_batch_ < 1) throw InputError("score batcher: max_batch must be at least 1");
  if (lanes_ < 1) throw InputError("score batcher: lanes must be at least 1");
}

void ScoreBatcher::run(void* payload) {
  Job job{payload, false, false, nullptr};
  thread_local std::vector<Job*> batch;
  thread_local std::vector<void*> payloads;
  std::unique_lock<std::mutex> lock(mu_);
  bool queued = false;
  while (!job.done) {
    if (job.taken || running_ >= lanes_) {
      if (!queued && !job.taken) {
        queue_.push_back(&job);
        queued = true;
      }
      cv_.wait(lock);
      continue;
    }
    // Lead a batch: this query first, then the oldest waiting ones.
    if (queued) queue_.erase(std::find(queue_.begin(), queue_.end(), &job));
    batch.clear();
    batch.push_back(&job);
    while (!queue_.empty() && static_cast<int32_t>(batch.size()) < max_batch_) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    for (Job* j : batch) j->taken = true;
    ++running_;
    lock.unlock();
    payloads.clear();
    for (Job* j : batch) payloads.push_back(j->payload);
    std::exception_ptr error;
    try {
      fn_(static_cast<int32_t>(batch.size()), payloads.data());
    } catch (...) {
      error = std::current_exception();
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    queries_.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
    lock.lock();
    --running_;
    for (Job* j : batch) {
      j->error = error;
      j->done = true;
    }
    cv_.notify_all();
  }
  lock.unlock();
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace seqrec::serve
