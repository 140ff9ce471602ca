// The GRU4Rec network: weights, optimiser state and one training step (forward, loss,
// backward, IndexedAdagradM update), plus the inference forward used for scoring.
//
// Kept apart from the Model plumbing (data order, epochs, files) so that tests can run a
// single step on chosen inputs and compare its gradients with finite differences.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/gemm.hpp"
#include "kernels/gru_cell.hpp"
#include "kernels/sampled_losses.hpp"

namespace seqrec {

enum class Gru4recInput {
  Shared,        ///< constrained_embedding: the input of item i is row i of Wy
  Embedding,     ///< a separate table Emb (I x embedding)
  GruEmbedding,  ///< embedding = 0, not constrained: one-hot GRU embedding layer (§3.3)
};

/// Parsed, validated hyperparameters (names as in the official code). The defaults, ranges
/// and help live in one place, the table of src/models/gru4rec.cpp: start from
/// gru4rec_defaults(), not from this struct's zeros.
struct Gru4recParams {
  kernels::LossType loss = {};
  std::vector<int64_t> layers = {};
  int64_t embedding = 0;  ///< 0 = none, -1 = layers[0] ('layersize')
  bool constrained_embedding = false;
  int64_t batch_size = 0;
  float dropout_p_embed = 0, dropout_p_hidden = 0;
  float learning_rate = 0, momentum = 0;
  int64_t n_sample = 0;
  double sample_alpha = 0;
  float bpreg = 0, logq = 0, elu_param = 0;
  int64_t n_epochs = 0;  ///< the parameter "epochs"
  int64_t sample_store_size = 0;
  /// The requested precision of the large GEMMs (the parameter "precision"; Auto allowed).
  Precision precision = Precision::Fp32;

  Gru4recInput input_mode() const;
  int64_t embedding_size() const { return embedding < 0 ? layers[0] : embedding; }
};

/// A weight tensor with its Adagrad accumulator, momentum velocity and dense gradient.
struct Gru4recParam {
  std::string name;
  int64_t rows = 0, cols = 0;
  std::vector<float> w, acc, vel, grad;
  size_t size() const { return w.size(); }
};

/// Where a training step's time goes (seconds, summed over steps, measured on thread 0 of the
/// step's region; a barrier wait counts for the phase before it) and the GEMM work done.
/// unique_gather: distinct columns, biases and the gather of Wy rows; gru_forward: input rows
/// and the GRU layers; output_gemm: scores, dBy, dWy and dL/d(top output); loss: the fused
/// loss rows; gru_backward: the GRU backward and weight-gradient GEMMs; update: IndexedAdagradM
/// (fused into the step by train_step) and the region's fork/join.
struct Gru4recProfile {
  double unique_gather = 0, gru_forward = 0, output_gemm = 0, loss = 0, gru_backward = 0,
         update = 0;
  double output_gemm_flops = 0, gru_gemm_flops = 0;  ///< FLOPs (2 per multiply-add)
  int64_t steps = 0, rows = 0, distinct_columns = 0;
  double total() const {
    return unique_gather + gru_forward + output_gemm + loss + gru_backward + update;
  }
};

class Gru4recNet {
 public:
  Gru4recNet() = default;
  /// Allocates the weights for `n_items` items and initialises them as the official code
  /// (spec §8: uniform +-sqrt(6/(fan_in+fan_out)) from MT19937(seed), NumPy's doubles).
  void init(const Gru4recParams& p, int32_t n_items, uint64_t seed);
  /// Allocates the weights without initialising them (for load()).
  void allocate(const Gru4recParams& p, int32_t n_items);
  /// Prepares training: optimiser state, work buffers for up to `max_rows` rows and
  /// `n_sample` samples, the logQ tables from item counts, and the dropout stream.
  void prepare_training(int64_t max_rows, int64_t n_sample, std::span<const int64_t> counts,
                        uint64_t seed);

