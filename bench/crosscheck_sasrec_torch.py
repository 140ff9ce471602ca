#!/usr/bin/python3
"""Cross-check seqrec's SASRec against an independent PyTorch implementation.

Written for seqrec from the SASRec specification (../shared/specs/SASREC.md) in the layout
of the PyTorch reference code (pmixer's SASRec.pytorch, as used by Klenitskiy & Vasilev's
SASRec+): torch.nn.MultiheadAttention with the layer norm on the queries, keys and values
from the un-normed input, the residual on the normed queries, a point-wise ReLU
feed-forward network, a final layer norm and scores against the item table. It needs
PyTorch (Debian: apt-get install python3-torch) and nothing else from seqrec.

  forward MODEL SEQREC [N]
      Loads a seqrec SASRec model file into the PyTorch network and compares the scores of
      every item for N sessions (default 50, drawn from the model's catalogue, lengths 1 to
      2 x maxlen) with `SEQREC recommend`. Exit status 0 when every score agrees to 1e-4
      relative, 1 otherwise. Used by the integration test CrossCheck.SasrecForwardEqualsPyTorch.

  train DATA.txt EPOCHS SEED [THREADS] [PATIENCE]
      Trains SASRec+ (full cross-entropy, maxlen 200, d 64, 2 blocks, 1 head, dropout 0.1,
      N(0, 0.02) initialisation, Adam lr 1e-3 betas (0.9, 0.999), batch 128, right-padded
      batches) on a "user item" file (ML-1M layout) with Klenitskiy & Vasilev's data
      handling: the last item of each user is the test item, the one before it the
      validation item, training on the rest. Prints the training loss and the validation
      NDCG@10 (full ranking, seen items excluded) after every epoch, to put next to
      `seqrec train ... --preset ml1m_plus --positions from_start --validation --monitor`.
      With PATIENCE > 0, stops after PATIENCE epochs without a better validation figure
      (their protocol: 100 epochs, patience 10). At the end it restores the best epoch's
      weights and prints the test NDCG@10 (input: every item but the last; target: the
      last), the figure Klenitskiy & Vasilev publish (0.1821 on ML-1M).
"""
import json
import math
import random
import struct
import subprocess
import sys

import numpy as np
import torch
from torch import nn


def layer_norm(d):
    return nn.LayerNorm(d, eps=1e-8)


class Block(nn.Module):
    def __init__(self, d, heads, p, norm_first=False, gelu=False):
        super().__init__()
        self.norm_first = norm_first
        self.ln_a = layer_norm(d)
        self.mha = nn.MultiheadAttention(d, heads, p)
        self.ln_f = layer_norm(d)
        self.w1 = nn.Linear(d, d)
        self.w2 = nn.Linear(d, d)
        self.act = nn.GELU() if gelu else nn.ReLU()
        self.d1 = nn.Dropout(p)
        self.d2 = nn.Dropout(p)

    def forward(self, x, causal):  # x: (T, B, d)
        q = self.ln_a(x)
        kv = q if self.norm_first else x
        a, _ = self.mha(q, kv, kv, attn_mask=causal, need_weights=False)
        h = (x if self.norm_first else q) + a
        z = self.ln_f(h)
        f = self.d2(self.w2(self.act(self.d1(self.w1(z)))))
        return (h if self.norm_first else z) + f


class SASRec(nn.Module):
    """Item table row 0 is padding (zero); seqrec item i is row i + 1."""

    def __init__(self, n_items, maxlen, d, blocks, heads, p, norm_first=False, gelu=False,
                 shared=True):
        super().__init__()
        self.d = d
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.out = None if shared else nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos = nn.Embedding(maxlen, d)
        self.drop = nn.Dropout(p)
        self.blocks = nn.ModuleList([Block(d, heads, p, norm_first, gelu) for _ in range(blocks)])
        self.ln = layer_norm(d)

    def init_small(self, std=0.02):
        for m in self.modules():
            if isinstance(m, nn.Linear):  # includes MultiheadAttention.out_proj
                m.weight.data.normal_(0.0, std)
                if m.bias is not None:
                    m.bias.data.zero_()
            elif isinstance(m, nn.Embedding):
                m.weight.data.normal_(0.0, std)
                if m.padding_idx is not None:
                    m.weight.data[m.padding_idx].zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.data.fill_(1.0)
                m.bias.data.zero_()

    def hidden(self, ids, pos):
        """ids, pos: (B, T) long; padding ids are 0 and must come after the real items."""
        x = self.item(ids) * math.sqrt(self.d) + self.pos(pos)
        keep = (ids != 0).unsqueeze(-1).float()
        x = self.drop(x) * keep
        T = ids.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)
        x = x.transpose(0, 1)
        for b in self.blocks:
            x = b(x, causal) * keep.transpose(0, 1)
        return self.ln(x.transpose(0, 1))

    def table(self):
        return (self.item if self.out is None else self.out).weight


