#!/usr/bin/python3
"""check_hf_checkpoint.py — a directory truthgpt writes is a Hugging Face
GPT-2 directory: this loads one the way Hugging Face's GPT2LMHeadModel does
(config.json's GPT2Config fields; model.safetensors under the hub's names,
"transformer." prefix, Conv1D weights [in, out], fused q|k|v, tied head),
with nothing but the standard library and torch, and prints the mean loss of
`truthgpt eval --batch B --ctx T --batches N` on a token shard.

Regenerates tests/fixtures/hf/ours_expected.json, which
tests/e2e_hf_import.sh compares `truthgpt eval` on the committed checkpoint
tests/fixtures/hf/ours_tiny with (1e-5), so the check needs no Python when it
runs. ours_tiny was made by truthgpt itself:
    head -c 20000 /usr/share/games/fortunes/science > t.txt
    tail -c 1200 /usr/share/games/fortunes/people > v.txt
    truthgpt tokenize --bytes t.txt --out data; truthgpt tokenize --bytes v.txt --out val
    truthgpt train --preset tiny --layers 1 --heads 2 --dim 32 --ctx 16 --data data --batch 4 \\
      --steps 20 --warmup 2 --lr 3e-3 --eval-every 0 --threads 1 --seed 3 --out run
    (config.json and model.safetensors of run/checkpoint-20; val/train-000000.tok is ours_val.tok)

Run: /usr/bin/python3 tests/ref/check_hf_checkpoint.py DIR SHARD [B T N] [--write FILE]
"""
import json
import math
import struct
import sys

import torch
import torch.nn.functional as F


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr.pop("__metadata__", None)
    data = bytearray(raw[8 + n:])
    dt = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
    out = {}
    for k, v in hdr.items():
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(data[a:b], dtype=dt[v["dtype"]]).reshape(v["shape"]).float().clone()
    return out


def load(d):
    """GPT2LMHeadModel's state from an HF directory; asserts the layout."""
    cfg = json.load(open(d + "/config.json"))
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"], cfg
    assert cfg.get("activation_function", "gelu_new") == "gelu_new"
    assert cfg.get("n_inner") in (None, 4 * cfg["n_embd"])
    assert cfg.get("tie_word_embeddings", True) and cfg.get("scale_attn_weights", True)
    w = read_safetensors(d + "/model.safetensors")
    L, C, V, T = cfg["n_layer"], cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    shapes = {"wte.weight": (V, C), "wpe.weight": (T, C), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    for l in range(L):
        for k, s in [("ln_1.weight", (C,)), ("ln_1.bias", (C,)), ("attn.c_attn.weight", (C, 3 * C)),
                     ("attn.c_attn.bias", (3 * C,)), ("attn.c_proj.weight", (C, C)), ("attn.c_proj.bias", (C,)),
                     ("ln_2.weight", (C,)), ("ln_2.bias", (C,)), ("mlp.c_fc.weight", (C, 4 * C)),
                     ("mlp.c_fc.bias", (4 * C,)), ("mlp.c_proj.weight", (4 * C, C)), ("mlp.c_proj.bias", (C,))]:
            shapes[f"h.{l}.{k}"] = s
    p = {}
    for k, s in shapes.items():
        t = w.get("transformer." + k)
        assert t is not None, f"missing transformer.{k}"
        assert tuple(t.shape) == s, (k, tuple(t.shape), s)
        p[k] = t
    return cfg, p


def forward(cfg, p, idx):
    L, NH, C, eps = cfg["n_layer"], cfg["n_head"], cfg["n_embd"], cfg["layer_norm_epsilon"]
    Bb, Tt = idx.shape
    HS = C // NH
    x = p["wte.weight"][idx] + p["wpe.weight"][torch.arange(Tt)]
    mask = torch.tril(torch.ones(Tt, Tt, dtype=torch.bool))
    for l in range(L):
        w = lambda n: p[f"h.{l}.{n}"]
        a = F.layer_norm(x, (C,), w("ln_1.weight"), w("ln_1.bias"), eps)
        q, k, v = ((a @ w("attn.c_attn.weight") + w("attn.c_attn.bias")).split(C, dim=2))
        q, k, v = (t.view(Bb, Tt, NH, HS).transpose(1, 2) for t in (q, k, v))
        att = ((q @ k.transpose(-2, -1)) / math.sqrt(HS)).masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(1, 2).reshape(Bb, Tt, C) @ w("attn.c_proj.weight") + w("attn.c_proj.bias")
        m = F.layer_norm(x, (C,), w("ln_2.weight"), w("ln_2.bias"), eps)
        h = F.gelu(m @ w("mlp.c_fc.weight") + w("mlp.c_fc.bias"), approximate="tanh")
        x = x + h @ w("mlp.c_proj.weight") + w("mlp.c_proj.bias")
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], eps)
    return x @ p["wte.weight"].t()


def shard_tokens(path):
    raw = open(path, "rb").read()
    magic, _, bpt = struct.unpack("<III", raw[:12])
    count = struct.unpack("<Q", raw[24:32])[0]
    assert magic == 0x4B4F5447 and bpt in (2, 4)
    return torch.tensor(struct.unpack(f"<{count}{'H' if bpt == 2 else 'I'}", raw[64:64 + count * bpt]))


def main():
    args = [a for a in sys.argv[1:]]
    out = None
    if "--write" in args:
        i = args.index("--write")
        out = args[i + 1]
        del args[i:i + 2]
    d, shard = args[0], args[1]
    B, T, N = (int(x) for x in args[2:5]) if len(args) >= 5 else (4, 16, 8)
    torch.set_num_threads(1)
    cfg, p = load(d)
    toks = shard_tokens(shard)
    n = min(N, len(toks) // (B * T))  # truthgpt eval: at most the windows the data hold
    tot = 0.0
    with torch.no_grad():
        for k in range(n):
            w = toks[k * B * T: k * B * T + B * T + 1].long()
            logits = forward(cfg, p, w[:-1].view(B, T))
            tot += F.cross_entropy(logits.view(-1, cfg["vocab_size"]), w[1:].reshape(-1), reduction="sum").item()
    loss = tot / (n * B * T)
    print(f"{loss:.9g}")
    if out:
        with open(out, "w") as f:
            json.dump({"model": d, "shard": shard, "batch": B, "ctx": T, "batches": N, "loss": loss}, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
