// DSSM's two towers: parameter layout, initialisation, forward and backward kernels (the
// math of each backward kernel is stated above it).
#include "models/dssm_net.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/rng.hpp"
#include "kernels/gemm.hpp"

namespace seqrec::dssm {

namespace {

constexpr double kNormEps = 1e-12;

void activate(Activation a, float* x, int64_t n) {
  if (a == Activation::Tanh) {
    for (int64_t i = 0; i < n; ++i) x[i] = std::tanh(x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0 ? x[i] : 0.0f;
  }
}

// dz = dy * act'(z) written in terms of the output y = act(z):
//   tanh: act'(z) = 1 - y^2;   relu: act'(z) = [y > 0].
void activation_backward(Activation a, const float* y, float* d, int64_t n) {
  if (a == Activation::Tanh) {
    for (int64_t i = 0; i < n; ++i) d[i] *= 1.0f - y[i] * y[i];
  } else {
    for (int64_t i = 0; i < n; ++i) d[i] = y[i] > 0 ? d[i] : 0.0f;
  }
}

/// Rows of H (n x D) scaled to unit length into U; norms into `norm`.
void normalise_rows(int64_t n, int64_t D, const float* H, float* U, std::vector<float>& norm) {
  norm.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) {
    double s = kNormEps;
    for (int64_t k = 0; k < D; ++k) s += static_cast<double>(H[r * D + k]) * H[r * D + k];
    const float nr = static_cast<float>(std::sqrt(s));
    norm[static_cast<size_t>(r)] = nr;
    for (int64_t k = 0; k < D; ++k) U[r * D + k] = H[r * D + k] / nr;
  }
}

// u = h / n, n = sqrt(|h|^2 + eps):  dl/dh = (dl/du - u (u . dl/du)) / n
// (d(h/n)/dh = I/n - h h^T / n^3 and h/n = u). In place on dU.
void normalise_backward(int64_t n, int64_t D, const float* U, const std::vector<float>& norm,
                        float* dU) {
  for (int64_t r = 0; r < n; ++r) {
    const float* u = U + r * D;
    float* d = dU + r * D;
    double dot = 0;
    for (int64_t k = 0; k < D; ++k) dot += static_cast<double>(u[k]) * d[k];
    const float inv = 1.0f / norm[static_cast<size_t>(r)];
    for (int64_t k = 0; k < D; ++k) d[k] = (d[k] - u[k] * static_cast<float>(dot)) * inv;
  }
}

/// Y = act(X W + b): X n x in, W in x out, b out.
void dense_forward(Activation a, int64_t n, int64_t in, int64_t out, const float* X, const float* W,
                   const float* b, float* Y) {
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(Y + r * out, b, static_cast<size_t>(out) * sizeof(float));
  if (n > 0) sgemm(false, false, n, out, in, 1.0f, X, in, W, out, 1.0f, Y, out);
  activate(a, Y, n * out);
}

// Y = act(X W + b), dZ = dY * act'(.):  dW += X^T dZ,  db += sum_rows dZ,  dX = dZ W^T
// (dX skipped when null). dY is overwritten with dZ.
void dense_backward(Activation a, int64_t n, int64_t in, int64_t out, const float* X,
                    const float* W, const float* Y, float* dY, float* gW, float* gb, float* dX) {
  activation_backward(a, Y, dY, n * out);
  if (n == 0) return;
  sgemm(true, false, in, out, n, 1.0f, X, in, dY, out, 1.0f, gW, out);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < out; ++k) gb[k] += dY[r * out + k];
  if (dX) sgemm(false, true, n, in, out, 1.0f, dY, out, W, out, 0.0f, dX, in);
}

void xavier(float* w, int64_t in, int64_t out, Rng& rng) {
  const double a = std::sqrt(6.0 / static_cast<double>(in + out));
  for (int64_t i = 0; i < in * out; ++i) w[i] = static_cast<float>((2.0 * rng.uniform() - 1.0) * a);
}

}  // namespace

Layout make_layout(const NetConfig& c) {
  Layout l;
  int64_t off = 0;
  auto slot = [&](std::string name, std::vector<int64_t> shape) {
    Slot s{std::move(name), off, std::move(shape)};
    off += s.size();
    l.slots.push_back(s);
    return s.offset;
  };
  const auto& h = c.item_layers;
  l.W1 = slot("item.W1", {c.n_features, h[0]});
  l.b1 = slot("item.b1", {h[0]});
  if (c.id_embedding) l.E = slot("item.E", {c.n_items, h[0]});
  for (size_t k = 1; k < h.size(); ++k) {
    l.W.push_back(slot("item.W" + std::to_string(k + 1), {h[k - 1], h[k]}));
    l.b.push_back(slot("item.b" + std::to_string(k + 1), {h[k]}));
  }
  int64_t in = c.dim();
  for (size_t k = 0; k < c.query_layers.size(); ++k) {
    l.Wq.push_back(slot("query.W" + std::to_string(k + 1), {in, c.query_layers[k]}));
    l.bq.push_back(slot("query.b" + std::to_string(k + 1), {c.query_layers[k]}));
    in = c.query_layers[k];
  }
  l.total = off;
  return l;
}

