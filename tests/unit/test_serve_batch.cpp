// Batched scoring in the server: the repacked dot-product head (PackedDotHead: correct
// scores, tail blocks, a row independent of its batch), the micro-batcher (ScoreBatcher:
// every thread gets its own row, batches form under contention, limits, errors), and the
// Recommender on real GRU4Rec and SASRec models: requests scored concurrently in batches
// give exactly (bit for bit) the recommendations of the same requests one at a time, and
// the model's own scores up to rounding.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "models/gru4rec.hpp"
#include "models/sasrec.hpp"
#include "seqrec/data.hpp"
#include "seqrec/error.hpp"
#include "seqrec/model.hpp"
#include "seqrec/recommender.hpp"
#include "serve/dot_head.hpp"
#include "serve/score_batcher.hpp"
#include "serve/topk.hpp"

using namespace seqrec;

namespace {

struct RandomHead {
  std::vector<float> items, bias;
  DotProductHead head(int32_t dim, bool with_bias) const {
    return {dim, items.data(), with_bias ? bias.data() : nullptr};
  }
};

RandomHead random_head(int32_t n, int32_t dim, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  RandomHead h;
  h.items.resize(static_cast<size_t>(n) * dim);
  h.bias.resize(static_cast<size_t>(n));
  for (auto& x : h.items) x = d(g);
  for (auto& x : h.bias) x = d(g);
  return h;
}

std::vector<float> random_queries(int32_t count, int32_t dim, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(count) * dim);
  for (auto& x : q) x = d(g);
  return q;
}

