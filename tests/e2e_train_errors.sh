#!/usr/bin/env bash
# e2e_train_errors.sh — bad input to `truthgpt train` / `eval` / `inspect`:
# --batch 0, a context longer than the model's, an unwritable --out, a
# truncated shard, a wrong magic, a checkpoint with a missing, mis-shaped or
# truncated tensor, a config.json without a field, an existing run without
# --resume. Each must exit 2 with a message naming the flag or the file (and
# the tensor), and leave every existing file untouched and no new --out.
# Usage: tests/e2e_train_errors.sh path/to/truthgpt
set -u
HERE=$(cd "$(dirname "$0")" && pwd) # before the cd below
TG=${1:?usage: e2e_train_errors.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
W=$(mktemp -d /tmp/tg_e2e_errors_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
PY=/usr/bin/python3

. "$HERE/lib_e2e.sh"
tg_e2e_tiny_run "$TG" # data/, good/checkpoint-2, SMALL

snap() { find "$1" -type f | sort | xargs sha256sum; }
snap good > good.sum

# expect NEEDLE... -- COMMAND: exit 2, stderr holds every needle, good/ unchanged.
N=0
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
  snap good | cmp -s - good.sum || fail "case $N ($*): files in good/ changed"
  echo "ok $N: $(head -1 err.txt)"
}

expect "--batch" -- "$TG" train "${SMALL[@]}" --data data --steps 2 --batch 0 --out new
[ -e new ] && fail "--batch 0 created --out"
expect "--batch" -- "$TG" train --data data --batch 0 --out good --resume
expect "--ctx" "16" -- "$TG" train --init good --ctx 64 --data data --steps 2 --out new
[ -e new ] && fail "--ctx too long created --out"
expect "--ctx" -- "$TG" eval --model good --data data --ctx 64
echo x > file.txt
expect "--out" "file.txt/run" -- "$TG" train "${SMALL[@]}" --data data --steps 2 --out file.txt/run
expect "--out" "/proc/tg_no_such/run" -- "$TG" train "${SMALL[@]}" --data data --steps 2 --out /proc/tg_no_such/run
expect "--out" "good" "already holds" -- "$TG" train "${SMALL[@]}" --data data --steps 2 --out good
expect "--shuffle" -- "$TG" train "${SMALL[@]}" --data data --shuffle maybe --out new
expect "--preset" "huge" -- "$TG" train --preset huge --data data --out new
expect "--dim" "--heads" -- "$TG" train --preset tiny --dim 30 --heads 4 --data data --out new
expect "--data" -- "$TG" train "${SMALL[@]}" --out new
[ -e new ] && fail "a failed run created --out"

# Shards: truncated, wrong magic, missing.
mkdir bad1 bad2
cp data/train-000000.tok bad1/ && truncate -s -100 bad1/train-000000.tok
expect "bad1/train-000000.tok" -- "$TG" train "${SMALL[@]}" --data bad1 --steps 2 --out new
cp data/train-000000.tok bad2/ && printf 'XXXX' | dd of=bad2/train-000000.tok conv=notrunc status=none
expect "bad2/train-000000.tok" "magic" -- "$TG" train "${SMALL[@]}" --data bad2 --steps 2 --out new
expect "bad2/train-000000.tok" -- "$TG" eval --model good --data bad2
expect "no_such_dir" -- "$TG" train "${SMALL[@]}" --data no_such_dir --steps 2 --out new
[ -e new ] && fail "a bad shard created --out"

# Checkpoints with a missing, mis-shaped or truncated tensor (rewritten
# with the standard library only: 8-byte length, JSON header, data).
edit_st() { # edit_st SRC DST MODE NAME
  "$PY" - "$@" <<'EOF'
import json, struct, sys
src, dst, mode, name = sys.argv[1:5]
raw = open(src, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = hdr.pop('__metadata__', None)
out, blobs, off = {}, [], 0
for k, v in sorted(hdr.items(), key=lambda kv: kv[1]['data_offsets'][0]):
    b = data[v['data_offsets'][0]:v['data_offsets'][1]]
    if k == name and mode == 'drop':
        continue
    if k == name and mode == 'reshape':
        v['shape'] = list(reversed(v['shape']))
    v['data_offsets'] = [off, off + len(b)]
    off += len(b)
    out[k] = v
    blobs.append(b)
if meta is not None:
    out['__metadata__'] = meta
h = json.dumps(out).encode()
blob = struct.pack('<Q', len(h)) + h + b''.join(blobs)
if mode == 'truncate':
    blob = blob[:-10]
open(dst, 'wb').write(blob)
EOF
}
mkck() { rm -rf "$1"; cp -r good/checkpoint-2 "$1"; }
mkck ck_missing; edit_st good/checkpoint-2/model.safetensors ck_missing/model.safetensors drop transformer.h.0.mlp.c_fc.bias || fail "python"
expect "ck_missing/model.safetensors" "transformer.h.0.mlp.c_fc.bias" "missing" -- "$TG" train --init ck_missing --data data --steps 1 --out new
expect "ck_missing/model.safetensors" "transformer.h.0.mlp.c_fc.bias" -- "$TG" eval --model ck_missing --data data
mkck ck_shape; edit_st good/checkpoint-2/model.safetensors ck_shape/model.safetensors reshape transformer.h.0.attn.c_attn.weight
expect "ck_shape/model.safetensors" "transformer.h.0.attn.c_attn.weight" "shape" -- "$TG" eval --model ck_shape --data data
expect "ck_shape/model.safetensors" "c_attn.weight" -- "$TG" train --init ck_shape --data data --steps 1 --out new
mkck ck_trunc; edit_st good/checkpoint-2/model.safetensors ck_trunc/model.safetensors truncate none
expect "ck_trunc/model.safetensors" "truncated" -- "$TG" eval --model ck_trunc --data data
mkck ck_cfg; sed -i '/"n_head"/d' ck_cfg/config.json
expect "ck_cfg/config.json" "n_head" -- "$TG" eval --model ck_cfg --data data
mkck ck_opt; edit_st good/checkpoint-2/optimizer.safetensors ck_opt/optimizer.safetensors drop exp_avg_sq.transformer.wpe.weight
mkdir run_opt && mv ck_opt run_opt/checkpoint-2 && snap run_opt > opt.sum
# Its sums catch the change first; without them, the tensor check does.
expect "optimizer.safetensors" "SHA-256" -- "$TG" train "${SMALL[@]}" --data data --steps 4 --out run_opt --resume
rm run_opt/checkpoint-2/sha256sums.txt && snap run_opt > opt.sum
expect "optimizer.safetensors" "exp_avg_sq.transformer.wpe.weight" -- "$TG" train "${SMALL[@]}" --data data --steps 4 --out run_opt --resume
snap run_opt | cmp -s - opt.sum || fail "a failed --resume changed run_opt/"
expect "no_such_run" -- "$TG" eval --model no_such_run --data data
expect "no complete checkpoint" -- "$TG" inspect data
[ -e new ] && fail "a bad checkpoint created --out"

# A missing --model/--data is a usage error too.
expect "--model" -- "$TG" eval --data data

echo "e2e_train_errors: OK ($N cases)"
