#!/usr/bin/env bash
# e2e_hostile_files.sh — model files and shards made by a hostile user, run
# through the real program: a config.json asking for 3000 layers (refused
# against model.safetensors' header before the parameters are allocated, so
# it passes under a 1 GB address-space limit), vocab_size 2^31-1 and other
# absurd values, a safetensors shape of 2^62 elements with no bytes, NaN and
# Inf weights, a shard vocabulary >= 2^31, and a shard id outside the
# vocabulary that a shuffled run would never draw. Each exits 2 naming the
# file (and the tensor or offset), and writes nothing to --out.
# Usage: tests/e2e_hostile_files.sh path/to/truthgpt
set -u
HERE=$(cd "$(dirname "$0")" && pwd) # before the cd below
TG=${1:?usage: e2e_hostile_files.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
W=$(mktemp -d /tmp/tg_e2e_hostile_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
PY=/usr/bin/python3

. "$HERE/lib_e2e.sh"
tg_e2e_tiny_run "$TG" # data/, good/checkpoint-2, SMALL
CK=good/checkpoint-2
[ -f $CK/model.safetensors ] || fail "setup run left no checkpoint"

N=0
# expect NEEDLE... -- COMMAND: exit 2 and stderr holds every needle.
expect() {
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  N=$((N + 1))
  "$@" > out.txt 2> err.txt
  local rc=$?
  [ $rc = 2 ] || { cat err.txt; fail "case $N ($*): exit $rc, expected 2"; }
  for nd in "${needles[@]}"; do
    grep -qF -- "$nd" err.txt || { cat err.txt; fail "case $N ($*): message lacks '$nd'"; }
  done
  echo "ok $N: $(head -1 err.txt)"
}
mkck() { rm -rf "$1"; cp -r $CK "$1"; }
setcfg() { # setcfg DIR KEY VALUE (VALUE is JSON)
  "$PY" - "$@" <<'EOF'
import json, sys
d, k, v = sys.argv[1:4]
p = d + '/config.json'
c = json.load(open(p))
c[k] = json.loads(v)
json.dump(c, open(p, 'w'))
EOF
}

# 1. n_layer 3000 (over the 1024 ceiling) and 1000 (under it, but not what
# the weights file holds): refused from the config and from the header, in
# a 1 GB address space (the old code allocated and zeroed 9.3 and 3 GB).
# A sanitizer build reserves terabytes of shadow memory: no limit for it.
LIMIT="ulimit -v 1000000;"
grep -q __asan_init "$TG" && LIMIT=""
mkck ck_layers; setcfg ck_layers n_layer 3000
expect "ck_layers/config.json" "n_layer" -- \
  bash -c "$LIMIT exec '$TG' sample --model ck_layers --max-tokens 1"
# n_layer 1000 at the tiny preset's width: 3.1 GB of parameters, which the
# old code allocated (here: failed to, exit 1) before reading the header.
mkck ck_wide; setcfg ck_wide n_layer 1000; setcfg ck_wide n_embd 256
expect "ck_wide/model.safetensors" "transformer.wte.weight" "config.json says [257, 256]" -- \
  bash -c "$LIMIT exec '$TG' sample --model ck_wide --max-tokens 1"
mkck ck_layers2; setcfg ck_layers2 n_layer 1000
expect "ck_layers2/model.safetensors" "h.999.mlp.c_proj.weight" "missing" -- \
  bash -c "$LIMIT exec '$TG' sample --model ck_layers2 --max-tokens 1"
expect "ck_layers2/model.safetensors" "h.999" -- "$TG" eval --model ck_layers2 --data data

# 2. vocab_size 2^31-1 (signed overflow before) and other absurd values: the
# file and the field are named, exit 2 (before: exit 1, "out of memory").
mkck ck_vocab; setcfg ck_vocab vocab_size 2147483647
expect "ck_vocab/config.json" "vocab_size" -- "$TG" sample --model ck_vocab --max-tokens 1
mkck ck_embd; setcfg ck_embd n_embd 1000000000
expect "ck_embd/config.json" "n_embd" -- "$TG" eval --model ck_embd --data data
mkck ck_ctx; setcfg ck_ctx n_positions 2000000000
expect "ck_ctx/config.json" "n_positions" -- "$TG" sample --model ck_ctx --max-tokens 1
mkck ck_heads; setcfg ck_heads n_head 0
expect "ck_heads/config.json" "n_head" -- "$TG" sample --model ck_heads --max-tokens 1

# 3. A tensor of shape [2^62] F32 with zero bytes: 2^62 x 4 wrapped to 0.
mkck ck_wrap
"$PY" - ck_wrap/model.safetensors <<'EOF' || fail "python"
import json, struct, sys
h = json.dumps({"transformer.wte.weight": {"dtype": "F32", "shape": [2**62], "data_offsets": [0, 0]}}).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h)
EOF
expect "ck_wrap/model.safetensors" "transformer.wte.weight" "too large" -- "$TG" sample --model ck_wrap --max-tokens 1

# 4. NaN and Inf weights, named by tensor (before: accepted, `eval` said
# "loss nan").
poke() { # poke FILE TENSOR ELEMENT HEX8 — overwrite one float of a tensor
  "$PY" - "$@" <<'EOF'
import json, struct, sys
p, name, el, hexv = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
raw = bytearray(open(p, 'rb').read())
n = struct.unpack('<Q', raw[:8])[0]
off = 8 + n + json.loads(raw[8:8 + n])[name]['data_offsets'][0] + 4 * el
raw[off:off + 4] = bytes.fromhex(hexv)
open(p, 'wb').write(raw)
EOF
}
mkck ck_nan; poke ck_nan/model.safetensors transformer.h.0.attn.c_proj.weight 17 0000c07f || fail "python"
expect "ck_nan/model.safetensors" "transformer.h.0.attn.c_proj.weight" "NaN or Inf" "element 17" -- \
  "$TG" eval --model ck_nan --data data
mkck ck_inf; poke ck_inf/model.safetensors transformer.ln_f.bias 3 000080ff || fail "python"
expect "ck_inf/model.safetensors" "transformer.ln_f.bias" "NaN or Inf" -- "$TG" sample --model ck_inf --max-tokens 1
expect "ck_inf/model.safetensors" "transformer.ln_f.bias" -- "$TG" train --init ck_inf --data data --steps 1 --out new
[ -e new ] && fail "a NaN checkpoint created --out"

# 5. Shards: a vocabulary >= 2^31 (read as a negative int before: eval
# exited 0 with a loss) and an id outside the vocabulary, found when the
# shard is opened, with the file and the offset, before --out is touched.
shard_edit() { # shard_edit SRC DST FIELD_OFFSET U32 [TOKEN_INDEX U16]
  "$PY" - "$@" <<'EOF'
import struct, sys
src, dst, off, val = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
raw = bytearray(open(src, 'rb').read())
if off >= 0:
    raw[off:off + 4] = struct.pack('<I', val)
if len(sys.argv) > 5:
    i, v = int(sys.argv[5]), int(sys.argv[6])
    bpt = struct.unpack('<I', raw[8:12])[0]
    raw[64 + i * bpt:64 + (i + 1) * bpt] = v.to_bytes(bpt, 'little')
open(dst, 'wb').write(raw)
EOF
}
mkdir vocab_big bad_id
shard_edit data/train-000000.tok vocab_big/train-000000.tok 12 2147483648 || fail "python"
expect "vocab_big/train-000000.tok" "vocabulary" -- "$TG" eval --model good --data vocab_big
NTOK=$(( ($(stat -c %s data/train-000000.tok) - 64) / 2 ))
LAST=$((NTOK - 3))
shard_edit data/train-000000.tok bad_id/train-000000.tok -1 0 $LAST 300 || fail "python"
expect "bad_id/train-000000.tok" "token $LAST (byte offset $((64 + 2 * LAST))) is id 300" -- \
  "$TG" train "${SMALL[@]}" --data bad_id --steps 1 --shuffle on --out new
[ -e new ] && fail "a shard with a bad id created --out (manifest.json, metrics.jsonl)"
expect "bad_id/train-000000.tok" "is id 300" -- "$TG" eval --model good --data bad_id

echo "e2e_hostile_files: OK ($N cases)"
