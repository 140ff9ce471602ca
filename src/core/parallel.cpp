#include "core/parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <exception>
#include <mutex>

namespace seqrec {

void set_threads(int n) {
  if (n <= 0) n = omp_get_num_procs();
  omp_set_num_threads(n);
}

int num_threads() {
  return omp_get_max_threads();
}

ThreadScope::ThreadScope(int n, ZeroThreads zero) : old_(num_threads()) {
  if (n <= 0 && zero == ZeroThreads::KeepCurrent) return;
  set_threads(n);
  changed_ = true;
}

ThreadScope::~ThreadScope() {
  if (changed_) set_threads(old_);
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn, int64_t grain) {
  if (n <= 0) return;
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), n));
  // Inside another parallel region (e.g. a model's score() called by the evaluator's
  // threads) OpenMP gives a team of one: run everything here rather than split the range
  // for threads that would never come.
  if (nt <= 1 || omp_in_parallel()) {
    fn(0, n, 0);
    return;
  }
  // Exceptions must not escape an OpenMP region: keep the first and rethrow after.
  std::exception_ptr error;
  std::mutex mu;
  if (grain > 0) {
    const int64_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t c = 0; c < chunks; ++c) {
      try {
        fn(c * grain, std::min(n, (c + 1) * grain), omp_get_thread_num());
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  } else {
#pragma omp parallel num_threads(nt)
    {
      const int t = omp_get_thread_num(), team = omp_get_num_threads();
      const int64_t begin = n * t / team, end = n * (t + 1) / team;
      try {
        if (begin < end) fn(begin, end, t);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace seqrec