  /// Zeroes the hidden state of every row (start of an epoch).
  void reset_state();
  /// New row r continues old row src[r], or starts from zero when src[r] < 0.
  void remap_state(int64_t n, const int32_t* src);
  /// The hidden state of layer l (n rows of layers[l]); writable for tests.
  float* state(size_t l) { return hstate_[l].data(); }

  /// One step on n rows with inputs x, targets y and K shared samples: returns the step
  /// loss L = (sum of row losses) / batch_size and fills every gradient. Does not change
  /// the weights or the hidden state (see apply_update). With reuse_masks, the dropout
  /// masks of the previous call are used again (finite-difference tests).
  double forward_backward(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples,
                          int64_t K, bool reuse_masks = false);
  /// Applies IndexedAdagradM with the last gradients and moves the hidden state on.
  void apply_update();
  /// forward_backward + apply_update fused (what training runs): each gradient block is
  /// applied while it is still in cache, inside the step's one parallel region. Gives the
  /// same weights, state and loss as the two calls; the dense gradients (Gru4recParam::grad)
  /// are not kept (the sparse ones are).
  double train_step(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples,
                    int64_t K);

  /// Inference: runs one step for n rows (no dropout) from states h (per layer, n x
  /// layers[l], updated in place); `scratch` is grown as needed. Returns the last layer.
  const float* infer_step(int64_t n, const int32_t* x, std::vector<std::vector<float>>& h,
                          std::vector<float>& scratch) const;
  /// out (n x I) = h Wy^T + By for n last-layer states.
  void output_scores(int64_t n, const float* h, float* out) const;

  const Gru4recParams& params() const { return p_; }
  /// The precision the training steps use (fp32 or bf16), decided by prepare_training from
  /// params().precision and the CPU (resolve_precision).
  Precision precision_used() const { return prec_; }
  const Gru4recProfile& profile() const { return prof_; }
  void reset_profile() { prof_ = Gru4recProfile{}; }
  int32_t n_items() const { return n_items_; }
  /// Every weight tensor, in a fixed order (save/load, snapshots, NaN checks).
  std::vector<Gru4recParam*> tensors();
  std::vector<const Gru4recParam*> tensors() const;
  Gru4recParam* find(const std::string& name);
  /// The state of the dropout stream (xoshiro256**), saved and restored by checkpoints.
  std::array<uint64_t, 4> dropout_rng() const { return {rng_[0], rng_[1], rng_[2], rng_[3]}; }
  void set_dropout_rng(const std::array<uint64_t, 4>& s) {
    for (size_t i = 0; i < 4; ++i) rng_[i] = s[i];
  }
  /// True when every weight is finite.
  bool all_finite() const;

  // Gradient access for tests: the summed gradient of row `item` of Wy (or Emb/Wx0 via
  // `table`) from the last forward_backward, zero when the row was not touched.
  std::vector<float> sparse_grad(const std::string& table, int32_t item) const;
  float by_grad(int32_t item) const;

 private:
  struct CellLayer {
    Gru4recParam w_ih, w_hh, b_ih, b_hh;
    int64_t in = 0, hidden = 0;
    kernels::GruCellWeights weights() const;
  };
  int64_t hout() const { return p_.layers.back(); }
  void dense_update(Gru4recParam& t);
  kernels::GruEmbWeights emb_weights() const;

