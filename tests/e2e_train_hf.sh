#!/usr/bin/env bash
# e2e_train_hf.sh — a checkpoint means in PyTorch what it means in truthgpt:
# trains a small model for a few steps, then reads config.json and
# model.safetensors with the Python standard library + PyTorch, runs Hugging
# Face's GPT-2 forward (Conv1D weights [in, out], fused q|k|v, gelu_new,
# tied head) written out here, and compares the mean loss of the first
# validation micro-batch with `truthgpt eval --batches 1` (1e-5 relative).
# Also checks optimizer.safetensors holds exp_avg./exp_avg_sq. for every
# weight. Exits 77 (CTest: skipped) when /usr/bin/python3 has no torch
# (scripts/setup.sh --torch installs it).
# Usage: tests/e2e_train_hf.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_train_hf.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
PY=/usr/bin/python3
"$PY" -c "import torch" 2>/dev/null || { echo "SKIP: no torch in $PY (scripts/setup.sh --torch)"; exit 77; }
W=$(mktemp -d /tmp/tg_e2e_hf_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"

head -c 60000 /usr/share/games/fortunes/science > t.txt || fail "fortunes missing"
tail -c 8000 /usr/share/games/fortunes/people > v.txt
"$TG" tokenize --bytes t.txt --out data >/dev/null && "$TG" tokenize --bytes v.txt --out val >/dev/null || fail "tokenize"
"$TG" train --preset tiny --layers 2 --heads 4 --dim 64 --ctx 32 --data data --batch 4 --steps 30 --warmup 5 --lr 3e-3 \
  --eval-every 0 --threads 1 --out run > train.log 2>&1 || { cat train.log; fail "train exited $?"; }
J=$("$TG" eval --model run --data val --batches 1 --batch 3 --ctx 32 --json --threads 1) || fail "eval exited $?"
OURS=$(echo "$J" | sed 's/.*"loss":\([^,}]*\).*/\1/')

"$PY" - run/checkpoint-30 val/train-000000.tok "$OURS" <<'EOF' || fail "PyTorch reference disagrees"
import json, math, struct, sys
import torch
ckpt, shard, ours = sys.argv[1], sys.argv[2], float(sys.argv[3])

def read_st(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    hdr = json.loads(raw[8:8 + n])
    hdr.pop('__metadata__', None)
    data = bytearray(raw[8 + n:])
    out = {}
    for k, v in hdr.items():
        assert v['dtype'] == 'F32', (k, v['dtype'])
        a, b = v['data_offsets']
        out[k] = torch.frombuffer(data[a:b], dtype=torch.float32).reshape(v['shape']).clone()
    return out

cfg = json.load(open(ckpt + '/config.json'))
assert cfg['model_type'] == 'gpt2' and cfg['architectures'] == ['GPT2LMHeadModel']
assert cfg['activation_function'] == 'gelu_new'
w = read_st(ckpt + '/model.safetensors')
L, C, H, V = cfg['n_layer'], cfg['n_embd'], cfg['n_head'], cfg['vocab_size']
assert w['transformer.wte.weight'].shape == (V, C), w['transformer.wte.weight'].shape
opt = read_st(ckpt + '/optimizer.safetensors')
for k in w:
    assert ('exp_avg.' + k) in opt and ('exp_avg_sq.' + k) in opt, k
    assert opt['exp_avg_sq.' + k].min() >= 0

# First micro-batch of the shard (docs/architecture.md "Training contract"):
# B rows of T, targets shifted.
raw = open(shard, 'rb').read()
B, T = 3, 32
# Shard header (src/data/shard.c): magic, version, bytes per token (u32 at 8),
# ..., token count (u64 at 24); the ids start at byte 64.
bpt = struct.unpack('<I', raw[8:12])[0]
ntok = struct.unpack('<Q', raw[24:32])[0]
assert len(raw) == 64 + bpt * ntok, 'unexpected shard layout'
ids = torch.tensor(struct.unpack('<%d%s' % (ntok, 'H' if bpt == 2 else 'i'), raw[64:]), dtype=torch.long)
x = ids[:B * T].reshape(B, T)
y = ids[1:B * T + 1].reshape(B, T)

def ln(t, p):
    return torch.nn.functional.layer_norm(t, (C,), w[p + '.weight'], w[p + '.bias'], cfg['layer_norm_epsilon'])

def gelu_new(t):
    return 0.5 * t * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (t + 0.044715 * t.pow(3))))

with torch.no_grad():
    h = w['transformer.wte.weight'][x] + w['transformer.wpe.weight'][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for l in range(L):
        p = 'transformer.h.%d.' % l
        a = ln(h, p + 'ln_1') @ w[p + 'attn.c_attn.weight'] + w[p + 'attn.c_attn.bias']
        q, k, v = a.split(C, dim=2)
        q, k, v = [t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v)]
        att = (q @ k.transpose(-2, -1)) / math.sqrt(C // H)
        att = att.masked_fill(~mask, float('-inf')).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, T, C)
        h = h + o @ w[p + 'attn.c_proj.weight'] + w[p + 'attn.c_proj.bias']
        m = gelu_new(ln(h, p + 'ln_2') @ w[p + 'mlp.c_fc.weight'] + w[p + 'mlp.c_fc.bias'])
        h = h + m @ w[p + 'mlp.c_proj.weight'] + w[p + 'mlp.c_proj.bias']
    logits = ln(h, 'transformer.ln_f') @ w['transformer.wte.weight'].T
    ref = torch.nn.functional.cross_entropy(logits.reshape(-1, V).double(), y.reshape(-1)).item()
print('PyTorch reference loss %.7f, truthgpt eval %.7f' % (ref, ours))
assert abs(ref - ours) <= 1e-5 * abs(ref), 'loss mismatch: %.9g vs %.9g' % (ref, ours)
EOF
echo "e2e_train_hf: OK"
