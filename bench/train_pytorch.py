#!/usr/bin/python3
"""train_pytorch.py - the PyTorch anchor for `truthgpt bench train`.

Trains the same GPT-2 as truthgpt (docs/architecture.md "Model":
pre-LayerNorm, learned positions, fused QKV, causal attention, GELU tanh,
4x MLP, final LayerNorm, LM head tied to the token embedding; same presets, B, T, vocabulary; AdamW
betas (0.9, 0.95), weight decay 0.1 on 2-D tensors, clip 1.0) on synthetic
tokens, in fp32 or bf16 autocast, and prints tokens/s and a JSON line.

Run with Debian's python (/usr/bin/python3 has python3-torch). PyTorch's best
CPU setting on this machine, checked rather than assumed:
  - the only OpenBLAS installed is the OpenMP build (libopenblas0-openmp; see
    `update-alternatives --display libblas.so.3-x86_64-linux-gnu`), so
    torch's OpenMP pool and BLAS share one pool instead of fighting;
  - OMP_WAIT_POLICY=PASSIVE (set below before torch loads, unless already set)
    so idle OpenMP threads sleep rather than spin against other work;
  - torch.set_num_threads(--threads, default 2);
  - AdamW with foreach=True (torch 1.13 has no fused CPU AdamW);
  - bf16: torch.autocast("cpu", bfloat16), matmuls through oneDNN.
bench/compare_train.sh runs this and ours back to back.
"""
import argparse
import json
import math
import os
import resource
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the environment is set)
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

PRESETS = {  # name: (L, H, C, T, V, B) as `truthgpt bench train` uses them
    "tiny": (4, 4, 256, 256, 8192, 8),
    "small": (6, 6, 384, 256, 8192, 8),
    "gpt2": (12, 12, 768, 256, 50257, 4),
}


class Block(nn.Module):
    def __init__(self, C, H):
        super().__init__()
        self.H = H
        self.ln_1 = nn.LayerNorm(C, eps=1e-5)
        self.c_attn = nn.Linear(C, 3 * C)
        self.c_proj = nn.Linear(C, C)
        self.ln_2 = nn.LayerNorm(C, eps=1e-5)
        self.c_fc = nn.Linear(C, 4 * C)
        self.mlp_proj = nn.Linear(4 * C, C)

    def forward(self, x, mask):
        B, T, C = x.shape
        H = self.H
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q = q.view(B, T, H, C // H).transpose(1, 2)
        k = k.view(B, T, H, C // H).transpose(1, 2)
        v = v.view(B, T, H, C // H).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // H))
        att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        x = x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))
        return x


class GPT(nn.Module):
    def __init__(self, L, H, C, T, V):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(T, C)
        self.h = nn.ModuleList(Block(C, H) for _ in range(L))
        self.ln_f = nn.LayerNorm(C, eps=1e-5)
        self.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1), persistent=False)
        # GPT-2 initialisation: N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln" in name:
                nn.init.ones_(p)
            else:
                std = 0.02 / math.sqrt(2 * L) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets):
        B, T = idx.shape
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for blk in self.h:
            x = blk(x, self.mask)
        x = self.ln_f(x)
        logits = x @ self.wte.weight.t()  # tied LM head
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


def synthetic_tokens(n, V, seed):
    """A learnable stream: each token is followed by one of 4 seeded successors."""
    g = torch.Generator().manual_seed(seed)
    succ = torch.randint(0, V, (V, 4), generator=g)
    pick = torch.randint(0, 4, (n,), generator=g)
    out = torch.empty(n, dtype=torch.long)
    t = 0
    for i in range(n):
        out[i] = t
        t = int(succ[t, pick[i]])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="small", choices=sorted(PRESETS))
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--batch", type=int)
    ap.add_argument("--ctx", type=int)
    ap.add_argument("--vocab", type=int)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (after 2 warm-up steps)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="last line: a JSON object")
    a = ap.parse_args()

    L, H, C, T, V, B = PRESETS[a.preset]
    T, V, B = a.ctx or T, a.vocab or V, a.batch or B
    if min(T, V, B, a.steps) <= 0:
        ap.error("--batch, --ctx, --vocab and --steps must be positive")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    model = GPT(L, H, C, T, V)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=6e-4, betas=(0.9, 0.95), eps=1e-8, foreach=True)
    warm = 2
    data = synthetic_tokens((warm + a.steps) * B * T + 1, V, a.seed)

    def step(s):
        chunk = data[s * B * T: (s + 1) * B * T + 1]
        x, y = chunk[:-1].view(B, T), chunk[1:].view(B, T)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
            loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.item()

    for s in range(warm):
        step(s)
    t0, c0 = time.perf_counter(), time.process_time()
    for s in range(warm, warm + a.steps):
        loss = step(s)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    tok_s = a.steps * B * T / dt
    n_params = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()
    flops_tok = 6 * n_params + 12 * L * C * T
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"pytorch {torch.__version__} {a.preset} {a.dtype} B={B} T={T} V={V} threads={a.threads}: "
          f"{tok_s:.0f} tokens/s, {dt / a.steps * 1e3:.0f} ms/step, {flops_tok * tok_s / 1e9:.1f} GFLOP/s, "
          f"loss {loss:.4f}, peak RSS {rss:.0f} MB; {a.steps * B * T / cpu:.0f} tokens per CPU-second")
    if a.json:
        print(json.dumps({"impl": "pytorch", "preset": a.preset, "dtype": a.dtype, "B": B, "T": T, "V": V,
                          "tok_per_s": round(tok_s, 1), "gflops": round(flops_tok * tok_s / 1e9, 1),
                          "loss": round(loss, 4), "peak_rss_mb": round(rss, 1),
                          "tok_per_cpu_s": round(a.steps * B * T / cpu, 1)}))


if __name__ == "__main__":
    sys.exit(main())
