#!/usr/bin/python3
"""gen_gpt2_ref.py — writes tests/ref/gpt2_tiny.bin, the PyTorch reference
that tests/test_model_ref.c compares the C model against.

GPT-2 (HF GPT2LMHeadModel semantics: pre-LN, fused qkv Conv1D [in, out],
causal attention, GELU tanh, tied LM head, LayerNorm eps 1e-5) written in
plain torch, fp32, for L=2 NH=4 C=32 V=300 n_ctx=24, batches B=4 T=16
(V > 256 so the vocabulary pads to 320 on the C side).

The initial weights are not stored: both sides compute them from the same
integer hash (init_value below, mirrored in test_model_ref.c), which keeps
the fixture small (428 KB). Stored: tokens, logits, loss and every
gradient; the weighted-loss case (some targets weight 0): loss and the
gradients of wte, wpe, attprojb, lnfb; a packed-segments case: loss, the
logits at every position for every SEG_STRIDE-th vocabulary column, and the
gradients of wpe and qkvb; and the losses, grad norms and every parameter
after 5 AdamW steps with warm-up, cosine decay, weight decay and clipping
active.

Run: /usr/bin/python3 tests/ref/gen_gpt2_ref.py  (torch 1.13, CPU)
File: b"TGREF001", int32 count, then per tensor: int32 name length, name,
int32 dtype (0 float32, 1 int32), int32 ndim, int32 dims[ndim], raw data
(little-endian).
"""
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
L, NH, C, V, NCTX, B, T = 2, 4, 32, 300, 24, 4, 16
SEG_STRIDE = 5  # s.logits keeps vocabulary columns 0, 5, ..., 295
STEPS, LR, WARMUP, MIN_FRAC, WD, CLIP = 5, 1e-3, 2, 0.1, 0.1, 1.75
EPS = 1e-5

# (name, shape, kind) in tg_params order; kind picks the init distribution.
SPECS = [
    ("wte", (V, C), "w"), ("wpe", (NCTX, C), "w"),
    ("ln1w", (L, C), "lnw"), ("ln1b", (L, C), "b"),
    ("qkvw", (L, C, 3 * C), "w"), ("qkvb", (L, 3 * C), "b"),
    ("attprojw", (L, C, C), "w"), ("attprojb", (L, C), "b"),
    ("ln2w", (L, C), "lnw"), ("ln2b", (L, C), "b"),
    ("fcw", (L, C, 4 * C), "w"), ("fcb", (L, 4 * C), "b"),
    ("fcprojw", (L, 4 * C, C), "w"), ("fcprojb", (L, C), "b"),
    ("lnfw", (C,), "lnw"), ("lnfb", (C,), "b"),
]
DECAY = {"wte", "wpe", "qkvw", "attprojw", "fcw", "fcprojw"}