/// Scores the queries `which` of `q` in one call; returns their rows.
std::vector<std::vector<float>> score_batch(const serve::PackedDotHead& h,
                                            const std::vector<float>& q,
                                            const std::vector<int>& which) {
  std::vector<std::vector<float>> rows(which.size(), std::vector<float>(h.n_items(), -1.0f));
  std::vector<const float*> qs;
  std::vector<float*> outs;
  for (size_t r = 0; r < which.size(); ++r) {
    qs.push_back(q.data() + static_cast<size_t>(which[r]) * h.dim());
    outs.push_back(rows[r].data());
  }
  h.score(static_cast<int32_t>(which.size()), qs.data(), outs.data());
  return rows;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

/// The definition of an exact score (dot_head.hpp): a float fma chain, then the bias.
float reference(const RandomHead& rh, bool with_bias, int32_t dim, const float* q, int32_t i) {
  float acc = 0.0f;
  for (int32_t k = 0; k < dim; ++k)
    acc = std::fma(q[k], rh.items[static_cast<size_t>(i) * dim + k], acc);
  return acc + (with_bias ? rh.bias[static_cast<size_t>(i)] : 0.0f);
}

constexpr serve::HeadPrecision kAll[] = {serve::HeadPrecision::Fp32, serve::HeadPrecision::Int8,
                                         serve::HeadPrecision::Bf16};

TEST(ServeDotHead, PassesAreExactOrWithinTheBoundIncludingTailBlocks) {
  for (auto [n, dim] : std::vector<std::pair<int32_t, int32_t>>{
           {1, 1}, {15, 3}, {16, 7}, {17, 16}, {37, 5}, {300, 100}, {1000, 50}}) {
    for (bool with_bias : {true, false}) {
      RandomHead rh = random_head(n, dim, static_cast<uint32_t>(n * 31 + dim));
      // Items of very different norms, a zero item and one of subnormal weights.
      for (int32_t k = 0; k < dim; ++k) {
        rh.items[static_cast<size_t>(k)] *= 50.0f;
        if (n > 3) rh.items[static_cast<size_t>(2 * dim + k)] = 0.0f;
        if (n > 4) rh.items[static_cast<size_t>(3 * dim + k)] = 1e-40f * static_cast<float>(k % 3);
      }
      for (serve::HeadPrecision prec : kAll) {
        serve::PackedDotHead h(rh.head(dim, with_bias), n, prec);
        EXPECT_EQ(h.n_items(), n);
        EXPECT_EQ(h.dim(), dim);
        EXPECT_EQ(h.precision(), prec);
        EXPECT_GE(h.bytes(), static_cast<int64_t>(n) * dim);
        const std::vector<float> q = random_queries(11, dim, 5);
        // Padding around each row: nothing outside [0, n) may be written.
        std::vector<std::vector<float>> rows(11, std::vector<float>(n + 32, 7.0f));
        std::vector<const float*> qs;
        std::vector<float*> outs;
        for (int r = 0; r < 11; ++r) {
          qs.push_back(q.data() + static_cast<size_t>(r) * dim);
          outs.push_back(rows[r].data() + 16);
        }
        h.score(11, qs.data(), outs.data());
        std::vector<int32_t> all(static_cast<size_t>(n));
        for (int32_t i = 0; i < n; ++i) all[static_cast<size_t>(i)] = i;
        std::vector<float> ex(static_cast<size_t>(n));
        for (int r = 0; r < 11; ++r) {
          for (int j = 0; j < 16; ++j) ASSERT_EQ(rows[r][j], 7.0f);
          for (int j = n + 16; j < n + 32; ++j) ASSERT_EQ(rows[r][j], 7.0f) << "wrote past the row";
          const double bound = h.error_bound(qs[r]);
          if (prec == serve::HeadPrecision::Fp32) EXPECT_EQ(bound, 0.0);
          h.exact(qs[r], all, ex.data());
          for (int32_t i = 0; i < n; ++i) {
            const float want = reference(rh, with_bias, dim, qs[r], i);
            ASSERT_EQ(ex[static_cast<size_t>(i)], want) << "exact() is the definition";
            const float got = rows[r][16 + i];
            if (prec == serve::HeadPrecision::Fp32)
              ASSERT_EQ(got, want) << n << "x" << dim << " item " << i;
            else
              ASSERT_LE(std::fabs(static_cast<double>(got) - want), bound) << n << "x" << dim;
          }
        }
      }
    }
  }
}

TEST(ServeDotHead, ARowIsBitIdenticalInAnyBatch) {
  const int32_t n = 531, dim = 100, count = 23;
  const RandomHead rh = random_head(n, dim, 3);
  for (serve::HeadPrecision prec : kAll) {
    serve::PackedDotHead h(rh.head(dim, true), n, prec);
    const std::vector<float> q = random_queries(count, dim, 9);
    std::vector<std::vector<float>> alone;
    for (int r = 0; r < count; ++r) alone.push_back(score_batch(h, q, {r})[0]);
    std::mt19937 g(1);
    for (int trial = 0; trial < 40; ++trial) {
      const int size = 1 + static_cast<int>(g() % count);
      std::vector<int> which(count);
      for (int r = 0; r < count; ++r) which[r] = r;
      std::shuffle(which.begin(), which.end(), g);
      which.resize(static_cast<size_t>(size));
      const auto rows = score_batch(h, q, which);
      for (int r = 0; r < size; ++r)
        ASSERT_TRUE(bit_equal(rows[r], alone[which[r]])) << "batch of " << size << ", row " << r;
    }
    // The same query several times in one batch.
    const auto rows = score_batch(h, q, {4, 4, 4, 4, 4, 4, 4, 4, 4});
    for (const auto& row : rows) EXPECT_TRUE(bit_equal(row, alone[4]));
  }
}

TEST(ServeDotHead, Int8AndBf16TopKAreTheExactTopKWithFiltersTiesAndNearTies) {
  const int32_t n = 700, dim = 40;
  RandomHead rh = random_head(n, dim, 21);
  // Near-ties: items 100..199 are item 50 plus noise far below the int8 and bf16
  // resolutions, so
  // their first-pass scores are indistinguishable and all of them must be rescored; exact
  // ties: items 300..309 are copies of item 300 (the same score: ordered by index).
  std::mt19937 g(4);
  std::normal_distribution<float> tiny(0.0f, 1e-5f);
  for (int32_t i = 100; i < 200; ++i)
    for (int32_t k = 0; k < dim; ++k)
      rh.items[static_cast<size_t>(i) * dim + k] = rh.items[50u * dim + k] + tiny(g);
  for (int32_t i = 301; i < 310; ++i) {
    for (int32_t k = 0; k < dim; ++k)
      rh.items[static_cast<size_t>(i) * dim + k] = rh.items[300u * dim + k];
    rh.bias[static_cast<size_t>(i)] = rh.bias[300];
  }
  serve::PackedDotHead h8(rh.head(dim, true), n, serve::HeadPrecision::Int8);
  serve::PackedDotHead hb(rh.head(dim, true), n, serve::HeadPrecision::Bf16);
  serve::PackedDotHead h32(rh.head(dim, true), n, serve::HeadPrecision::Fp32);
  std::vector<float> q = random_queries(40, dim, 77);
  // Queries aimed at the tie groups, so that they are at the top.
  for (int32_t k = 0; k < dim; ++k) {
    q[static_cast<size_t>(k)] = rh.items[50u * dim + k];
    q[static_cast<size_t>(dim + k)] = rh.items[300u * dim + k];
  }
  const std::vector<int32_t> excluded{3, 50, 120, 301, 699};
  const std::vector<int32_t> forbidden{0, 101, 300};
  std::vector<int32_t> allowed;
  for (int32_t i = 0; i < n; i += 3) allowed.push_back(i);
  int64_t rescored_total[2] = {0, 0};  // int8, bf16
  for (int r = 0; r < 40; ++r) {
    const float* qr = q.data() + static_cast<size_t>(r) * dim;
    for (int32_t k : {1, 5, 20, 150, n, n + 5}) {
      for (int f = 0; f < 4; ++f) {
        serve::TopKFilter filter;
        if (f >= 1) filter.excluded = excluded;
        if (f >= 2) filter.forbidden = forbidden;
        if (f == 3) {
          filter.has_allowed = true;
          filter.allowed = allowed;
        }
        std::vector<float> exact_row(static_cast<size_t>(n));
        for (int32_t i = 0; i < n; ++i)
          exact_row[static_cast<size_t>(i)] = reference(rh, true, dim, qr, i);
        const auto want = serve::select_top_k(exact_row.data(), n, k, filter);
        for (const serve::PackedDotHead* h : {&h8, &hb, &h32}) {
          std::vector<std::pair<int32_t, float>> got;
          int64_t rescored = 0;
          if (filter.has_allowed) {
            got = h->top_k_among(qr, filter.allowed, k, filter);
          } else {
            std::vector<std::pair<int32_t, float>> cand;
            serve::HeadQuery hq{
                qr, static_cast<int32_t>(k + filter.excluded.size() + filter.forbidden.size()),
                2.0 * h->error_bound(qr), &cand};
            const serve::HeadQuery* hp = &hq;
            h->select(1, &hp);
            // The candidates are every item within the window of the keep-th best.
            std::vector<float> row(static_cast<size_t>(n));
            float* op = row.data();
            h->score(1, &qr, &op);
            std::vector<float> sorted = row;
            std::sort(sorted.begin(), sorted.end(), std::greater<float>());
            const double cut =
                hq.keep >= n ? -1e30 : sorted[static_cast<size_t>(hq.keep - 1)] - hq.window;
            std::vector<int32_t> in_window, in_cand;
            for (int32_t i = 0; i < n; ++i)
              if (row[static_cast<size_t>(i)] >= cut) in_window.push_back(i);
            for (const auto& c : cand) {
              in_cand.push_back(c.first);
              ASSERT_EQ(c.second, row[static_cast<size_t>(c.first)]);
            }
            std::sort(in_cand.begin(), in_cand.end());
            ASSERT_TRUE(
                std::includes(in_cand.begin(), in_cand.end(), in_window.begin(), in_window.end()));
            got = h->top_k(qr, cand, hq.window, k, filter, &rescored);
          }
          ASSERT_EQ(got, want) << serve::head_precision_name(h->precision()) << " query " << r
                               << " k " << k << " filter " << f;
          if (h != &h32 && !filter.has_allowed) {
            ASSERT_GE(rescored, static_cast<int64_t>(std::min<size_t>(want.size(), k)));
            rescored_total[h == &hb ? 1 : 0] += rescored;
          } else {
            ASSERT_EQ(rescored, 0);
          }
        }
      }
    }
  }
  EXPECT_GT(rescored_total[0], 0);
  EXPECT_GT(rescored_total[1], 0);
  // The bf16 bound is the tighter: fewer items rescored.
  EXPECT_LT(rescored_total[1], rescored_total[0]);
  // A query that is not finite: every eligible item is rescored, nothing breaks.
  for (const serve::PackedDotHead* h : {&h8, &hb}) {
    std::vector<float> bad(static_cast<size_t>(dim), 1.0f);
    bad[3] = std::numeric_limits<float>::infinity();
    EXPECT_TRUE(std::isinf(h->error_bound(bad.data())));
    std::vector<std::pair<int32_t, float>> cand;
    serve::HeadQuery hq{bad.data(), 20, 2.0 * h->error_bound(bad.data()), &cand};
    const serve::HeadQuery* hp = &hq;
    h->select(1, &hp);
    int64_t rescored = 0;
    h->top_k(bad.data(), cand, hq.window, 20, {}, &rescored);
    EXPECT_LE(rescored, n);
  }
}

TEST(ServeDotHead, Bf16HandlesExtremeWeightsAndQueries) {
  // Weights near the float range's ends: a finite weight never becomes infinite (it is
  // truncated instead of rounded up), denormal ones are flushed, and the exact top-K holds.
  const int32_t n = 90, dim = 9;
  RandomHead rh = random_head(n, dim, 12);
  for (int32_t k = 0; k < dim; ++k) {
    rh.items[static_cast<size_t>(5 * dim + k)] = std::numeric_limits<float>::max() / 1e3f;
    rh.items[static_cast<size_t>(6 * dim + k)] = std::numeric_limits<float>::denorm_min() * 7;
  }
  rh.items[static_cast<size_t>(7 * dim)] = std::numeric_limits<float>::max();
  serve::PackedDotHead hb(rh.head(dim, true), n, serve::HeadPrecision::Bf16);
  std::vector<float> q = random_queries(3, dim, 2);
  q[1] = 1e-38f;  // below bf16's normal range: flushed
  for (int r = 0; r < 3; ++r) {
    const float* qr = q.data() + static_cast<size_t>(r) * dim;
    const double bound = hb.error_bound(qr);
    ASSERT_TRUE(std::isfinite(bound));
    std::vector<float> row(static_cast<size_t>(n)), exact_row(static_cast<size_t>(n));
    float* op = row.data();
    hb.score(1, &qr, &op);
    for (int32_t i = 0; i < n; ++i) {
      exact_row[static_cast<size_t>(i)] = reference(rh, true, dim, qr, i);
      if (std::isfinite(exact_row[static_cast<size_t>(i)]))
        ASSERT_LE(std::fabs(static_cast<double>(row[static_cast<size_t>(i)]) -
                            exact_row[static_cast<size_t>(i)]),
                  bound)
            << "item " << i;
    }
  }
  // A non-finite weight is refused, naming the item.
  rh.items[static_cast<size_t>(8 * dim + 2)] = std::nanf("");
  try {
    serve::PackedDotHead bad(rh.head(dim, true), n, serve::HeadPrecision::Bf16);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("item 8"), std::string::npos) << e.what();
  }
}

