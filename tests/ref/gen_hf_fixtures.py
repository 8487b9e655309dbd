#!/usr/bin/python3
"""gen_hf_fixtures.py — small GPT-2 models written exactly as the Hugging Face
hub serves them, plus the numbers PyTorch computes with them, for
tests/e2e_hf_import.sh and tests/test_hf_import.c (docs/interop.md).

No `transformers` here (Debian has none): the GPT-2 forward is written out in
plain torch with the hub's tensor names and layout — Conv1D weights stored
[in, out], fused q|k|v in c_attn, gelu_new (tanh approximation), tied LM head,
learned positions — the same function as GPT2LMHeadModel.

Writes tests/fixtures/hf/:
  gpt2_f32/   F32, names without "transformer." (the hub's gpt2 files), the
              attn.bias [1,1,T,T] and attn.masked_bias [] buffers, no
              lm_head.weight; tokenizer as vocab.json + merges.txt
  gpt2_f16/   F16, "transformer." names (save_pretrained's) and an
              lm_head.weight equal to wte (tied); tokenizer.json
  gpt2_bf16/  BF16, no prefix, no buffers; encoder.json + vocab.bpe (GPT-2's
              original names)
  prompt_logits.json  gpt2_f32's logits (6 x V) at each position of PROMPT,
              also with ggml's fp16-table GELU (what llama.cpp computes)
  val.tok     a token shard (truthgpt's format) of random ids
  expected.json (and .tsv, for shell tests)  per model: the mean loss of `truthgpt eval --batch 2 --ctx 32
              --batches 2` on val.tok, and the 16 greedy tokens after PROMPT
              (with the smallest top-1/top-2 logit gap, so a reader can see
              ties are not a worry)
Each directory also has the hub's side files (tokenizer_config.json,
special_tokens_map.json, generation_config.json), which truthgpt ignores.

The F16/BF16 references run the fp32 forward on the rounded weights (what a
loader that widens them to fp32 computes), so the 1e-5 tolerance holds for
them too; expected.json also records each one's loss on the unrounded
weights, to show what the rounding itself costs.

Run: /usr/bin/python3 tests/ref/gen_hf_fixtures.py   (torch 1.13, CPU)
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

torch.set_num_threads(1)
L, NH, C, NPOS = 2, 4, 32, 32
EPS = 1e-5
B, T, BATCHES = 2, 32, 2
PROMPT = None  # set after the vocabulary is known
GEN = 16
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "fixtures", "hf")

# GPT-2's bytes <-> printable characters map (each byte that is not a visible
# Latin-1 character moves to 256+k), as in its encoder.py.
def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs])), bs


BYTE_CHAR, BYTE_ORDER = bytes_to_unicode()
# merges by hand, in rank order (each result is a token of its own)
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"), ("Ġ", "s"),
          ("r", "e"), ("a", "t"), ("e", "n"), ("Ġ", "w"), ("o", "r"), ("i", "s"), ("Ġ", "o"), ("in", "g"),
          ("Ġ", "c"), ("e", "s"), ("Ġ", "b"), ("Ġ", "f"), ("e", "d"), ("a", "n"), ("Ġa", "n"), ("Ġan", "d")]
VOCAB = [BYTE_CHAR[b] for b in BYTE_ORDER] + [a + b for a, b in MERGES] + ["<|endoftext|>"]
V = len(VOCAB)  # 281: odd, so the C side pads it
EOT = V - 1
PROMPT = [EOT, 270, 101, 13, 200, 258]


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def hub_params(seed):
    """The GPT-2 state dict under the hub's names (no prefix), fp32.
    Scales larger than GPT-2's 0.02 so the logits are peaked (greedy
    decoding far from ties) and biases and LayerNorm weights matter."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, std: torch.randn(*s, generator=g) * std
    p = {"wte.weight": r(V, C, std=0.3), "wpe.weight": r(NPOS, C, std=0.8)}
    for l in range(L):
        h = f"h.{l}."
        p[h + "ln_1.weight"] = 1 + r(C, std=0.1)
        p[h + "ln_1.bias"] = r(C, std=0.05)
        p[h + "attn.c_attn.weight"] = r(C, 3 * C, std=0.25)  # Conv1D: [in, out]
        p[h + "attn.c_attn.bias"] = r(3 * C, std=0.05)
        p[h + "attn.c_proj.weight"] = r(C, C, std=0.15)
        p[h + "attn.c_proj.bias"] = r(C, std=0.05)
        p[h + "ln_2.weight"] = 1 + r(C, std=0.1)
        p[h + "ln_2.bias"] = r(C, std=0.05)
        p[h + "mlp.c_fc.weight"] = r(C, 4 * C, std=0.2)
        p[h + "mlp.c_fc.bias"] = r(4 * C, std=0.05)
        p[h + "mlp.c_proj.weight"] = r(4 * C, C, std=0.1)
        p[h + "mlp.c_proj.bias"] = r(C, std=0.05)
    p["ln_f.weight"] = 1 + r(C, std=0.1)
    p["ln_f.bias"] = r(C, std=0.05)
    return p


