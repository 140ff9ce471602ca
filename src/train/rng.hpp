// Training draws from seqrec's one random stream (src/core/rng.hpp).
#pragma once

#include "core/rng.hpp"

namespace seqrec::train {
using seqrec::Rng;
using seqrec::splitmix64;
}  // namespace seqrec::train
