#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <vector>

#include "core/parallel.hpp"

using namespace seqrec;

TEST(CoreParallel, CoversEveryIndexOnce) {
  for (int64_t grain : {0, 1, 7}) {
    std::vector<std::atomic<int>> hits(1000);
    parallel_for(
        1000,
        [&](int64_t b, int64_t e, int) {
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        },
        grain);
    for (auto& h : hits) EXPECT_EQ(h.load(), 1) << "grain " << grain;
  }
}

// Regression: nested inside a parallel region the team has one thread; the whole range must
// still be processed.
TEST(CoreParallel, NestedCallProcessesWholeRange) {
  set_threads(2);
  std::atomic<int64_t> total{0};
#pragma omp parallel num_threads(2)
  {
    parallel_for(100, [&](int64_t b, int64_t e, int) { total += e - b; });
  }
  EXPECT_EQ(total.load(), 100 * omp_get_max_threads());
  set_threads(0);
}

TEST(CoreParallel, ExceptionsPropagate) {
  EXPECT_THROW(parallel_for(100,
                            [](int64_t b, int64_t, int) {
                              if (b >= 0) throw std::runtime_error("boom");
                            }),
               std::runtime_error);
}