def forward(p, idx):
    """GPT2LMHeadModel's logits for idx (B, T), from hub-named fp32 weights."""
    Bb, Tt = idx.shape
    x = p["wte.weight"][idx] + p["wpe.weight"][torch.arange(Tt)]
    mask = torch.tril(torch.ones(Tt, Tt, dtype=torch.bool))
    HS = C // NH
    for l in range(L):
        w = lambda n: p[f"h.{l}.{n}"]
        a = F.layer_norm(x, (C,), w("ln_1.weight"), w("ln_1.bias"), EPS)
        qkv = a @ w("attn.c_attn.weight") + w("attn.c_attn.bias")  # Conv1D: x @ W + b
        q, k, v = (t.view(Bb, Tt, NH, HS).transpose(1, 2) for t in qkv.split(C, dim=2))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(HS)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(Bb, Tt, C)
        x = x + y @ w("attn.c_proj.weight") + w("attn.c_proj.bias")
        m = F.layer_norm(x, (C,), w("ln_2.weight"), w("ln_2.bias"), EPS)
        x = x + gelu_new(m @ w("mlp.c_fc.weight") + w("mlp.c_fc.bias")) @ w("mlp.c_proj.weight") + w("mlp.c_proj.bias")
    x = F.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], EPS)
    return x @ p["wte.weight"].t()  # tied head


def eval_loss(p, toks):
    """Mean cross-entropy over micro-batches k < BATCHES, each reading
    tokens [k*B*T, k*B*T + B*T + 1) (truthgpt's data order, shuffle off)."""
    tot, n = 0.0, 0
    with torch.no_grad():
        for k in range(BATCHES):
            w = toks[k * B * T: k * B * T + B * T + 1]
            logits = forward(p, w[:-1].view(B, T))
            tot += F.cross_entropy(logits.view(-1, V), w[1:].reshape(-1), reduction="sum").item()
            n += B * T
    return tot / n


def greedy(p, prompt, n):
    ids, gap = list(prompt), float("inf")
    with torch.no_grad():
        for _ in range(n):
            logits = forward(p, torch.tensor([ids]))[0, -1]
            top = torch.topk(logits, 2).values
            gap = min(gap, (top[0] - top[1]).item())
            ids.append(int(torch.argmax(logits)))  # ties: the lowest id, as ours
    return ids[len(prompt):], gap


DT = {"F32": (torch.float32, torch.float32), "F16": (torch.float16, torch.float16),
      "BF16": (torch.bfloat16, torch.int16)}


def write_safetensors(path, tensors, dtype):
    """safetensors as the `safetensors` library writes it: u64 header
    length, JSON header padded with spaces to 8 bytes, data in header order.
    tensors: name -> fp32 tensor, stored as dtype."""
    hdr, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        tdt, view = DT[dtype]
        raw = t.reshape(-1).to(tdt).view(view).numpy().tobytes()
        hdr[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def rounded(p, dtype):
    return {k: v.to(DT[dtype][0]).to(torch.float32) for k, v in p.items()}


def config():
    # The hub's gpt2 config.json, scaled down; every field as it ships.
    return {
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
        "bos_token_id": EOT, "embd_pdrop": 0.1, "eos_token_id": EOT, "initializer_range": 0.02,
        "layer_norm_epsilon": EPS, "model_type": "gpt2", "n_ctx": NPOS, "n_embd": C, "n_head": NH,
        "n_inner": None, "n_layer": L, "n_positions": NPOS, "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.1, "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
        "summary_activation": None, "summary_first_dropout": 0.1, "summary_proj_to_labels": True,
        "summary_type": "cls_index", "summary_use_proj": True,
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "transformers_version": "4.26.0", "use_cache": True, "vocab_size": V,
    }


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_tokenizer(d, style):
    vocab = {tok: i for i, tok in enumerate(VOCAB)}
    merges = "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES)
    if style == "vocab.json":
        write_json(os.path.join(d, "vocab.json"), vocab)
        open(os.path.join(d, "merges.txt"), "w").write(merges)
    elif style == "encoder.json":
        write_json(os.path.join(d, "encoder.json"), vocab)
        open(os.path.join(d, "vocab.bpe"), "w").write(merges)
    else:  # the hub's tokenizer.json for gpt2
        bl = lambda ps: {"type": "ByteLevel", "add_prefix_space": ps, "trim_offsets": True, "use_regex": True}
        write_json(os.path.join(d, "tokenizer.json"), {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": EOT, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": True, "special": True}],
            "normalizer": None, "pre_tokenizer": bl(False), "post_processor": bl(True), "decoder": bl(True),
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                      "merges": [f"{a} {b}" for a, b in MERGES]}})
    write_json(os.path.join(d, "tokenizer_config.json"),
               {"add_prefix_space": False, "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
                "model_max_length": NPOS, "tokenizer_class": "GPT2Tokenizer", "unk_token": "<|endoftext|>"})
    write_json(os.path.join(d, "special_tokens_map.json"),
               {"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"})
    write_json(os.path.join(d, "generation_config.json"),
               {"_from_model_config": True, "bos_token_id": EOT, "eos_token_id": EOT})


