// Thread control shared by training and evaluation (OpenMP underneath, like oneDNN).
#pragma once

#include <cstdint>
#include <functional>

namespace seqrec {

/// Sets the number of threads for everything that follows (0 = all cores).
void set_threads(int n);
int num_threads();

/// Runs fn(begin, end, thread_id) over [0, n) split into contiguous chunks, one per thread
/// (dynamic scheduling with `grain` items per chunk when grain > 0). Called from inside
/// another parallel region it runs fn(0, n, 0) on the calling thread.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn,
                  int64_t grain = 0);

}  // namespace seqrec