TEST(ServeDotHead, MemoryPerItemOfEachStorage) {
  const int32_t n = 32, dim = 100;  // two whole blocks
  const RandomHead rh = random_head(n, dim, 2);
  EXPECT_EQ(serve::PackedDotHead(rh.head(dim, true), n, serve::HeadPrecision::Fp32).bytes(),
            n * (4 * dim + 4));
  EXPECT_EQ(serve::PackedDotHead(rh.head(dim, true), n, serve::HeadPrecision::Int8).bytes(),
            n * (dim + 12));
  EXPECT_EQ(serve::PackedDotHead(rh.head(dim, true), n, serve::HeadPrecision::Bf16).bytes(),
            n * (2 * dim + 4));
}

TEST(ServeDotHead, RejectsAMissingHead) {
  EXPECT_THROW(serve::PackedDotHead(DotProductHead{}, 10, serve::HeadPrecision::Int8), InputError);
  const RandomHead rh = random_head(4, 2, 1);
  EXPECT_THROW(serve::PackedDotHead(rh.head(2, true), 0, serve::HeadPrecision::Fp32), InputError);
  EXPECT_EQ(serve::parse_head_precision("int8"), serve::HeadPrecision::Int8);
  EXPECT_EQ(serve::parse_head_precision("fp32"), serve::HeadPrecision::Fp32);
  EXPECT_EQ(serve::parse_head_precision("bf16"), serve::HeadPrecision::Bf16);
  for (auto p : kAll) EXPECT_EQ(serve::parse_head_precision(serve::head_precision_name(p)), p);
  try {
    serve::parse_head_precision("fp16");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    for (const char* name : {"fp32", "int8", "bf16", "fp16"})
      EXPECT_NE(m.find(name), std::string::npos) << m;
  }
}

