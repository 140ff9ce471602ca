// IndexedAdagradM, the optimiser of the official GRU4Rec (spec §7): Adagrad with
// heavy-ball momentum on the Adagrad step, dense for the GRU weights and per touched row
// for the item tables (Wy, By, Emb, Wx0). eps = 1e-6 inside the root.
//   A <- A + g^2;  D = sqrt(A + eps)
//   mu > 0:  V <- mu V - lr g / D;  W <- W + V
//   mu = 0:  W <- W - lr g / D
#pragma once

#include <cstdint>
#include <span>

#include "core/isa.hpp"

namespace seqrec::train {

constexpr float kAdagradEps = 1e-6f;

/// One step on `count` contiguous parameters. `vel` may be null when mu == 0.
SEQREC_DISPATCH(void, adagrad_step,
                (float* w, float* acc, float* vel, const float* g, int64_t count, float lr,
                 float mu));

/// The same over `count` parameters split across threads (parallel_for).
SEQREC_DISPATCH(void, adagrad_step_parallel,
                (float* w, float* acc, float* vel, const float* g, int64_t count, float lr,
                 float mu));

/// Sparse rows: for each r < rows.size(), row rows[r] of the dim-wide tables w/acc/vel is
/// updated with gradient row g + r * ldg (gradients of duplicate occurrences must already
/// be summed: every index appears once in `rows`). Rows not listed are untouched (lazy
/// momentum). Parallel over rows.
SEQREC_DISPATCH(void, adagrad_rows,
                (float* w, float* acc, float* vel, int64_t dim, std::span<const int32_t> rows,
                 const float* g, int64_t ldg, float lr, float mu));

/// Sparse rows picked by position, on the calling thread (for use inside a parallel region):
/// for each i < count, with u = which[i], row rows[u] of the tables gets gradient row
/// g + u * ldg. The same rule and the same prefetching as adagrad_rows.
SEQREC_DISPATCH(void, adagrad_rows_at,
                (float* w, float* acc, float* vel, int64_t dim, const int32_t* rows,
                 const int32_t* which, int64_t count, const float* g, int64_t ldg, float lr,
                 float mu));

}  // namespace seqrec::train
