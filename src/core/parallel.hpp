// Thread control shared by training and evaluation (OpenMP underneath, like oneDNN).
#pragma once

#include <cstdint>
#include <functional>

namespace seqrec {

/// Sets the number of threads for everything that follows (0 = all cores).
void set_threads(int n);
int num_threads();

/// What a ThreadScope does with a thread count of 0 (or below). Training (FitContext) and
/// evaluation (EvalOptions) take 0 as "all cores", as their options document; per-request
/// serving takes it as "leave the count as it is" (the server's own setting).
enum class ZeroThreads {
  AllCores,     ///< n <= 0 sets all cores, as set_threads(0)
  KeepCurrent,  ///< n <= 0 changes nothing
};

/// Sets the calling thread's thread count for the lifetime of the scope (n > 0: n threads;
/// n <= 0: as `zero` says) and restores the previous count on exit when it set one.
class ThreadScope {
 public:
  ThreadScope(int n, ZeroThreads zero);
  ~ThreadScope();
  ThreadScope(const ThreadScope&) = delete;
  ThreadScope& operator=(const ThreadScope&) = delete;

 private:
  int old_;
  bool changed_ = false;
};

/// Runs fn(begin, end, thread_id) over [0, n) split into contiguous chunks, one per thread
/// (dynamic scheduling with `grain` items per chunk when grain > 0). Called from inside
/// another parallel region it runs fn(0, n, 0) on the calling thread.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                  int64_t grain = 0);

}  // namespace seqrec