struct TestJob {
  float q[2];
  float out[2];
};

TEST(ServeBatcher, ConcurrentQueriesGetTheirOwnRowsAndShareBatches) {
  const int32_t max_batch = 5;
  std::atomic<int32_t> biggest{0}, running{0}, most_running{0};
  serve::ScoreBatcher b(
      [&](int32_t n, void* const* jobs) {
        ASSERT_GE(n, 1);
        ASSERT_LE(n, max_batch);
        int32_t seen = biggest.load();
        while (n > seen && !biggest.compare_exchange_weak(seen, n)) {
        }
        const int32_t now = ++running;
        int32_t m = most_running.load();
        while (now > m && !most_running.compare_exchange_weak(m, now)) {
        }
        std::this_thread::sleep_for(std::chrono::microseconds(300));  // a slow pass
        for (int32_t r = 0; r < n; ++r) {
          auto* j = static_cast<TestJob*>(jobs[r]);
          j->out[0] = j->q[0] * 2.0f;
          j->out[1] = j->q[1] + 1.0f;
        }
        --running;
      },
      max_batch, 1);
  const int threads = 12, per_thread = 60;
  std::atomic<int> wrong{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        TestJob j{{static_cast<float>(t * 1000 + i), static_cast<float>(-i)}, {0.0f, 0.0f}};
        b.run(&j);
        if (j.out[0] != j.q[0] * 2.0f || j.out[1] != j.q[1] + 1.0f) ++wrong;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(b.queries(), threads * per_thread);
  EXPECT_LT(b.batches(), b.queries()) << "no batch of more than one query formed";
  EXPECT_EQ(biggest.load(), max_batch);
  EXPECT_EQ(most_running.load(), 1) << "one lane: one pass at a time";
}

TEST(ServeBatcher, LanesRunPassesSideBySide) {
  std::atomic<int32_t> running{0}, most_running{0};
  serve::ScoreBatcher b(
      [&](int32_t n, void* const* jobs) {
        const int32_t now = ++running;
        int32_t m = most_running.load();
        while (now > m && !most_running.compare_exchange_weak(m, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        for (int32_t r = 0; r < n; ++r) static_cast<TestJob*>(jobs[r])->out[0] = 1.0f;
        --running;
      },
      1, 3);
  std::vector<std::thread> ts;
  for (int t = 0; t < 8; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        TestJob j{};
        b.run(&j);
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(b.batches(), 80);  // max_batch 1: every query alone
  EXPECT_LE(most_running.load(), 3);
  EXPECT_GE(most_running.load(), 2);
}

TEST(ServeBatcher, AnErrorReachesTheRequestsOfItsBatchAndTheBatcherGoesOn) {
  std::atomic<bool> fail{true};
  serve::ScoreBatcher b(
      [&](int32_t n, void* const* jobs) {
        if (fail) throw Error("scoring failed");
        for (int32_t r = 0; r < n; ++r) {
          auto* j = static_cast<TestJob*>(jobs[r]);
          j->out[0] = j->q[0];
        }
      },
      8, 1);
  TestJob j{{3.0f, 0.0f}, {0.0f, 0.0f}};
  EXPECT_THROW(b.run(&j), Error);
  fail = false;
  b.run(&j);
  EXPECT_EQ(j.out[0], 3.0f);
  EXPECT_THROW(serve::ScoreBatcher(nullptr, 1, 1), InputError);
  EXPECT_THROW(serve::ScoreBatcher([](int32_t, void* const*) {}, 0, 1), InputError);
  EXPECT_THROW(serve::ScoreBatcher([](int32_t, void* const*) {}, 1, 0), InputError);
}

// ---------------------------------------------------------------------------------------
// The Recommender with real neural models.

namespace {

struct Sessions {
  SequenceSet train, test;
  int32_t n_items = 0;
};

Sessions generated(int32_t items, uint64_t seed) {
  GenerateOptions o;
  o.n_events = 30000;
  o.n_items = items;
  o.mean_length = 6.0;
  o.seed = seed;
  EventLog log = generate_sessions(o);
  Sessions s;
  s.n_items = log.items.size();
  for (size_t i = 0; i < log.seqs.size(); ++i) {
    auto seq = log.seqs.seq(i);
    if (seq.size() < 2) continue;
    (i % 10 == 0 ? s.test : s.train).push("s" + std::to_string(i), seq);
  }
  return s;
}

FitContext quiet_fit() {
  FitContext ctx;
  ctx.progress = false;
  ctx.threads = 1;
  ctx.seed = 5;
  return ctx;
}

ModelBundle bundle_of(std::unique_ptr<Model> m) {
  ModelBundle b;
  const int32_t n = m->n_items();
  b.model = std::move(m);
  for (int32_t i = 0; i < n; ++i) b.items.add("i" + std::to_string(i));
  b.meta = {{"protocol", "session"}};
  return b;
}

ModelBundle small_gru4rec(const Sessions& s) {
  Config c = default_config("gru4rec");
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{
           {"layers", "40"}, {"batch_size", "16"}, {"n_sample", "32"}, {"n_epochs", "1"}})
    c.set(k, v);
  auto m = std::make_unique<Gru4recModel>(c);
  m->fit(s.train, s.n_items, quiet_fit());
  return bundle_of(std::move(m));
}

ModelBundle small_sasrec(const Sessions& s) {
  Config c = default_config("sasrec");
  for (auto [k, v] : std::vector<std::pair<const char*, const char*>>{
           {"hidden_units", "24"}, {"maxlen", "6"}, {"num_epochs", "1"}, {"batch_size", "32"}})
    c.set(k, v);
  auto m = std::make_unique<SasrecModel>(c);
  m->fit(s.train, s.n_items, quiet_fit());
  return bundle_of(std::move(m));
}

using Served = std::vector<std::vector<Recommendation>>;  // [session][event]

/// Replays every test session event by event (one request per event, K = 25), sessions
/// spread over `threads` threads.
Served replay(Recommender& rec, const SequenceSet& test, int threads) {
  Served out(test.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t s; (s = next++) < test.size();) {
      const auto seq = test.seq(s);
      for (int32_t item : seq) {
        SessionRequest req;
        req.session_id = test.ids[s];
        req.events.push_back({"i" + std::to_string(item), std::nullopt});
        req.options.k = 25;
        out[s].push_back(rec.add_events(req));
      }
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) ts.emplace_back(work);
  for (auto& t : ts) t.join();
  return out;
}

void expect_same(const Served& a, const Served& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t s = 0; s < a.size(); ++s) {
    ASSERT_EQ(a[s].size(), b[s].size());
    for (size_t e = 0; e < a[s].size(); ++e) {
      const auto &x = a[s][e].items, &y = b[s][e].items;
      ASSERT_EQ(x.size(), y.size());
      for (size_t r = 0; r < x.size(); ++r) {
        ASSERT_EQ(x[r].item, y[r].item) << "session " << s << " event " << e << " rank " << r;
        ASSERT_EQ(std::memcmp(&x[r].score, &y[r].score, sizeof(float)), 0);
      }
    }
  }
}

/// A second bundle with the same weights (a model file's round trip, in memory).
ModelBundle copy_of(const ModelBundle& b) {
  TensorWriter w;
  b.model->save(w);
  TensorReader r(w.entries(), "memory");
  ModelBundle c;
  c.model = create_model(b.model->type(), b.model->config());
  c.model->load(r);
  c.items = b.items;
  c.meta = b.meta;
  return c;
}

void check_batching(ModelBundle (*train)(const Sessions&), bool incremental) {
  // Enough items that a pass takes a while and concurrent requests share passes.
  const Sessions s = generated(20000, 17);
  const ModelBundle trained = train(s);
  auto make = [&](const Sessions&) { return copy_of(trained); };
  RecommenderOptions one;
  one.sweep_interval_seconds = 0;
  one.max_batch = 1;
  Recommender alone(make(s), one);
  ASSERT_EQ(alone.model_info().incremental, incremental);
  ASSERT_EQ(alone.model_info().scoring["head_storage"], "int8");
  const Served want = replay(alone, s.test, 1);
  EXPECT_EQ(alone.stats().scoring_batches, alone.stats().scoring_batched_requests);
  EXPECT_GT(alone.stats().scoring_batches, 0);
  EXPECT_GE(alone.stats().scoring_rescored_items, alone.stats().scoring_batches);

  // Float storage: every score exact in the pass, the same results.
  {
    RecommenderOptions o = one;
    o.head_storage = RecommenderOptions::HeadStorage::Fp32;
    Recommender f32(make(s), o);
    ASSERT_EQ(f32.model_info().scoring["head_storage"], "fp32");
    expect_same(want, replay(f32, s.test, 1));
    EXPECT_EQ(f32.stats().scoring_rescored_items, 0);
  }
  // Bf16 storage: the same results, fewer items rescored than with int8.
  {
    RecommenderOptions o = one;
    o.head_storage = RecommenderOptions::HeadStorage::Bf16;
    Recommender bf(make(s), o);
    ASSERT_EQ(bf.model_info().scoring["head_storage"], "bf16");
    expect_same(want, replay(bf, s.test, 1));
    EXPECT_GE(bf.stats().scoring_rescored_items, bf.stats().scoring_batches);
    EXPECT_LT(bf.stats().scoring_rescored_items, alone.stats().scoring_rescored_items);
  }

  // The served scores are the model's own (up to rounding: another summation order).
  {
    ModelBundle b = make(s);
    const Model& m = *b.model;
    const int32_t I = m.n_items();
    std::vector<float> full(static_cast<size_t>(I));
    for (size_t q = 0; q < 30 && q < s.test.size(); ++q) {
      const auto seq = s.test.seq(q);
      std::vector<std::span<const int32_t>> seqs{seq};
      const PrefixQuery pq{0, static_cast<int32_t>(seq.size())};
      m.score(seqs, std::span<const PrefixQuery>(&pq, 1), full.data());
      for (const ScoredItem& it : want[q].back().items) {
        const float e = full[static_cast<size_t>(std::stoi(it.item.substr(1)))];
        ASSERT_NEAR(it.score, e, 1e-4f * (1.0f + std::fabs(e)));
      }
    }
  }

  // Concurrently, in batches of up to 32 (one or two lanes): bit-identical
  // recommendations. Whether requests meet in a batch depends on the scheduler: replay
  // until some did (almost always at once).
  for (int32_t lanes : {1, 2}) {
    bool shared = false;
    for (int attempt = 0; attempt < 10 && !shared; ++attempt) {
      RecommenderOptions many;
      many.sweep_interval_seconds = 0;
      many.max_batch = 32;
      many.batch_lanes = lanes;
      Recommender batched(make(s), many);
      const Served got = replay(batched, s.test, 8);
      expect_same(want, got);
      const RecommenderStats st = batched.stats();
      int64_t events = 0;
      for (const auto& v : got) events += static_cast<int64_t>(v.size());
      EXPECT_EQ(st.scoring_batched_requests, events);
      EXPECT_LE(st.scoring_batches, events);
      shared = st.scoring_batches < events;
    }
    EXPECT_TRUE(shared) << "no two requests were ever scored in one batch";
  }

  // The stateless endpoint gives the same as the session after the same events.
  for (size_t q = 0; q < 20 && q < s.test.size(); ++q) {
    ItemsRequest req;
    for (int32_t item : s.test.seq(q)) req.items.push_back("i" + std::to_string(item));
    req.options.k = 25;
    const Recommendation r = alone.recommend(req);
    const auto& w = want[q].back().items;
    ASSERT_EQ(r.items.size(), w.size());
    for (size_t i = 0; i < w.size(); ++i) {
      ASSERT_EQ(r.items[i].item, w[i].item);
      ASSERT_EQ(r.items[i].score, w[i].score);
    }
  }
}

}  // namespace

TEST(ServeBatchedModels, Gru4recConcurrentRequestsEqualSequentialOnes) {
  check_batching(small_gru4rec, true);
}

TEST(ServeBatchedModels, SasrecConcurrentRequestsEqualSequentialOnes) {
  check_batching(small_sasrec, false);
}

TEST(ServeBatchedModels, FiltersAndExclusionOnAHeadModelMatchAFullRanking) {
  const Sessions s = generated(3000, 23);
  const ModelBundle trained = small_gru4rec(s);
  const Model& m = *trained.model;
  const DotProductHead head = m.dot_product_head();
  const int32_t n = m.n_items(), dim = head.dim;
  for (auto storage : {RecommenderOptions::HeadStorage::Int8, RecommenderOptions::HeadStorage::Bf16,
                       RecommenderOptions::HeadStorage::Fp32}) {
    RecommenderOptions o;
    o.sweep_interval_seconds = 0;
    o.head_storage = storage;
    Recommender rec(copy_of(trained), o);
    std::mt19937 g(8);
    for (size_t t = 0; t < 40 && t < s.test.size(); ++t) {
      const auto seq = s.test.seq(t);
      ItemsRequest req;
      for (int32_t i : seq) req.items.push_back("i" + std::to_string(i));
      req.options.k = 1 + static_cast<int32_t>(g() % 40);
      req.options.exclude_seen = t % 2 == 0;
      std::vector<int32_t> forbidden, allowed;
      for (int j = 0; j < 30; ++j) forbidden.push_back(static_cast<int32_t>(g() % n));
      if (t % 3 == 0)
        for (int j = 0; j < 200; ++j) allowed.push_back(static_cast<int32_t>(g() % n));
      for (int32_t i : forbidden) req.options.forbidden_items.push_back("i" + std::to_string(i));
      if (!allowed.empty()) {
        req.options.allowed_items.emplace();
        for (int32_t i : allowed) req.options.allowed_items->push_back("i" + std::to_string(i));
      }
      const Recommendation r = rec.recommend(req);
      // The reference: the exact scores of every item, then select_top_k with the filter.
      std::vector<float> q(static_cast<size_t>(dim)), row(static_cast<size_t>(n));
      std::vector<std::span<const int32_t>> seqs{seq};
      const PrefixQuery pq{0, static_cast<int32_t>(seq.size())};
      m.query_vectors(seqs, std::span<const PrefixQuery>(&pq, 1), q.data());
      for (int32_t i = 0; i < n; ++i) {
        float acc = 0.0f;
        for (int32_t k = 0; k < dim; ++k)
          acc = std::fma(q[static_cast<size_t>(k)], head.items[static_cast<size_t>(i) * dim + k],
                         acc);
        row[static_cast<size_t>(i)] = acc + head.bias[i];
      }
      auto sorted_unique = [](std::vector<int32_t> v) {
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        return v;
      };
      const std::vector<int32_t> fs = sorted_unique(forbidden), as = sorted_unique(allowed);
      serve::TopKFilter f;
      if (*req.options.exclude_seen) f.excluded = seq;
      f.forbidden = fs;
      f.has_allowed = !allowed.empty();
      f.allowed = as;
      f.drop_neg_inf = *req.options.exclude_seen;
      const auto want = serve::select_top_k(row.data(), n, *req.options.k, f);
      ASSERT_EQ(r.items.size(), want.size()) << "request " << t;
      for (size_t j = 0; j < want.size(); ++j) {
        ASSERT_EQ(r.items[j].item, "i" + std::to_string(want[j].first)) << "request " << t;
        ASSERT_EQ(r.items[j].score, want[j].second);
      }
    }
  }
}

// The real rsc15-100k split (skipped without ../shared/data): GRU4Rec with the rsc15 preset
// (100 units), every test prefix replayed. The int8 and bf16 passes must give exactly the fp32
// pass's top 20; against the model's own score() (batched GEMMs, another summation order) the lists
// may only differ at near-ties: the fraction identical is printed.
TEST(ServeBatchedModels, Rsc15Int8AndBf16EqualFp32AndAlmostAlwaysTheModelsOwnRanking) {
  const std::string dir = std::string(SEQREC_SHARED_DATA_DIR) + "/rsc15-100k/";
  if (!std::filesystem::exists(dir + "yoochoose-clicks-100k_train_full.txt"))
    GTEST_SKIP() << "shared data not found: " << dir;
  const EventLog train = read_events(dir + "yoochoose-clicks-100k_train_full.txt");
  const SequenceSet test =
      remap(read_events(dir + "yoochoose-clicks-100k_test.txt"), train.items, nullptr);
  Config c = default_config("gru4rec");
  for (const Preset& pr : find_model("gru4rec").presets)
    if (pr.name == "rsc15")
      for (const auto& [k, v] : pr.values) c.set(k, v);
  c.set("n_epochs", "1");
  auto model = std::make_unique<Gru4recModel>(c);
  model->fit(train.seqs, train.items.size(), quiet_fit());
  ModelBundle trained;
  trained.model = std::move(model);
  trained.items = train.items;
  trained.meta = {{"protocol", "session"}};
  const Model& m = *trained.model;
  const int32_t n = m.n_items();
  ASSERT_EQ(m.dot_product_head().dim, 100);

  const RecommenderOptions::HeadStorage storages[] = {RecommenderOptions::HeadStorage::Int8,
                                                      RecommenderOptions::HeadStorage::Fp32,
                                                      RecommenderOptions::HeadStorage::Bf16};
  std::vector<std::vector<std::vector<std::string>>> lists(3);  // [storage][prediction]
  for (int st = 0; st < 3; ++st) {
    RecommenderOptions o;
    o.sweep_interval_seconds = 0;
    o.head_storage = storages[st];
    Recommender rec(copy_of(trained), o);
    for (size_t s = 0; s < test.size(); ++s) {
      const auto seq = test.seq(s);
      for (size_t t = 0; t + 1 < seq.size(); ++t) {
        SessionRequest req;
        req.session_id = test.ids[s];
        req.events.push_back({trained.items.token(seq[t]), std::nullopt});
        req.options.k = 20;
        std::vector<std::string> ids;
        for (const auto& it : rec.add_events(req).items) ids.push_back(it.item);
        lists[st].push_back(std::move(ids));
      }
      rec.drop_session(test.ids[s]);
    }
  }
  ASSERT_EQ(lists[0].size(), lists[1].size());
  ASSERT_EQ(lists[2].size(), lists[1].size());
  for (size_t i = 0; i < lists[0].size(); ++i) {
    ASSERT_EQ(lists[0][i], lists[1][i]) << i;
    ASSERT_EQ(lists[2][i], lists[1][i]) << "bf16, prediction " << i;
  }

  // The model's own ranking of every prefix.
  size_t same = 0, total = 0;
  std::vector<float> row;
  for (size_t s = 0; s < test.size(); ++s) {
    const auto seq = test.seq(s);
    std::vector<std::span<const int32_t>> seqs{seq};
    std::vector<PrefixQuery> qs;
    for (int32_t len = 1; len < static_cast<int32_t>(seq.size()); ++len) qs.push_back({0, len});
    row.resize(qs.size() * static_cast<size_t>(n));
    m.score(seqs, qs, row.data());
    for (size_t q = 0; q < qs.size(); ++q) {
      const auto top = serve::select_top_k(row.data() + q * n, n, 20, {});
      std::vector<std::string> ids;
      for (const auto& [i, sc] : top) ids.push_back(trained.items.token(i));
      same += ids == lists[0][total] ? 1 : 0;
      ++total;
    }
  }
  ASSERT_EQ(total, lists[0].size());
  std::printf(
      "[ rsc15-100k ] %zu test predictions: int8 = bf16 = fp32 top-20 in all; equal to the "
      "model's own score() top-20 in %zu (%.4f%%)\n",
      total, same, 100.0 * static_cast<double>(same) / static_cast<double>(total));
  EXPECT_GE(static_cast<double>(same), 0.99 * static_cast<double>(total));
}

TEST(ServeBatchedModels, ReloadsWhileBatchedRequestsRun) {
  const Sessions s = generated(5000, 29);
  const ModelBundle trained = small_gru4rec(s);
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  o.batch_lanes = 2;
  Recommender rec(copy_of(trained), o);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> answered{0}, failed{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; ++t)
    ts.emplace_back([&, t] {
      for (size_t q = static_cast<size_t>(t); !stop; q = (q + 6) % s.test.size()) {
        SessionRequest req;
        req.session_id = "t" + std::to_string(t) + "-" + std::to_string(q % 50);
        req.events.push_back({"i" + std::to_string(s.test.seq(q)[0]), std::nullopt});
        req.options.k = 10;
        try {
          const Recommendation r = rec.add_events(req);
          if (r.items.size() == 10)
            ++answered;
          else
            ++failed;
        } catch (...) {
          ++failed;
        }
      }
    });
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    const ReloadResult r = rec.replace_model(copy_of(trained));
    EXPECT_FALSE(r.catalogue_changed);
  }
  stop = true;
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(answered.load(), 0);
  EXPECT_EQ(rec.stats().model_generation, 6u);
}

TEST(ServeBatchedModels, BadBatchOptionsAreRejected) {
  const Sessions s = generated(60, 3);
  RecommenderOptions o;
  o.max_batch = 0;
  EXPECT_THROW(Recommender(small_gru4rec(s), o), InputError);
  o.max_batch = 4;
  o.batch_lanes = 0;
  EXPECT_THROW(Recommender(small_gru4rec(s), o), InputError);
}

// Without the head (RecommenderOptions::dot_product_head = false, what `seqrec recommend`
// uses) a GRU4Rec list is the model's own full ranking: Model::score's scores bit for bit,
// best first, equal scores by item index, the session's items dropped when excluding.
TEST(ServeBatchedModels, WithoutTheHeadListsAreModelScoresBitForBit) {
  const Sessions s = generated(3000, 23);
  const ModelBundle trained = small_gru4rec(s);
  const Model& m = *trained.model;
  const int32_t n = m.n_items();
  RecommenderOptions o;
  o.sweep_interval_seconds = 0;
  o.dot_product_head = false;
  o.max_k = o.default_k = 25;
  const Recommender rec(copy_of(trained), o);
  EXPECT_EQ(rec.model_info().scoring["path"], "model");
  std::vector<float> row(static_cast<size_t>(n));
  for (size_t t = 0; t < 30 && t < s.test.size(); ++t) {
    const auto seq = s.test.seq(t);
    std::span<const int32_t> seqs[1] = {seq};
    const PrefixQuery q{0, static_cast<int32_t>(seq.size())};
    m.score(seqs, std::span<const PrefixQuery>(&q, 1), row.data());
    for (bool exclude : {false, true}) {
      ItemsRequest req;
      for (int32_t i : seq) req.items.push_back("i" + std::to_string(i));
      req.options.exclude_seen = exclude;
      const Recommendation r = rec.recommend(req);
      std::vector<int32_t> order;
      for (int32_t i = 0; i < n; ++i)
        if (!exclude || std::find(seq.begin(), seq.end(), i) == seq.end()) order.push_back(i);
      std::stable_sort(order.begin(), order.end(),
                       [&](int32_t a, int32_t b) { return row[a] > row[b]; });
      ASSERT_EQ(r.items.size(), 25u);
      for (size_t j = 0; j < r.items.size(); ++j) {
        EXPECT_EQ(r.items[j].item, "i" + std::to_string(order[j])) << t << " " << j;
        EXPECT_EQ(r.items[j].score, row[static_cast<size_t>(order[j])]) << t << " " << j;
      }
    }
  }
}