  // ---- one training step (gru4rec_net.cpp explains the phases and their math)
  /// What every phase of a step reads: its sizes, flags and settings.
  struct StepPlan {
    int64_t n = 0, K = 0, H = 0, uy = 0, in0 = 0;  ///< rows, samples, top width, columns
    const int32_t* x = nullptr;                    ///< the rows' input items
    bool reuse_masks = false, update = false, gru_emb = false, drop_e = false;
    uint64_t key_e = 0;  ///< dropout key of the input embedding
    float scale = 1.0f, lr = 0.0f, mu = 0.0f;
    double* row_loss = nullptr;  ///< n row losses
  };
  /// One thread's share of a step: rows [r0, r1), distinct columns [c0, c1), its scratch,
  /// and thread 0's phase clock.
  struct StepThread {
    int t = 0, T = 1;
    int64_t r0 = 0, r1 = 0, m = 0, c0 = 0, c1 = 0;
    float* gh_rows = nullptr;
    int32_t* which = nullptr;
    double* clock = nullptr;
    double last = 0;
    /// Thread 0 only: adds the time since the last lap to clock[bucket].
    void lap(int bucket);
  };
  double step(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples, int64_t K,
              bool reuse_masks, bool update);
  void unique_rows(int64_t n, const int32_t* x, const int32_t* y, const int32_t* samples,
                   int64_t K);
  void column_biases(int64_t n, const int32_t* y, const int32_t* samples, int64_t K);
  void dropout_keys(StepPlan& s);
  int step_threads(const StepPlan& s);
  void gather_output_rows(const StepPlan& s, StepThread& th);
  void forward_rows(const StepPlan& s, StepThread& th);
  void score_columns(const StepPlan& s, StepThread& th);
  void loss_rows(const StepPlan& s, StepThread& th);
  void output_column_grads(const StepPlan& s, StepThread& th);
  void gru_backward_rows(const StepPlan& s, StepThread& th);
  void gru_weight_grads(const StepPlan& s, StepThread& th);
  void input_row_grads(const StepPlan& s, StepThread& th);
  void record_profile(const StepPlan& s, double t_start, double t_region, const double* tp);

  Gru4recParams p_;
  Gru4recInput mode_ = Gru4recInput::Shared;
  int32_t n_items_ = 0;
  Gru4recParam wy_, by_, emb_, wx0_, wrz0_, wh0_, bh0_;
  std::vector<CellLayer> cells_;      // GRUCell layers (mode GruEmbedding: layers 1..)
  Precision prec_ = Precision::Fp32;  // of the training steps (prepare_training)
  // bf16 copies of the output layer's GEMM operands (prec_ == Bf16 only), each converted
  // once per step by the thread that wrote the fp32 values: Wy[U] rows, the top layer's
  // output rows, and dL/dR_u rows.
  std::vector<uint16_t> ou16_, top16_, ru16_;
  kernels::LossOptions loss_;
  Gru4recProfile prof_;

  // ---- training state and work buffers (allocated once in prepare_training)
  int64_t max_rows_ = 0, max_k_ = 0;
  std::vector<std::vector<float>> hstate_;  // per layer, max_rows x h
  std::vector<float> lq_full_, lq_alpha_;   // logq * ln(count), logq * ln(count^alpha)
  uint64_t rng_[4] = {1, 2, 3, 4};
  std::vector<uint64_t> key_h_;               // dropout keys of the step's hidden layers
  int64_t n_ = 0, uy_ = 0, nu_ = 0, nx_ = 0;  // rows, unique targets+samples, unique rows, unique x
  std::vector<int32_t> pos_;                  // item -> unique index, -1 elsewhere
  std::vector<int32_t> uids_, cmap_, xmap_, xids_;
  std::vector<int32_t>
      xin_;  // constrained mode: distinct rows (indices into uids_) that are inputs
  std::vector<uint8_t> is_in_;  // per index into uids_: 1 for the rows in xin_
  std::vector<float> colbias_, ou_, gu_, dby_, ru_;
  std::vector<float> emb_in_, mask_e_, d_in_;
  std::vector<std::vector<float>> hout_, o_, mask_h_, act_, ghn_, dgrad_, dgi_, dgh_;
  std::vector<float> gh_, emb_cache_, emb_tmp_, dv_, gx_;
  std::vector<std::vector<float>> gscratch_;  // per-thread gradient blocks of the fused update
  std::vector<std::vector<int32_t>> which_;   // per-thread row lists of the fused sparse update
};

}  // namespace seqrec