def write_shard(path, ids):
    # truthgpt's token shard: 64-byte header (magic "TGTK", version 1, bytes
    # per token, vocab size, end-of-text id, 0, u64 count, tokenizer SHA-256
    # left zero), then the ids as u16.
    h = struct.pack("<IIIIIIQ", 0x4B4F5447, 1, 2, V, EOT, 0, len(ids)) + b"\0" * 32
    with open(path, "wb") as f:
        f.write(h + struct.pack(f"<{len(ids)}H", *ids))


def main():
    os.makedirs(OUT, exist_ok=True)
    g = torch.Generator().manual_seed(7)
    toks = torch.randint(0, V, (BATCHES * B * T + 1 + 40,), generator=g)
    write_shard(os.path.join(OUT, "val.tok"), toks.tolist())
    base = hub_params(2024)
    expected = {"eval": {"batch": B, "ctx": T, "batches": BATCHES}, "prompt": PROMPT, "models": {}}
    expected["models"]["loss_unrounded"] = eval_loss(base, toks)
    for name, dtype, prefix, buffers, lm_head, tok in [
        ("gpt2_f32", "F32", "", True, False, "vocab.json"),
        ("gpt2_f16", "F16", "transformer.", False, True, "tokenizer.json"),
        ("gpt2_bf16", "BF16", "", False, False, "encoder.json"),
    ]:
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        p = rounded(base, dtype)
        st = {prefix + k: v for k, v in p.items()}
        if buffers:  # what older GPT2Attention saved beside the weights
            for l in range(L):
                st[f"{prefix}h.{l}.attn.bias"] = torch.tril(torch.ones(NPOS, NPOS)).view(1, 1, NPOS, NPOS)
                st[f"{prefix}h.{l}.attn.masked_bias"] = torch.tensor(-1e4)
        if lm_head:
            st["lm_head.weight"] = p["wte.weight"].clone()
        write_safetensors(os.path.join(d, "model.safetensors"), st, dtype)
        cfg = config()
        cfg["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[dtype]
        write_json(os.path.join(d, "config.json"), cfg)
        write_tokenizer(d, tok)
        loss = eval_loss(p, toks)
        ids, gap = greedy(p, PROMPT, GEN)
        expected["models"][name] = {"dtype": dtype, "loss": loss, "greedy": ids, "min_top2_gap": gap}
        print(f"{name}: loss {loss:.7f}  greedy {ids}  min gap {gap:.4f}")
    write_json(os.path.join(OUT, "expected.json"), expected)
    # logits of gpt2_f32 at every prompt position: what llama.cpp must give
    # for its GGUF export (tests/gguf_check.mjs) and ours (test_hf_import.c)
    # "logits_ggml_gelu": the same with GELU as ggml's CPU backend computes
    # it, from a table of fp16 values: fp16(gelu(fp16(x))). llama.cpp must
    # match that to 1e-4; the exact logits differ from it by ~1e-3.
    global gelu_new
    exact_gelu = gelu_new
    with torch.no_grad():
        lg = forward(rounded(base, "F32"), torch.tensor([PROMPT]))[0]
        gelu_new = lambda x: exact_gelu(x.half().float()).half().float()
        lg16 = forward(rounded(base, "F32"), torch.tensor([PROMPT]))[0]
        gelu_new = exact_gelu
    rows = lambda t: [[float("%.7g" % x) for x in row] for row in t.tolist()]
    with open(os.path.join(OUT, "prompt_logits.json"), "w") as f:
        json.dump({"model": "gpt2_f32", "prompt": PROMPT, "logits": rows(lg), "logits_ggml_gelu": rows(lg16)}, f)
        f.write("\n")
    # the same for shell tests: NAME LOSS GREEDY-IDS (comma-separated)
    with open(os.path.join(OUT, "expected.tsv"), "w") as f:
        f.write("# model\tloss\tgreedy (after prompt %s)\n" % ",".join(map(str, PROMPT)))
        for name, e in expected["models"].items():
            if isinstance(e, dict):
                f.write(f"{name}\t{e['loss']:.9g}\t{','.join(map(str, e['greedy']))}\n")


if __name__ == "__main__":
    main()
