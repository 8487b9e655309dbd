#!/usr/bin/python3
"""make_seeds.py — writes the seed corpora of the fuzz targets into
tests/fuzz/corpus/<target>/ (run once; the files are committed). Small
valid inputs of every format plus a few near-misses, so the fuzzers start
from inputs that reach deep into each parser. Standard library only.
Usage: /usr/bin/python3 tests/fuzz/make_seeds.py [path/to/truthgpt]
"""
import json, os, struct, subprocess, sys, tempfile

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors(tensors, meta=None):
    hdr, blobs, off = {}, [], 0
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blobs.append(raw)
    if meta:
        hdr["__metadata__"] = meta
    h = json.dumps(hdr).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def f32(n, v=0.5):
    return struct.pack("<%df" % n, *([v] * n))


# --- safetensors: the 1-layer C=2 T=2 V=3 model the target checks against
C, T, V = 2, 2, 3
model = [("transformer.wte.weight", "F32", [V, C], f32(V * C)), ("transformer.wpe.weight", "F32", [T, C], f32(T * C))]
for nm, shape in [("ln_1.weight", [C]), ("ln_1.bias", [C]), ("attn.c_attn.weight", [C, 3 * C]), ("attn.c_attn.bias", [3 * C]),
                  ("attn.c_proj.weight", [C, C]), ("attn.c_proj.bias", [C]), ("ln_2.weight", [C]), ("ln_2.bias", [C]),
                  ("mlp.c_fc.weight", [C, 4 * C]), ("mlp.c_fc.bias", [4 * C]), ("mlp.c_proj.weight", [4 * C, C]),
                  ("mlp.c_proj.bias", [C])]:
    n = 1
    for d in shape:
        n *= d
    model.append(("transformer.h.0." + nm, "F32", shape, f32(n)))
model += [("transformer.ln_f.weight", "F32", [C], f32(C)), ("transformer.ln_f.bias", "F32", [C], f32(C))]
put("fuzz_safetensors", "tiny_model", safetensors(model, {"format": "pt"}))
put("fuzz_safetensors", "half_types", safetensors([("a", "F16", [2, 2], b"\x00\x3c" * 4), ("b", "BF16", [3], b"\x80\x3f" * 3),
                                                    ("c", "I64", [1], b"\x01" + b"\x00" * 7), ("d", "U8", [0], b"")]))
put("fuzz_safetensors", "nan", safetensors([("transformer.wte.weight", "F32", [V, C], f32(V * C, float("nan")))]))
put("fuzz_safetensors", "huge_shape", safetensors([("t", "F32", [2 ** 62], b"")]))

# --- config.json
cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "activation_function": "gelu_new", "vocab_size": 257,
       "n_positions": 16, "n_ctx": 16, "n_embd": 32, "n_layer": 1, "n_head": 2, "layer_norm_epsilon": 1e-05,
       "bos_token_id": 256, "eos_token_id": 256}
put("fuzz_config", "tiny", json.dumps(cfg, indent=2))
put("fuzz_config", "vocab_max", json.dumps(dict(cfg, vocab_size=2147483647)))
put("fuzz_config", "layers_3000", json.dumps(dict(cfg, n_layer=3000)))
put("fuzz_config", "no_eos", json.dumps({k: v for k, v in cfg.items() if k not in ("eos_token_id", "bos_token_id")}))

# --- GPT-2 encoder.json + NUL + vocab.bpe, with the 256 byte tokens
bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + list(range(ord("\xae"), ord("\xff") + 1))
cs, n = bs[:], 0
for b in range(256):
    if b not in bs:
        bs.append(b)
        cs.append(256 + n)
        n += 1
byte_tok = [chr(c) for c in cs]
enc = {t: i for i, t in enumerate(byte_tok)}
merges = [("H", "e"), ("l", "l"), ("He", "ll"), ("Hell", "o"), ("\u0120", "w"), ("\u0120w", "o")]
for a, b in merges:
    enc[a + b] = len(enc)
enc["<|endoftext|>"] = len(enc)
vocab = "#version: 0.2\n" + "".join("%s %s\n" % m for m in merges)
put("fuzz_gpt2_files", "tiny", json.dumps(enc).encode() + b"\0" + vocab.encode())

# --- tokenizer.json (Hugging Face): the same vocabulary
tok = {"version": "1.0", "truncation": None, "padding": None,
       "added_tokens": [{"id": len(enc) - 1, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
                         "rstrip": False, "normalized": False, "special": True}],
       "normalizer": None, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
       "post_processor": None, "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
       "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "", "end_of_word_suffix": "",
                 "fuse_unk": False, "byte_fallback": False, "vocab": {k: v for k, v in enc.items() if k != "<|endoftext|>"},
                 "merges": ["%s %s" % m for m in merges]}}