void init_params(const NetConfig& c, const Layout& l, float* w, uint64_t seed) {
  std::fill(w, w + l.total, 0.0f);
  Rng rng(seed, 0xD55A, 1);
  const auto& h = c.item_layers;
  xavier(w + l.W1, c.n_features, h[0], rng);
  for (size_t k = 1; k < h.size(); ++k) xavier(w + l.W[k - 1], h[k - 1], h[k], rng);
  int64_t in = c.dim();
  for (size_t k = 0; k < c.query_layers.size(); ++k) {
    xavier(w + l.Wq[k], in, c.query_layers[k], rng);
    in = c.query_layers[k];
  }
}

void item_tower_forward(const NetConfig& c, const Layout& l, const float* w,
                        const SparseFeatures& X, std::span<const int32_t> items, TowerCache& tc,
                        float* U) {
  const auto& h = c.item_layers;
  const int64_t n = static_cast<int64_t>(items.size()), h0 = h[0];
  tc.h.resize(h.size());
  tc.h[0].resize(static_cast<size_t>(n * h0));
  // h_1 = act(x W_1 + E[id] + b_1): a sparse row times W_1.
  for (int64_t r = 0; r < n; ++r) {
    const int32_t it = items[static_cast<size_t>(r)];
    float* z = tc.h[0].data() + r * h0;
    std::memcpy(z, w + l.b1, static_cast<size_t>(h0) * sizeof(float));
    if (l.E >= 0) {
      const float* e = w + l.E + static_cast<int64_t>(it) * h0;
      for (int64_t k = 0; k < h0; ++k) z[k] += e[k];
    }
    if (it < X.rows()) {
      const auto idx = X.row_index(it);
      const auto val = X.row_value(it);
      for (size_t j = 0; j < idx.size(); ++j) {
        const float* wr = w + l.W1 + static_cast<int64_t>(idx[j]) * h0;
        const float v = val[j];
        for (int64_t k = 0; k < h0; ++k) z[k] += v * wr[k];
      }
    }
  }
  activate(c.act, tc.h[0].data(), n * h0);
  for (size_t k = 1; k < h.size(); ++k) {
    tc.h[k].resize(static_cast<size_t>(n * h[k]));
    dense_forward(c.act, n, h[k - 1], h[k], tc.h[k - 1].data(), w + l.W[k - 1], w + l.b[k - 1],
                  tc.h[k].data());
  }
  normalise_rows(n, c.dim(), tc.h.back().data(), U, tc.norm);
}

// Through the normalisation, the dense layers (dense_backward) and the first layer:
//   dz_1 = dh_1 * act'(.),  dW_1[f] += x_f dz_1 (each nonzero feature f of the item),
//   dE[id] += dz_1,  db_1 += dz_1.
void item_tower_backward(const NetConfig& c, const Layout& l, const float* w,
                         const SparseFeatures& X, std::span<const int32_t> items, TowerCache& tc,
                         const float* U, float* dU, float* g) {
  const auto& h = c.item_layers;
  const int64_t n = static_cast<int64_t>(items.size()), h0 = h[0];
  normalise_backward(n, c.dim(), U, tc.norm, dU);
  std::vector<float> cur(dU, dU + n * c.dim()), prev;
  for (size_t k = h.size() - 1; k >= 1; --k) {
    prev.resize(static_cast<size_t>(n * h[k - 1]));
    dense_backward(c.act, n, h[k - 1], h[k], tc.h[k - 1].data(), w + l.W[k - 1], tc.h[k].data(),
                   cur.data(), g + l.W[k - 1], g + l.b[k - 1], prev.data());
    cur.swap(prev);
  }
  activation_backward(c.act, tc.h[0].data(), cur.data(), n * h0);
  for (int64_t r = 0; r < n; ++r) {
    const int32_t it = items[static_cast<size_t>(r)];
    const float* dz = cur.data() + r * h0;
    for (int64_t k = 0; k < h0; ++k) g[l.b1 + k] += dz[k];
    if (l.E >= 0) {
      float* ge = g + l.E + static_cast<int64_t>(it) * h0;
      for (int64_t k = 0; k < h0; ++k) ge[k] += dz[k];
    }
    if (it < X.rows()) {
      const auto idx = X.row_index(it);
      const auto val = X.row_value(it);
      for (size_t j = 0; j < idx.size(); ++j) {
        float* gw = g + l.W1 + static_cast<int64_t>(idx[j]) * h0;
        const float v = val[j];
        for (int64_t k = 0; k < h0; ++k) gw[k] += v * dz[k];
      }
    }
  }
}