def read_model(path):
    raw = open(path, 'rb').read()
    if raw[:8] != b'SQRCMODL':
        raise SystemExit(f'{path}: not a seqrec model file')
    hlen = struct.unpack('<Q', raw[16:24])[0]
    hdr = json.loads(raw[24:24 + hlen])
    base = (24 + hlen + 63) // 64 * 64
    tensors = {}
    for t in hdr['tensors']:
        if t['dtype'] == 'f32':
            n = int(np.prod(t['shape']))
            a = np.frombuffer(raw, dtype=np.float32, count=n, offset=base + t['offset'])
            tensors[t['name']] = torch.tensor(a.reshape(t['shape']).copy())
    return hdr, tensors


def load_seqrec(path):
    hdr, t = read_model(path)
    if hdr['model_type'] != 'sasrec':
        raise SystemExit(f'{path}: model type {hdr["model_type"]}, not sasrec')
    c = hdr['config']
    n, d = hdr['n_items'], c['hidden_units']
    m = SASRec(n, c['maxlen'], d, c['num_blocks'], c['num_heads'], 0.0, c.get('norm_first', False),
               c.get('activation', 'relu') == 'gelu', c.get('shared_embedding', True))
    pad = torch.zeros(1, d)
    with torch.no_grad():
        m.item.weight.copy_(torch.cat([pad, t['item_emb']]))
        if m.out is not None:
            m.out.weight.copy_(torch.cat([pad, t['out_emb']]))
        m.pos.weight.copy_(t['pos_emb'])
        for i, b in enumerate(m.blocks):
            p = f'block{i}.'
            # seqrec stores y = x W (d_in x d_out); torch keeps W^T.
            b.mha.in_proj_weight.copy_(
                torch.cat([t[p + 'attn.wq'].T, t[p + 'attn.wk'].T, t[p + 'attn.wv'].T]))
            b.mha.in_proj_bias.copy_(torch.cat([t[p + 'attn.bq'], t[p + 'attn.bk'], t[p + 'attn.bv']]))
            b.mha.out_proj.weight.copy_(t[p + 'attn.wo'].T)
            b.mha.out_proj.bias.copy_(t[p + 'attn.bo'])
            b.ln_a.weight.copy_(t[p + 'ln_attn.gamma'])
            b.ln_a.bias.copy_(t[p + 'ln_attn.beta'])
            b.ln_f.weight.copy_(t[p + 'ln_ffn.gamma'])
            b.ln_f.bias.copy_(t[p + 'ln_ffn.beta'])
            b.w1.weight.copy_(t[p + 'ffn.w1'].T)
            b.w1.bias.copy_(t[p + 'ffn.b1'])
            b.w2.weight.copy_(t[p + 'ffn.w2'].T)
            b.w2.bias.copy_(t[p + 'ffn.b2'])
        m.ln.weight.copy_(t['ln_last.gamma'])
        m.ln.bias.copy_(t['ln_last.beta'])
    m.eval()
    return hdr, m


def cmd_forward(model_path, seqrec, n_sessions=50):
    hdr, m = load_seqrec(model_path)
    c, items = hdr['config'], hdr['items']
    L, n = c['maxlen'], len(items)
    rng = random.Random(7)
    sessions = [[rng.randrange(n) for _ in range(rng.randint(1, 2 * L))] for _ in range(n_sessions)]
    text = ''.join(' '.join(items[i] for i in s) + '\n' for s in sessions)
    out = subprocess.run([seqrec, '-q', 'recommend', '-m', model_path, '-k', str(n), '--json',
                          '--exclude-seen', 'false'], input=text, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f'seqrec recommend failed: {out.stderr}')
    lines = out.stdout.splitlines()
    if len(lines) != len(sessions):
        raise SystemExit(f'expected {len(sessions)} JSON lines, got {len(lines)}')
    index = {s: i for i, s in enumerate(items)}
    worst = 0.0
    with torch.no_grad():
        for s, line in zip(sessions, lines):
            w = s[-L:]
            ids = torch.tensor([[i + 1 for i in w]])
            start = L - len(w) if c.get('positions', 'from_end') == 'from_end' else 0
            pos = torch.arange(start, start + len(w)).unsqueeze(0)
            h = m.hidden(ids, pos)[0, -1]
            ref = (m.table()[1:] @ h).numpy()
            got = np.full(n, np.nan)
            for r in json.loads(line)['items']:
                got[index[r['item']]] = r['score']
            err = np.max(np.abs(got - ref) / (1.0 + np.abs(ref)))
            worst = max(worst, float(err))
    ok = worst <= 1e-4
    print(f'{len(sessions)} sessions, {n} items each: largest relative score difference '
          f'{worst:.2e} -> {"OK" if ok else "MISMATCH"}')
    return 0 if ok else 1


