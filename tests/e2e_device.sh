#!/usr/bin/env bash
# shellcheck disable=SC2015 # `A && B || fail`: fail exits
# e2e_device.sh — --device on every command that runs a model (train,
# finetune, eval, sample, chat, serve, bench train, bench generate):
#  - an unknown device exits 2 naming it and the choices;
#  - cuda without a GPU (or a driver) exits 2 with "no CUDA device: <the
#    runtime's reason>", and a build without CUDA exits 2 saying so;
#  - where a GPU is present, cuda:N past the last device exits 2 and cuda
#    is accepted (the command goes on to its own argument checks);
#  - --device cpu changes nothing (a tiny eval of a fresh model runs).
# Usage: tests/e2e_device.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_device.sh path/to/truthgpt}
W=$(mktemp -d /tmp/tg_e2e_device_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

CMDS=("train" "finetune" "eval" "sample" "chat" "serve" "bench train" "bench generate")
# the first answer tells what this build and machine have
"$TG" eval --device cuda > /dev/null 2> "$W/probe.err"
probe=$?
if grep -q "no CUDA device: ." "$W/probe.err"; then have=nogpu
elif grep -q "this build has no CUDA" "$W/probe.err"; then have=nocuda
else have=gpu
fi
echo "device probe: $have ($(head -1 "$W/probe.err"))"
[ "$probe" = 2 ] || fail "eval --device cuda exited $probe, not 2"

for c in "${CMDS[@]}"; do
  # shellcheck disable=SC2086 # "bench train" is two words
  "$TG" $c --device tpu > /dev/null 2> "$W/err"
  rc=$?
  [ $rc = 2 ] && grep -q "unknown device 'tpu' (this build has: cpu" "$W/err" || fail "$c --device tpu: rc $rc, $(cat "$W/err")"
  # shellcheck disable=SC2086
  "$TG" $c --device cuda > /dev/null 2> "$W/err"
  rc=$?
  case $have in
    nogpu) [ $rc = 2 ] && grep -q "^truthgpt: --device cuda: no CUDA device: ." "$W/err" ||
             fail "$c --device cuda without a GPU: rc $rc, $(cat "$W/err")" ;;
    nocuda) [ $rc = 2 ] && grep -q "this build has no CUDA" "$W/err" ||
             fail "$c --device cuda in a build without CUDA: rc $rc, $(cat "$W/err")" ;;
    gpu) grep -q "device" "$W/err" && fail "$c --device cuda on a GPU machine: $(cat "$W/err")"
         # shellcheck disable=SC2086
         "$TG" $c --device cuda:999 > /dev/null 2> "$W/err"
         [ $? = 2 ] && grep -q "no CUDA device 999" "$W/err" || fail "$c --device cuda:999: $(cat "$W/err")" ;;
  esac
done
echo "8 commands: --device tpu and --device cuda answered as expected ($have)"

# --device cpu: the default, spelled out
head -c 6000 /usr/share/games/fortunes/science > "$W/t.txt" 2>/dev/null || fail "fortunes missing (scripts/setup.sh)"
"$TG" tokenize --bytes "$W/t.txt" --out "$W/data" > /dev/null 2>&1 || fail "tokenize"
"$TG" train --device cpu --preset tiny --layers 1 --heads 2 --dim 32 --ctx 16 --batch 2 --warmup 1 --eval-every 0 \
  --threads 1 --data "$W/data" --steps 2 --out "$W/run" > "$W/train.log" 2>&1 || { cat "$W/train.log"; fail "train --device cpu"; }
"$TG" eval --device cpu --model "$W/run" --data "$W/data" --batches 1 --batch 2 --ctx 16 --json > "$W/eval.json" 2>&1 ||
  { cat "$W/eval.json"; fail "eval --device cpu"; }
grep -q '"loss"' "$W/eval.json" || fail "eval --device cpu printed no loss: $(cat "$W/eval.json")"
echo "train and eval --device cpu: ok"