void pool_forward(int64_t n, int64_t D, float decay, const int32_t* rows, const float* U,
                  float* P) {
  std::vector<double> s(static_cast<size_t>(D), 0.0);
  double z = 0;
  for (int64_t j = 0; j < n; ++j) {
    const float* u = U + static_cast<int64_t>(rows[j]) * D;
    z = decay * z + 1.0;
    for (int64_t k = 0; k < D; ++k) {
      s[static_cast<size_t>(k)] = decay * s[static_cast<size_t>(k)] + u[k];
      P[j * D + k] = static_cast<float>(s[static_cast<size_t>(k)] / z);
    }
  }
}

// P_j = S_j / Z_j with S_j = d S_{j-1} + u_j, Z_j = d Z_{j-1} + 1 (constants), so
//   dl/du_i = sum_{j>=i} d^{j-i} dP_j / Z_j = G_i,  G_i = dP_i / Z_i + d G_{i+1}
// (one backward sweep). Accumulates into dU[rows[i]].
void pool_backward(int64_t n, int64_t D, float decay, const int32_t* rows, const float* dP,
                   float* dU) {
  std::vector<double> Z(static_cast<size_t>(n));
  double z = 0;
  for (int64_t j = 0; j < n; ++j) Z[static_cast<size_t>(j)] = z = decay * z + 1.0;
  std::vector<double> G(static_cast<size_t>(D), 0.0);
  for (int64_t j = n - 1; j >= 0; --j) {
    float* du = dU + static_cast<int64_t>(rows[j]) * D;
    for (int64_t k = 0; k < D; ++k) {
      double& gk = G[static_cast<size_t>(k)];
      gk = dP[j * D + k] / Z[static_cast<size_t>(j)] + decay * gk;
      du[k] += static_cast<float>(gk);
    }
  }
}

void query_forward(const NetConfig& c, const Layout& l, const float* w, int64_t R, const float* P,
                   QueryCache& qc, float* Q) {
  const auto& q = c.query_layers;
  qc.g.resize(q.size());
  const float* in = P;
  int64_t win = c.dim();
  for (size_t k = 0; k < q.size(); ++k) {
    qc.g[k].resize(static_cast<size_t>(R * q[k]));
    dense_forward(c.act, R, win, q[k], in, w + l.Wq[k], w + l.bq[k], qc.g[k].data());
    in = qc.g[k].data();
    win = q[k];
  }
  normalise_rows(R, c.dim(), in, Q, qc.norm);
}

// Through the normalisation and the dense layers (dense_backward); dP = dz_1 W^q_1^T.
void query_backward(const NetConfig& c, const Layout& l, const float* w, int64_t R, const float* P,
                    QueryCache& qc, const float* Q, float* dQ, float* dP, float* g) {
  const auto& q = c.query_layers;
  normalise_backward(R, c.dim(), Q, qc.norm, dQ);
  std::vector<float> cur(dQ, dQ + R * c.dim()), prev;
  for (size_t k = q.size(); k-- > 0;) {
    const int64_t win = k == 0 ? c.dim() : q[k - 1];
    const float* in = k == 0 ? P : qc.g[k - 1].data();
    prev.resize(static_cast<size_t>(R * win));
    dense_backward(c.act, R, win, q[k], in, w + l.Wq[k], qc.g[k].data(), cur.data(), g + l.Wq[k],
                   g + l.bq[k], prev.data());
    cur.swap(prev);
  }
  std::memcpy(dP, cur.data(), static_cast<size_t>(R * c.dim()) * sizeof(float));
}