def pad_right(rows, value):
    T = max(len(r) for r in rows)
    out = torch.full((len(rows), T), value, dtype=torch.long)
    for k, r in enumerate(rows):
        out[k, :len(r)] = torch.tensor(r)
    return out


def ndcg10(model, users, inputs, targets, L):
    """Mean NDCG@10 over users: full ranking, the user's input items excluded."""
    total = 0.0
    with torch.no_grad():
        for b in range(0, len(users), 256):
            us = users[b:b + 256]
            ids = pad_right([inputs[u][-L:] for u in us], 0)
            pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
            h = model.hidden(ids, pos)
            last = (ids != 0).sum(1) - 1
            sc = h[torch.arange(len(us)), last] @ model.table().T
            sc[:, 0] = -1e9
            for k, u in enumerate(us):
                sc[k, torch.tensor(inputs[u])] = -1e9
            tgt = torch.tensor([targets[u] for u in us])
            rank = (sc > sc[torch.arange(len(us)), tgt].unsqueeze(1)).sum(1)
            gain = 1.0 / torch.log2(rank.double() + 2)
            total += float(torch.where(rank < 10, gain, torch.zeros_like(gain)).sum())
    return total / len(users)


def cmd_train(data, epochs, seed, threads=2, patience=0):
    torch.manual_seed(seed)
    random.seed(seed)
    torch.set_num_threads(threads)
    seqs = {}
    for line in open(data):
        u, i = line.split()
        seqs.setdefault(int(u), []).append(int(i))
    users = sorted(seqs)
    n_items = max(max(s) for s in seqs.values())
    L = 200
    train = {u: s[:-2] for u, s in seqs.items()}
    model = SASRec(n_items, L, 64, 2, 1, 0.1)
    model.init_small(0.02)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    best, best_epoch, best_state, waited = -1.0, 0, None, 0
    for ep in range(1, epochs + 1):
        model.train()
        order = users[:]
        random.shuffle(order)
        total, batches = 0.0, 0
        for b in range(0, len(order), 128):
            rows = [train[u][-L - 1:] for u in order[b:b + 128]]
            rows = [r for r in rows if len(r) >= 2]
            ids = pad_right([r[:-1] for r in rows], 0)
            labels = pad_right([r[1:] for r in rows], -100)
            pos = torch.arange(ids.shape[1]).unsqueeze(0).expand_as(ids)
            # Scores only where there is a label: the same mean cross-entropy as over the
            # whole padded batch with ignore_index, without the padding positions' GEMM.
            real = labels != -100
            logits = model.hidden(ids, pos)[real] @ model.table().T
            loss = loss_fn(logits, labels[real])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            batches += 1
        model.eval()
        valid = ndcg10(model, users, train, {u: s[-2] for u, s in seqs.items()}, L)
        print(f'epoch {ep} loss {total / batches:.5f} validation ndcg@10 {valid:.4f}',
              flush=True)
        if valid > best:
            best, best_epoch, waited = valid, ep, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if patience and waited >= patience:
                print(f'no improvement in {patience} epochs; stopping after epoch {ep}')
                break
    model.load_state_dict(best_state)
    model.eval()
    test = ndcg10(model, users, {u: s[:-1] for u, s in seqs.items()},
                  {u: s[-1] for u, s in seqs.items()}, L)
    print(f'best epoch {best_epoch} validation ndcg@10 {best:.4f} test ndcg@10 {test:.4f}',
          flush=True)
    return 0


def main(argv):
    if len(argv) >= 3 and argv[0] == 'forward':
        return cmd_forward(argv[1], argv[2], int(argv[3]) if len(argv) > 3 else 50)
    if len(argv) >= 4 and argv[0] == 'train':
        return cmd_train(argv[1], int(argv[2]), int(argv[3]),
                         int(argv[4]) if len(argv) > 4 else 2,
                         int(argv[5]) if len(argv) > 5 else 0)
    print(__doc__)
    return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
