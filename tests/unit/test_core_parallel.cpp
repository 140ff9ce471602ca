#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <stdexcept>
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

TEST(CoreParallel, ThreadScopeSetsAndRestores) {
  set_threads(2);
  {
    ThreadScope scope(3, ZeroThreads::KeepCurrent);
    EXPECT_EQ(num_threads(), 3);
  }
  EXPECT_EQ(num_threads(), 2);
  {
    ThreadScope scope(3, ZeroThreads::AllCores);
    EXPECT_EQ(num_threads(), 3);
  }
  EXPECT_EQ(num_threads(), 2);
}

TEST(CoreParallel, ThreadScopeZeroMeansWhatTheCallerSays) {
  set_threads(0);
  const int all = num_threads();
  set_threads(2);
  {
    ThreadScope scope(0, ZeroThreads::KeepCurrent);
    EXPECT_EQ(num_threads(), 2);
  }
  EXPECT_EQ(num_threads(), 2);
  {
    ThreadScope scope(0, ZeroThreads::AllCores);
    EXPECT_EQ(num_threads(), all);
  }
  EXPECT_EQ(num_threads(), 2);
  {
    ThreadScope scope(-1, ZeroThreads::KeepCurrent);
    EXPECT_EQ(num_threads(), 2);
  }
  EXPECT_EQ(num_threads(), 2);
}

TEST(CoreParallel, ThreadScopeRestoresWhenLeftByAnException) {
  set_threads(2);
  try {
    ThreadScope scope(5, ZeroThreads::AllCores);
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(num_threads(), 2);
}