def init_value(k, n):
    """Uniform in [-1, 1) from a splitmix64 hash of (tensor k, element i)."""
    M = (1 << 64) - 1
    i = np.arange(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = np.uint64((k * 0x9E3779B97F4A7C15 + 12345) & M) + i * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    u = (x >> np.uint64(40)).astype(np.float64) / float(1 << 24)
    return (2.0 * u - 1.0).astype(np.float32)


def init_params():
    ps = {}
    for k, (name, shape, kind) in enumerate(SPECS):
        u = init_value(k, int(np.prod(shape)))
        # larger than GPT-2's 0.02 so attention and GELU are far from linear
        scale = {"w": np.float32(0.15), "b": np.float32(0.05), "lnw": np.float32(0.2)}[kind]
        val = u * scale
        if kind == "lnw":
            val = val + np.float32(1.0)
        ps[name] = torch.tensor(val.reshape(shape), requires_grad=True)
    return ps


def forward(p, idx, seg=None):
    Bb, Tt = idx.shape
    if seg is None:
        pos = torch.arange(Tt).expand(Bb, Tt)
        mask = torch.tril(torch.ones(Tt, Tt, dtype=torch.bool)).expand(Bb, 1, Tt, Tt)
    else:
        # runs of equal segment id: positions restart, attention stays inside
        start = torch.zeros(Bb, Tt, dtype=torch.long)
        for b in range(Bb):
            s = 0
            for t in range(Tt):
                if t > 0 and seg[b, t] != seg[b, t - 1]:
                    s = t
                start[b, t] = s
        pos = torch.arange(Tt).expand(Bb, Tt) - start
        j = torch.arange(Tt)
        mask = (j[None, None, :] <= j[None, :, None]) & (j[None, None, :] >= start[:, :, None])
        mask = mask[:, None]
    x = p["wte"][idx] + p["wpe"][pos]
    HS = C // NH
    for l in range(L):
        h = F.layer_norm(x, (C,), p["ln1w"][l], p["ln1b"][l], EPS)
        qkv = h @ p["qkvw"][l] + p["qkvb"][l]
        q, k, v = qkv.split(C, dim=2)
        q = q.view(Bb, Tt, NH, HS).transpose(1, 2)
        k = k.view(Bb, Tt, NH, HS).transpose(1, 2)
        v = v.view(Bb, Tt, NH, HS).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(Bb, Tt, C)
        x = x + (y @ p["attprojw"][l] + p["attprojb"][l])
        h = F.layer_norm(x, (C,), p["ln2w"][l], p["ln2b"][l], EPS)
        h = F.gelu(h @ p["fcw"][l] + p["fcb"][l], approximate="tanh")
        x = x + (h @ p["fcprojw"][l] + p["fcprojb"][l])
    x = F.layer_norm(x, (C,), p["lnfw"], p["lnfb"], EPS)
    return x @ p["wte"].t()


def lr_at(s):
    if s < WARMUP:
        return LR * (s + 1) / WARMUP
    lo = LR * MIN_FRAC
    return lo + 0.5 * (1 + math.cos(math.pi * (s - WARMUP) / (STEPS - WARMUP))) * (LR - lo)


def main():
    out = []

    def put(name, arr):
        out.append((name, np.ascontiguousarray(arr)))

    g = torch.Generator().manual_seed(1234)
    tokens = torch.randint(0, V, (STEPS * B * T + 1,), generator=g, dtype=torch.int64)
    put("tokens", tokens.numpy().astype(np.int32))

    # docs/architecture.md "Training contract": micro-batch k reads
    # [k*B*T, k*B*T + B*T + 1)
    def batch(k):
        w = tokens[k * B * T: k * B * T + B * T + 1]
        return w[:-1].view(B, T), w[1:].view(B, T)

    # 1. logits, loss, every gradient (plain mean)
    p = init_params()
    idx, tgt = batch(0)
    logits = forward(p, idx)
    loss = F.cross_entropy(logits.view(-1, V), tgt.reshape(-1))
    loss.backward()
    put("logits", logits.detach().numpy())
    put("loss", np.array([loss.item()], np.float32))
    for name, _, _ in SPECS:
        put("grad." + name, p[name].grad.numpy())

    # 2. per-token weights: masked mean sum(w*l)/sum(w)
    p = init_params()
    wts = (torch.rand(B, T, generator=g) > 0.4).float()
    wts[0, :5] = 0.0
    lt = F.cross_entropy(forward(p, idx).view(-1, V), tgt.reshape(-1), reduction="none")
    lw = (lt * wts.view(-1)).sum() / wts.sum()
    lw.backward()
    put("w.weights", wts.numpy())
    put("w.loss", np.array([lw.item()], np.float32))
    for name in ("wte", "wpe", "attprojb", "lnfb"):
        put("w.grad." + name, p[name].grad.numpy())

    # 3. packed segments: attention inside runs, positions restart
    p = init_params()
    seg = torch.zeros(B, T, dtype=torch.int64)
    seg[0, 6:] = 1
    seg[1, 3:9] = 1
    seg[1, 9:] = 2
    seg[2, 1:] = 5
    seg[3, 8:] = 0  # all one run
    lg = forward(p, idx, seg)
    ls = F.cross_entropy(lg.view(-1, V), tgt.reshape(-1))
    ls.backward()
    put("s.segments", seg.numpy().astype(np.int32))
    put("s.logits", lg.detach().numpy()[:, :, ::SEG_STRIDE])
    put("s.loss", np.array([ls.item()], np.float32))
    for name in ("wpe", "qkvb"):
        put("s.grad." + name, p[name].grad.numpy())

    # 4. five AdamW steps: warm-up, cosine, weight decay on 2-D weights, clipping
    p = init_params()
    decay = [p[n] for n, _, _ in SPECS if n in DECAY]
    other = [p[n] for n, _, _ in SPECS if n not in DECAY]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": other, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.95), eps=1e-8)
    losses, norms = [], []
    for s in range(STEPS):
        for gr in opt.param_groups:
            gr["lr"] = lr_at(s)
        opt.zero_grad()
        x, y = batch(s)
        loss = F.cross_entropy(forward(p, x).view(-1, V), y.reshape(-1))
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_([p[n] for n, _, _ in SPECS], CLIP)
        losses.append(loss.item())
        norms.append(norm.item())
        opt.step()
    print("losses", losses)
    print("grad norms", norms, "clip", CLIP)
    assert any(n > CLIP for n in norms) and any(n < CLIP for n in norms), "clip must trigger in some steps only"
    put("opt.hparams", np.array([LR, WARMUP, MIN_FRAC, WD, CLIP, STEPS], np.float32))
    put("opt.losses", np.array(losses, np.float32))
    put("opt.norms", np.array(norms, np.float32))
    for name, _, _ in SPECS:
        put("opt.param." + name, p[name].detach().numpy())

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpt2_tiny.bin")
    with open(path, "wb") as f:
        f.write(b"TGREF001")
        f.write(struct.pack("<i", len(out)))
        for name, arr in out:
            nb = name.encode()
            f.write(struct.pack("<i", len(nb)) + nb)
            dt = 0 if arr.dtype == np.float32 else 1
            assert arr.dtype in (np.float32, np.int32)
            f.write(struct.pack("<ii", dt, arr.ndim))
            f.write(struct.pack("<%di" % arr.ndim, *arr.shape))
            f.write(arr.astype("<f4" if dt == 0 else "<i4").tobytes())
    print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
