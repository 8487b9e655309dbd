#!/usr/bin/env bash
# e2e_checkpoint_torture.sh — checkpoints under fire, about a minute:
#  1. torture: a run saving every step is started with --resume and killed
#     with kill -9 at random moments (many land inside checkpoint writes),
#     again and again for ~35 s, then let finish. Counts kills, kills inside
#     a checkpoint write (a checkpoint-N.tmp left behind), resumes, and
#     checkpoints lost: every checkpoint-N ever seen whole must still be
#     there and pass `sha256sum -c` of its sums at the end (must be 0). The
#     final weights and AdamW moments must be bit-identical to a run that
#     was never killed.
#  2. trust: a bit flip in the newest checkpoint's optimizer data, a
#     truncated trainer_state.json in another: `eval --model RUN` and
#     `train --resume` skip them with a warning for the newest whole one,
#     stale loss.svg.tmp.* files are removed, and the resumed run still ends
#     bit-identical.
# Usage: tests/e2e_checkpoint_torture.sh path/to/truthgpt [SECONDS]
set -u
TG=${1:?usage: e2e_checkpoint_torture.sh path/to/truthgpt [SECONDS]}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
TORTURE_S=${2:-35}
W=$(mktemp -d /tmp/tg_e2e_torture_XXXXXX)
PID=""
trap '[ -n "$PID" ] && kill -9 $PID 2>/dev/null; rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"

head -c 30000 /usr/share/games/fortunes/science > t.txt 2>/dev/null || fail "fortunes missing (scripts/setup.sh)"
"$TG" tokenize --bytes t.txt --out data >/dev/null || fail "tokenize"
N=300
ARGS=(--preset tiny --layers 1 --heads 2 --dim 32 --ctx 16 --batch 2 --steps $N --warmup 5 --lr 2e-3 --data data
      --eval-every 0 --save-every 1 --seed 3 --threads 1)
"$TG" train "${ARGS[@]}" --out ref > ref.log 2>&1 || { cat ref.log; fail "reference run"; }
[ -f ref/checkpoint-$N/optimizer.safetensors ] || fail "reference run left no checkpoint-$N"

# ---- 1. torture
seen=""          # checkpoint dirs once seen whole
kills=0 in_write=0 resumes=0 done_run=0
note_whole() {   # records every checkpoint of run/ that passes its sums now
  local d
  for d in run/checkpoint-*; do
    case "$d" in *.tmp|*.old|*'*') continue ;; esac
    [ -f "$d/sha256sums.txt" ] || continue
    (cd "$d" && sha256sum --quiet -c sha256sums.txt >/dev/null 2>&1) || continue
    case " $seen " in *" $d "*) ;; *) seen="$seen $d" ;; esac
  done
}
t_end=$(( $(date +%s) + TORTURE_S ))
while [ "$(date +%s)" -lt $t_end ]; do
  "$TG" train "${ARGS[@]}" --out run --resume >> run.log 2>&1 &
  PID=$!
  resumes=$((resumes + 1))
  # 50-450 ms: the first ~100 ms are start-up, the rest steps and saves.
  sleep "0.$(printf '%03d' $(( 50 + RANDOM % 400 )))"
  if kill -9 $PID 2>/dev/null; then
    kills=$((kills + 1))
    wait $PID 2>/dev/null
    compgen -G "run/checkpoint-*.tmp" > /dev/null && in_write=$((in_write + 1))
  else
    wait $PID; rc=$?
    [ $rc = 0 ] || { tail -20 run.log; fail "a resumed run exited $rc"; }
    done_run=1
  fi
  PID=""
  note_whole
  [ $done_run = 1 ] && break
done
if [ $done_run = 0 ]; then
  "$TG" train "${ARGS[@]}" --out run --resume >> run.log 2>&1 || { tail -20 run.log; fail "the final resume"; }
  resumes=$((resumes + 1))
fi
note_whole
lost=0
for d in $seen; do
  [ -d "$d" ] && (cd "$d" && sha256sum --quiet -c sha256sums.txt >/dev/null 2>&1) || { echo "lost: $d"; lost=$((lost + 1)); }
done
stale=$(grep -c "left by an interrupted" run.log)
skipped=$(grep -c "skipping" run.log)
echo "torture: $kills kills ($in_write inside a checkpoint write), $resumes starts, $(echo $seen | wc -w) checkpoints seen whole, $lost lost, $stale stale temporaries cleaned, $skipped checkpoints skipped"
[ $lost = 0 ] || fail "$lost checkpoints lost"
[ $kills -ge 5 ] || fail "only $kills kills: the machine was too slow for the test to mean anything"
cmp -s ref/checkpoint-$N/model.safetensors run/checkpoint-$N/model.safetensors || fail "weights differ from the run never killed"
cmp -s ref/checkpoint-$N/optimizer.safetensors run/checkpoint-$N/optimizer.safetensors || fail "AdamW moments differ"
compgen -G "run/checkpoint-*.tmp" > /dev/null && fail "a checkpoint-*.tmp outlived the run"
compgen -G "run/*.tmp.*" > /dev/null && fail "a temporary file outlived the run: $(ls run/*.tmp.*)"
echo "ok   after $kills kills the run ends bit-identical to one never killed"

# ---- 2. trust: corrupt the newest checkpoints, leave a stale temporary
M=40
ARGS2=("${ARGS[@]}")
ARGS2[${#ARGS2[@]}]=--save-every; ARGS2[${#ARGS2[@]}]=10
"$TG" train "${ARGS2[@]}" --steps $M --out t2 > t2.log 2>&1 || { cat t2.log; fail "run 2"; }
"$TG" train "${ARGS2[@]}" --steps $M --out t2ref > t2ref.log 2>&1 || fail "run 2 reference"
/usr/bin/python3 - t2/checkpoint-$M/optimizer.safetensors <<'EOF' || fail "python"
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
b[-1000] ^= 0x04   # one bit of an AdamW moment: still a valid file
open(p, 'wb').write(b)
EOF
head -c 20 t2/checkpoint-30/trainer_state.json > x && mv x t2/checkpoint-30/trainer_state.json
echo '<svg' > t2/loss.svg.tmp.1073741000
"$TG" eval --model t2 --data data --batches 1 > ev.out 2> ev.err || { cat ev.err; fail "eval --model RUN with a bad newest checkpoint"; }
grep -q "skipping.*checkpoint-$M.*optimizer.safetensors" ev.err || { cat ev.err; fail "eval did not warn about checkpoint-$M"; }
grep -q "skipping.*checkpoint-30.*trainer_state.json" ev.err || { cat ev.err; fail "eval did not warn about checkpoint-30"; }
"$TG" train "${ARGS2[@]}" --steps $M --out t2 --resume > t2r.log 2>&1 || { cat t2r.log; fail "resume past bad checkpoints"; }
grep -q "resuming from .*checkpoint-20 " t2r.log || { cat t2r.log; fail "the resume did not take checkpoint-20"; }
[ -e t2/loss.svg.tmp.1073741000 ] && fail "a stale loss.svg.tmp.* survived the next start"
cmp -s t2ref/checkpoint-$M/model.safetensors t2/checkpoint-$M/model.safetensors || fail "run 2: weights differ after skipping"
cmp -s t2ref/checkpoint-$M/optimizer.safetensors t2/checkpoint-$M/optimizer.safetensors || fail "run 2: moments differ"
echo "ok   bad newest checkpoints skipped with a warning; the resume from checkpoint-20 ends bit-identical"
echo "e2e_checkpoint_torture: OK"