// l_r = logsumexp_{c allowed} L_rc - L_r,t(r),  L = gamma Q Uc^T - logq:
//   dl/dL_rc = softmax_rc - [c = t(r)]  (0 where not allowed),
//   dQ = gamma dL Uc,  dUc = gamma dL^T Q  (each times `scale`).
double softmax_loss(int64_t R, int64_t C, int64_t D, float gamma, const float* Q, const float* Uc,
                    const float* logq, const int32_t* target, const uint8_t* sampled, bool in_batch,
                    float scale, float* dQ, float* dUc, std::vector<float>& scratch) {
  scratch.resize(static_cast<size_t>(R * C));
  float* L = scratch.data();
  sgemm(false, true, R, C, D, gamma, Q, D, Uc, D, 0.0f, L, C);
  double total = 0;
  for (int64_t r = 0; r < R; ++r) {
    float* row = L + r * C;
    const int32_t t = target[r];
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < C; ++c) {
      const bool ok = in_batch || c == t || (sampled && sampled[c]);
      if (!ok) {
        row[c] = -std::numeric_limits<float>::infinity();
        continue;
      }
      if (logq) row[c] -= logq[c];
      mx = std::max(mx, row[c]);
    }
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(row[c]) - mx);
    const double lse = mx + std::log(s);
    total += lse - row[t];
    for (int64_t c = 0; c < C; ++c) {
      const double p = std::exp(static_cast<double>(row[c]) - lse);
      row[c] = static_cast<float>(scale * (p - (c == t ? 1.0 : 0.0)));
    }
  }
  sgemm(false, false, R, D, C, gamma, L, C, Uc, D, 0.0f, dQ, D);
  sgemm(true, false, C, D, R, gamma, L, C, Q, D, 0.0f, dUc, D);
  return total;
}

void Batch::clear() {
  items.clear();
  seq_off.assign(1, 0);
  inputs.clear();
  target.clear();
  cand.clear();
  sampled.clear();
  logq.clear();
}

// Forward: item tower over b.items (U), pooled inputs per sequence (P), query tower (Q),
// candidate rows of U (Uc), softmax loss. Backward in reverse: dQ, dUc from the loss; dUc
// scattered into dU; dP from the query tower; pool_backward adds into dU; the item tower
// takes dU.
double batch_loss(const NetConfig& c, const Layout& l, const float* w, const SparseFeatures& X,
                  const Batch& b, bool in_batch, float* g, Workspace& ws) {
  const int64_t D = c.dim(), n = static_cast<int64_t>(b.items.size()), R = b.positions(),
                C = static_cast<int64_t>(b.cand.size());
  if (R == 0) return 0.0;
  ws.U.resize(static_cast<size_t>(n * D));
  item_tower_forward(c, l, w, X, b.items, ws.tower, ws.U.data());
  ws.P.resize(static_cast<size_t>(R * D));
  const int64_t S = static_cast<int64_t>(b.seq_off.size()) - 1;
  for (int64_t s = 0; s < S; ++s) {
    const int64_t o = b.seq_off[static_cast<size_t>(s)],
                  m = b.seq_off[static_cast<size_t>(s) + 1] - o;
    pool_forward(m, D, c.decay, b.inputs.data() + o, ws.U.data(), ws.P.data() + o * D);
  }
  ws.Q.resize(static_cast<size_t>(R * D));
  query_forward(c, l, w, R, ws.P.data(), ws.query, ws.Q.data());
  ws.Uc.resize(static_cast<size_t>(C * D));
  for (int64_t k = 0; k < C; ++k)
    std::memcpy(ws.Uc.data() + k * D,
                ws.U.data() + static_cast<int64_t>(b.cand[static_cast<size_t>(k)]) * D,
                static_cast<size_t>(D) * sizeof(float));
  const float scale = 1.0f / static_cast<float>(R);
  ws.dQ.resize(static_cast<size_t>(R * D));
  ws.dUc.resize(static_cast<size_t>(C * D));
  const double loss = softmax_loss(
      R, C, D, c.gamma, ws.Q.data(), ws.Uc.data(), b.logq.empty() ? nullptr : b.logq.data(),
      b.target.data(), b.sampled.data(), in_batch, scale, ws.dQ.data(), ws.dUc.data(), ws.scratch);
  if (!g) return loss / static_cast<double>(R);
  ws.dU.assign(static_cast<size_t>(n * D), 0.0f);
  for (int64_t k = 0; k < C; ++k) {
    float* du = ws.dU.data() + static_cast<int64_t>(b.cand[static_cast<size_t>(k)]) * D;
    const float* d = ws.dUc.data() + k * D;
    for (int64_t j = 0; j < D; ++j) du[j] += d[j];
  }
  ws.dP.resize(static_cast<size_t>(R * D));
  query_backward(c, l, w, R, ws.P.data(), ws.query, ws.Q.data(), ws.dQ.data(), ws.dP.data(), g);
  for (int64_t s = 0; s < S; ++s) {
    const int64_t o = b.seq_off[static_cast<size_t>(s)],
                  m = b.seq_off[static_cast<size_t>(s) + 1] - o;
    pool_backward(m, D, c.decay, b.inputs.data() + o, ws.dP.data() + o * D, ws.dU.data());
  }
  item_tower_backward(c, l, w, X, b.items, ws.tower, ws.U.data(), ws.dU.data(), g);
  return loss / static_cast<double>(R);
}

}  // namespace seqrec::dssm