put("fuzz_tokenizer_json", "tiny", json.dumps(tok))
tok2 = json.loads(json.dumps(tok))
tok2["model"]["merges"] = [list(m) for m in merges]  # the newer list-of-pairs form
put("fuzz_tokenizer_json", "pairs", json.dumps(tok2))

# --- shards
def shard(bpt, vocab, eot, ids, reserved=0):
    h = struct.pack("<IIIIII", 0x4b4f5447, 1, bpt, vocab, eot, reserved) + struct.pack("<Q", len(ids)) + b"\x11" * 32
    fmt = "<%d%s" % (len(ids), "H" if bpt == 2 else "I")
    return h + struct.pack(fmt, *ids)
put("fuzz_shard", "bytes", shard(2, 257, 256, [256] + list(b"Hello, shard!") + [256] + list(b"second doc")))
put("fuzz_shard", "wide", shard(4, 70000, 69999, [69999, 1, 65536, 69998, 5]))
put("fuzz_shard", "bad_id", shard(2, 257, 256, [256, 300, 1]))

# --- JSONL lines (first byte: field selector)
put("fuzz_jsonl", "text", b"\x00" + json.dumps({"text": "hello \u00e9", "id": 12, "created_at": "2020-01-01"}).encode())
put("fuzz_jsonl", "content", b"\x01" + json.dumps({"content": "x", "id": "a", "published": "p"}).encode())
put("fuzz_jsonl", "nested", b"\x02" + json.dumps({"post": {"body": {"text": "deep\u0000nul"}, "date": "d"}, "id_str": "9"}).encode())
put("fuzz_jsonl", "escapes", b"\x00" + b'{"text":"\\ud83d\\ude00 \\n\\t\\"q\\"","timestamp":1}')

# --- archive members (first byte: even X, odd Mastodon)
tweets = ('window.YTD.tweets.part0 = [ {"tweet" : {"id_str" : "1001", "created_at" : "Wed Oct 10 20:19:24 +0000 2018", '
          '"full_text" : "Hello &amp; welcome &lt;3 https://t.co/abc123", "entities" : {"urls" : [ {"url" : "https://t.co/abc123", '
          '"expanded_url" : "https://example.com/post"} ], "media" : [ {"url" : "https://t.co/m", "expanded_url" : "x"} ]}}}, '
          '{"tweet" : {"id_str" : "1002", "full_text" : "RT @alice: hi", "entities" : {}}} ]')
put("fuzz_archive_member", "tweets_js", b"\x00" + tweets.encode())
outbox = {"type": "OrderedCollection", "orderedItems": [
    {"type": "Create", "published": "2023-05-01T10:00:00Z",
     "object": {"id": "https://m.example/1", "type": "Note", "content": "<p>First &amp; more.</p><p>a<br />b &#127881;</p>"}},
    {"type": "Announce", "object": "https://other.example/99"},
    {"type": "Create", "object": {"id": "q", "type": "Question", "content": "<p>?</p>"}},
    {"type": "Create", "object": {"id": "s", "type": "Note", "content": "<span class=\"invisible\">https://</span><a href=\"x\">l</a>"}}]}
put("fuzz_archive_member", "outbox_json", b"\x01" + json.dumps(outbox).encode())

# --- OpenAI bodies (first byte: even chat, odd completions)
chat = {"model": "m", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                                   {"role": "assistant", "content": "hello"}, {"role": "developer", "content": "x"}],
        "max_tokens": 5, "temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "frequency_penalty": 0.5,
        "presence_penalty": -0.5, "seed": 42, "stop": ["\n\n", "END"], "stream": True, "stream_options": {"include_usage": True},
        "logprobs": True, "top_logprobs": 3, "n": 1, "user": "u"}
put("fuzz_openai", "chat_all_fields", b"\x00" + json.dumps(chat).encode())
put("fuzz_openai", "chat_min", b"\x00" + b'{"messages":[{"role":"user","content":"hi"}]}')
put("fuzz_openai", "completion", b"\x01" + json.dumps({"prompt": "Once upon", "max_tokens": 3, "logprobs": 2, "echo": False,
                                                        "stop": "x", "suffix": None}).encode())
put("fuzz_openai", "completion_ids", b"\x01" + json.dumps({"prompt": [1, 2, 3, 255], "max_tokens": 1}).encode())

# --- chat template + stop streamer
put("fuzz_chat_stream", "basic", b"END\x01\n\n\x01user\x02hello there\x03assistant\x02Hi! How can I help?END more\x03")
put("fuzz_chat_stream", "utf8", "\u20ac\x01system\x02caf\u00e9 \u20ac \U0001f600\x03user\x02\u20ac\u20ac\x03".encode() + b"\xe2\x82")
print("seeds written under", root)
