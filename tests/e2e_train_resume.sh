#!/usr/bin/env bash
# e2e_train_resume.sh — reproducibility of `truthgpt train`
# (docs/architecture.md "Training contract"):
#  - the same seed twice gives identical metrics (loss and grad norm of every
#    step, every val_loss) and bit-identical weights;
#  - N steps straight vs a run killed with kill -9 in its second half after
#    a checkpoint at N/2, then --resume: identical metrics for all N steps and
#    bit-identical final model.safetensors and optimizer.safetensors;
#  - Ctrl-C (SIGINT) writes a checkpoint and exits 130; --resume from it
#    ends bit-identical too.
# Shuffle on and gradient accumulation (A=2) so both are covered.
# Usage: tests/e2e_train_resume.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_train_resume.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
W=$(mktemp -d /tmp/tg_e2e_resume_XXXXXX)
PIDS=""
trap 'for p in $PIDS; do kill -9 $p 2>/dev/null; done; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"

F=/usr/share/games/fortunes
[ -s "$F/science" ] || fail "$F/science missing (scripts/setup.sh installs the 'fortunes' package)"
head -c 100000 "$F/science" > train.txt
tail -c 20000 "$F/people" > val.txt
"$TG" tokenize --bytes train.txt --out data >/dev/null || fail "tokenize"
"$TG" tokenize --bytes val.txt --out valdata >/dev/null || fail "tokenize val"

N=400
ARGS=(--preset tiny --layers 2 --heads 2 --dim 64 --ctx 32 --batch 4 --accum 2 --steps $N --warmup 10 --lr 2e-3
      --data data --val-data valdata --eval-every 50 --eval-batches 2 --save-every 100 --seed 7 --threads 1)

# The deterministic part of metrics.jsonl: drop throughput and timing.
strip() { sed -E 's/,"tok_per_s":[^,}]*//; s/,"time":[^,}]*//; s/,"mfu":[^,}]*//' "$1"; }
steps_logged() { local n; n=$(grep -c '"loss"' "$1/metrics.jsonl" 2>/dev/null); echo "${n:-0}"; }

"$TG" train "${ARGS[@]}" --out A > A.log 2>&1 || { cat A.log; fail "straight run exited $?"; }
"$TG" train "${ARGS[@]}" --out A2 > A2.log 2>&1 || { cat A2.log; fail "second straight run exited $?"; }
[ "$(steps_logged A)" = $N ] || fail "straight run logged $(steps_logged A) steps"
diff <(strip A/metrics.jsonl) <(strip A2/metrics.jsonl) > /dev/null || fail "same seed twice: metrics differ"
cmp -s A/checkpoint-$N/model.safetensors A2/checkpoint-$N/model.safetensors || fail "same seed twice: weights differ"
echo "same seed twice: identical metrics and weights"

# interrupt DIR SIG STEPS [CKPT]: starts a run into DIR, sends SIG once it has
# logged STEPS steps (and written DIR/CKPT), and sets RC to its exit status.
# On a loaded machine the polling loop may be starved until the run has
# finished: then the signal proved nothing, so that attempt is redone (at
# most 3 times).
interrupt() {
  local dir=$1 sig=$2 steps=$3 ckpt=${4:-} pid attempt
  for attempt in 1 2 3; do
    rm -rf "$dir"
    "$TG" train "${ARGS[@]}" --out "$dir" > "$dir.log" 2>&1 &
    pid=$!
    PIDS="$PIDS $pid"
    for _ in $(seq 1 6000); do
      [ "$(steps_logged "$dir")" -ge "$steps" ] && { [ -z "$ckpt" ] || [ -d "$dir/$ckpt" ]; } && break
      kill -0 $pid 2>/dev/null || break
      sleep 0.01
    done
    kill -"$sig" $pid 2>/dev/null
    wait $pid 2>/dev/null
    RC=$?
    [ -d "$dir/checkpoint-$N" ] || return 0
    echo "attempt $attempt: the run finished before SIG$sig, again"
  done
  fail "the run finished before SIG$sig three times (machine too loaded?)"
}

# kill -9 in the second half, after checkpoint-200 exists.
interrupt B KILL 210 checkpoint-200
KILLED_AT=$(steps_logged B)
echo "killed at step ~$KILLED_AT"
[ -d B/checkpoint-200 ] || fail "no checkpoint-200 before the kill"
"$TG" train "${ARGS[@]}" --out B --resume > B2.log 2>&1 || { cat B2.log; fail "--resume exited $?"; }
grep -q "resuming from .*checkpoint-200" B2.log || { cat B2.log; fail "--resume did not pick checkpoint-200"; }
diff <(strip A/metrics.jsonl) <(strip B/metrics.jsonl) > diff.txt || { head diff.txt; fail "kill -9 + resume: metrics differ from the straight run"; }
cmp -s A/checkpoint-$N/model.safetensors B/checkpoint-$N/model.safetensors || fail "kill -9 + resume: final weights differ"
cmp -s A/checkpoint-$N/optimizer.safetensors B/checkpoint-$N/optimizer.safetensors || fail "kill -9 + resume: AdamW state differs"
echo "kill -9 + resume: bitwise identical to the straight run"

# Ctrl-C: checkpoint and exit 130, then resume.
interrupt C INT 120
STOP=$(steps_logged C)
[ $RC = 130 ] || { cat C.log; fail "SIGINT: exit status $RC, expected 130"; }
[ -d C/checkpoint-$STOP ] || { ls C; fail "SIGINT: no checkpoint-$STOP written at the stop"; }
echo "SIGINT: stopped at step $STOP with a checkpoint, exit 130"
"$TG" train "${ARGS[@]}" --out C --resume > C2.log 2>&1 || { cat C2.log; fail "--resume after SIGINT exited $?"; }
diff <(strip A/metrics.jsonl) <(strip C/metrics.jsonl) > /dev/null || fail "SIGINT + resume: metrics differ"
cmp -s A/checkpoint-$N/model.safetensors C/checkpoint-$N/model.safetensors || fail "SIGINT + resume: final weights differ"

# Resuming a finished run does nothing and changes nothing.
SUM=$(sha256sum A/checkpoint-$N/model.safetensors)
"$TG" train "${ARGS[@]}" --out A --resume > A3.log 2>&1 || fail "--resume of a finished run exited $?"
[ "$SUM" = "$(sha256sum A/checkpoint-$N/model.safetensors)" ] || fail "--resume of a finished run changed the weights"

echo "e2e_train_resume: OK"
