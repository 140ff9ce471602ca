// The network of the dssm model type (two towers, Huang et al. 2013 adapted to
// recommendation): its parameter layout, and hand-written forward and backward passes.
//
//   item tower:  h_1 = act(x W_1 + E[id] + b_1)      x = the item's sparse features,
//                h_k = act(h_{k-1} W_k + b_k)        E = optional id embedding
//                u   = h_K / |h_K|                   (unit item vector, D = width of h_K)
//   query tower: p_j = sum_{i<=j} d^{j-i} u_{s_i} / sum_{i<=j} d^{j-i}   (recency pooling)
//                g_1 = act(p W^q_1 + b^q_1), ..., q = g_M / |g_M|        (width D)
//   relevance:   gamma * q . u   (cosine times the smoothing factor)
//   loss:        softmax cross-entropy over the candidates (positive, in-batch targets,
//                sampled negatives), logits gamma q.u_c - logq_c
//
// Every backward kernel states its math above it in dssm_net.cpp; tests/unit/
// test_models_dssm.cpp checks each against finite differences.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "seqrec/features.hpp"

namespace seqrec::dssm {

enum class Activation { Tanh, Relu };

struct NetConfig {
  int64_t n_items = 0;
  int64_t n_features = 1;             ///< rows of W_1 (>= 1)
  std::vector<int64_t> item_layers;   ///< widths of h_1..h_K
  std::vector<int64_t> query_layers;  ///< widths of g_1..g_M (last == item_layers.back())
  bool id_embedding = true;
  Activation act = Activation::Tanh;
  float gamma = 10.0f;
  float decay = 0.8f;
  int64_t dim() const { return item_layers.back(); }
};

/// A named tensor of the flat parameter vector.
struct Slot {
  std::string name;
  int64_t offset = 0;
  std::vector<int64_t> shape;
  int64_t size() const {
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    return n;
  }
};

/// Offsets of every tensor in the flat parameter vector.
struct Layout {
  int64_t W1 = 0, b1 = 0, E = -1;  ///< E = -1 without id embedding
  std::vector<int64_t> W, b;       ///< item layers 2..K
  std::vector<int64_t> Wq, bq;     ///< query layers 1..M
  int64_t total = 0;
  std::vector<Slot> slots;  ///< names and shapes (model file tensors)
};

Layout make_layout(const NetConfig& c);
/// Xavier-uniform weights (as the DSSM paper: U(-sqrt(6/(fan_in+fan_out)), +...)), zero
/// biases, zero id embedding (so a cold item is its features alone).
void init_params(const NetConfig& c, const Layout& l, float* w, uint64_t seed);

/// Activations of the item tower for a list of items, kept for the backward pass.
struct TowerCache {
  std::vector<std::vector<float>> h;  ///< per layer: n x width
  std::vector<float> norm;            ///< |h_K| (with a 1e-12 floor inside the root) per item
};

/// Unit item vectors of `items` into U (n x D).
void item_tower_forward(const NetConfig& c, const Layout& l, const float* w,
                        const SparseFeatures& X, std::span<const int32_t> items, TowerCache& tc,
                        float* U);
/// Given dU (n x D) = dLoss/dU, adds dLoss/dparams into g. dU is overwritten (scratch).
void item_tower_backward(const NetConfig& c, const Layout& l, const float* w,
                         const SparseFeatures& X, std::span<const int32_t> items, TowerCache& tc,
                         const float* U, float* dU, float* g);

/// Recency pooling of one window of n item vectors (rows of U selected by `rows`):
/// P[j] = sum_{i<=j} d^{j-i} U[rows[i]] / sum_{i<=j} d^{j-i}, j < n.
void pool_forward(int64_t n, int64_t D, float decay, const int32_t* rows, const float* U, float* P);
/// dU[rows[i]] += sum_{j>=i} d^{j-i} dP[j] / Z_j, Z_j = sum_{i<=j} d^{j-i}.
void pool_backward(int64_t n, int64_t D, float decay, const int32_t* rows, const float* dP,
                   float* dU);

struct QueryCache {
  std::vector<std::vector<float>> g;  ///< per layer: R x width
  std::vector<float> norm;            ///< per row
};
/// Unit query vectors Q (R x D) of pooled inputs P (R x D).
void query_forward(const NetConfig& c, const Layout& l, const float* w, int64_t R, const float* P,
                   QueryCache& qc, float* Q);
/// Given dQ (overwritten), adds the parameter gradients into g and writes dP (R x D).
void query_backward(const NetConfig& c, const Layout& l, const float* w, int64_t R, const float* P,
                    QueryCache& qc, const float* Q, float* dQ, float* dP, float* g);

/// The sampled softmax of one batch. Row r (query Q[r]) has positive candidate target[r];
/// it sees every candidate c with allowed(r, c): all of them with `in_batch`, else only
/// the sampled ones (sampled[c] != 0) and its own positive. Logits gamma Q[r].Uc[c] -
/// logq[c] (logq may be null). Returns sum_r (logsumexp - positive logit); writes
/// dQ = scale dl/dQ and dUc = scale dl/dUc (both overwritten). scratch: R x C floats.
double softmax_loss(int64_t R, int64_t C, int64_t D, float gamma, const float* Q, const float* Uc,
                    const float* logq, const int32_t* target, const uint8_t* sampled, bool in_batch,
                    float scale, float* dQ, float* dUc, std::vector<float>& scratch);

/// One training batch, over the distinct items whose tower outputs it needs (each computed
/// once per step, however often the item occurs).
struct Batch {
  std::vector<int32_t> items;       ///< distinct item indices
  std::vector<int64_t> seq_off{0};  ///< sequence s owns positions [seq_off[s], seq_off[s+1])
  std::vector<int32_t> inputs;      ///< per position: its input item, an index into items
  std::vector<int32_t> target;      ///< per position: its positive, an index into cand
  std::vector<int32_t> cand;        ///< per candidate: an index into items
  std::vector<uint8_t> sampled;     ///< per candidate: 1 for a sampled negative
  std::vector<float> logq;          ///< per candidate, already weighted (empty: none)
  void clear();
  int64_t positions() const { return static_cast<int64_t>(inputs.size()); }
};

/// Buffers of batch_loss, reused between steps.
struct Workspace {
  TowerCache tower;
  QueryCache query;
  std::vector<float> U, dU, P, dP, Q, dQ, Uc, dUc, scratch;
};

/// The batch's mean loss; with g non-null also adds its gradient into g. Position j of
/// sequence s is scored from the pooled inputs of positions seq_off[s]..j.
double batch_loss(const NetConfig& c, const Layout& l, const float* w, const SparseFeatures& X,
                  const Batch& b, bool in_batch, float* g, Workspace& ws);

}  // namespace seqrec::dssm
