// The SASRec network (Kang & McAuley 2018) on packed sequences: forward, hand-written
// backward, parameter layout and initialisation. The training loop, the losses' batch
// logic and the Model plumbing live in sasrec.cpp; the kernels in src/kernels/.
//
// Sequences are packed: only real (non-padding) positions are stored, sequence s owning
// tokens [off[s], off[s+1]). Because padding is masked everywhere (as keys in attention,
// in the loss, and re-zeroed after every block in the original), a left-padded sequence
// and its packed form give identical outputs at the real positions; packing simply skips
// the work on padding. Positions stay absolute slot indices: the newest item of a
// sequence always has position row maxlen-1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/sasrec_ops.hpp"

namespace seqrec::sasrec {

struct NetConfig {
  int64_t d = 50;                ///< hidden_units
  int64_t maxlen = 200;          ///< positions
  int64_t n_items = 0;           ///< catalogue size (rows of the item tables)
  int64_t blocks = 2;            ///< Transformer blocks
  int64_t heads = 1;             ///< attention heads (d % heads == 0)
  float dropout = 0.2f;          ///< dropout rate of embeddings, attention weights and FFN
  bool norm_first = false;       ///< Pre-LN blocks instead of the original layout
  bool gelu = false;             ///< GELU instead of ReLU in the FFN
  bool shared_embedding = true;  ///< output scores use the input item table
  /// Initialisation: 0 = Xavier normal on every matrix (the original code, pmixer's port);
  /// > 0 = N(0, init_std) on the embeddings, the attention output projection and the
  /// feed-forward weights with Xavier-uniform attention in-projections and zero biases
  /// (the scheme of Klenitskiy & Vasilev's SASRec+, RecBole and GPT-2).
  float init_std = 0.0f;
  /// Precision of the training GEMMs (projections, feed-forward, attention; Fp32 or Bf16):
  /// forward(train = true) and backward() use it, inference is always fp32.
  Precision precision = Precision::Fp32;
  /// Feature-aware SASRec (models/feature_embedding.hpp): the size of the feature-token
  /// table feat_emb (n_features x d), 0 = an id-only model. The network itself reads only
  /// the item tables; the model fills them with id + feature embedding before each use.
  int64_t n_features = 0;
};

/// Offsets (in floats) of every tensor inside the flat parameter vector.
struct BlockLayout {
  int64_t ln_a_g, ln_a_b, wq, bq, wk, bk, wv, bv, wo, bo, ln_f_g, ln_f_b, w1, b1, w2, b2;
};
struct Layout {
  int64_t item_emb = 0, out_emb = 0, pos_emb = 0;  ///< out_emb == item_emb when shared
  std::vector<BlockLayout> blocks;
  int64_t ln_last_g = 0, ln_last_b = 0;
  int64_t feat_emb = -1;  ///< the feature-token table (last), -1 without features
  int64_t total = 0;
};
Layout make_layout(const NetConfig& c);

/// One named tensor of the layout (for save/load and initialisation).
struct TensorSlot {
  std::string name;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  int64_t size() const {
    int64_t s = 1;
    for (int64_t x : shape) s *= x;
    return s;
  }
};
std::vector<TensorSlot> tensor_slots(const NetConfig& c, const Layout& l);

/// The reference initialisation (pmixer/SASRec.pytorch): Xavier-normal matrices and
/// tables, LN gamma 1 / beta 0, attention biases 0, FFN biases U(-1/sqrt(d), 1/sqrt(d)).
/// The feature-token table (drawn last, so an id-only model's draws are unchanged) gets
/// the item table's distribution.
void init_params(const NetConfig& c, const Layout& l, float* w, uint64_t seed);

/// Packed sequences: sequence s has tokens [off[s], off[s+1]).
struct Chunk {
  int64_t nseq = 0;
  const int64_t* off = nullptr;      ///< nseq + 1 token offsets, off[0] == 0
  const int32_t* items = nullptr;    ///< input item of each token
  const int32_t* pos = nullptr;      ///< position row of each token, in [0, maxlen)
  const uint64_t* stream = nullptr;  ///< dropout stream id of each sequence (training)
  /// Inference only: an input item >= extra_base is embedded from row (item - extra_base)
  /// of extra_rows (d floats each) instead of the item table (items added at run time).
  const float* extra_rows = nullptr;
  int32_t extra_base = 0;
  int64_t tokens() const { return off[nseq]; }
};

/// Activations kept for the backward pass, one set per block.
struct BlockActs {
  std::vector<float> xq, xhat_a, rstd_a, q, k, v, o, h1, z, xhat_f, rstd_f, f1, r, h2;
  std::vector<uint8_t> m1, m2;
  std::vector<float> A, Ad;
  std::vector<int64_t> aoff;  ///< per sequence: offset of its probabilities in A / Ad
};

/// Per-thread buffers; grow to the largest chunk seen and are reused.
struct Workspace {
  std::vector<float> x0, h0;
  std::vector<uint8_t> m0;
  std::vector<BlockActs> blk;
  std::vector<float> F, xhat_l, rstd_l;
  std::vector<float> g1, g2, g3, g4, dq, dk, dv, att_scratch;
  std::vector<float> loss_scratch;
  std::vector<uint64_t> keys;  ///< dropout key of each sequence of the chunk
  std::vector<int32_t> items;  ///< input items with added ones remapped (Chunk::extra_rows)
  bool dropped = false;        ///< the last forward applied dropout
};

/// Forward over `ch`. With train = true dropout is applied, sequence s drawing its masks
/// from the counter-based key (seed, step, ch.stream[s]), and activations are kept for backward().
/// Returns F, the final layer-normed hidden states (tokens x d) inside ws. With last_only
/// (inference only) the last block is computed for the last position of each sequence alone and F
/// is nseq x d (one row per sequence); backward() is then unavailable.
const float* forward(const NetConfig& c, const Layout& l, const float* w, const Chunk& ch,
                     Workspace& ws, bool train, uint64_t seed, uint64_t step,
                     bool last_only = false);

/// Backward of the last forward() on the same chunk and workspace: dF (tokens x d, used as
/// scratch) is dL/dF; parameter gradients are added to `grad` (flat, same layout as w).
void backward(const NetConfig& c, const Layout& l, const float* w, const Chunk& ch, Workspace& ws,
              float* dF, float* grad);

}  // namespace seqrec::sasrec
