#!/usr/bin/env bash
# e2e_train_defaults.sh — one place for each training default: what
# `train --help` and `finetune --help` print as defaults is what a run given
# no such flag records as the hyperparameters it used (trainer_state.json),
# including the fixed AdamW betas and eps named in the description, and
# finetune's "-1: N% of the steps" warm-up resolved against the run's steps.
# Usage: tests/e2e_train_defaults.sh path/to/truthgpt
set -euo pipefail
BIN=$(realpath "$1")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
W=$(mktemp -d /tmp/tg_e2e_defaults.XXXXXX)
trap 'rm -rf "$W"' EXIT
cd "$W"
export OMP_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }

"$BIN" train --help > train_help.txt || fail "train --help"
"$BIN" finetune --help > finetune_help.txt || fail "finetune --help"

# A tiny byte-level model, every optimizer and run flag left at its default
# (only the model's size, the data, the step count and --out are given).
seq 1 4000 > a.txt
"$BIN" tokenize --bytes a.txt --out data > /dev/null || fail "tokenize"
"$BIN" train --data data --layers 1 --heads 2 --dim 32 --ctx 32 --steps 3 --out run > train.log 2>&1 ||
  { cat train.log; fail "train"; }

# 200 short conversations; --steps 0 (the default) runs --epochs passes.
$PY - <<'PYEOF'
import json
with open("chat.jsonl", "w") as f:
    for i in range(200):
        f.write(json.dumps({"messages": [{"role": "user", "content": f"n {i}"},
                                         {"role": "assistant", "content": f"{i + 1}"}]}) + "\n")
PYEOF
"$BIN" finetune --model run --chat chat.jsonl --out ft > ft.log 2>&1 || { cat ft.log; fail "finetune"; }

$PY - <<'PYEOF' || fail "--help defaults differ from what the runs used"
import glob, json, re, sys

def defaults(path):
    text = open(path).read()
    d = {}
    for m in re.finditer(r"^  --([a-z-]+) \S+ .*\(default ([^)]*)\)$", text, re.M):
        d[m.group(1)] = m.group(2)
    a = re.search(r"AdamW betas \(([^,]+), ([^)]+)\), eps ([0-9.e+-]+)", text)
    if not a:
        sys.exit(f"{path}: no AdamW betas/eps in the description")
    d["beta1"], d["beta2"], d["eps"] = a.groups()
    return d, text

def hparams(run):
    cks = sorted(glob.glob(run + "/checkpoint-*/trainer_state.json"), key=lambda p: int(p.split("-")[-1].split("/")[0]))
    if not cks:
        sys.exit(f"{run}: no checkpoint")
    return json.load(open(cks[-1]))["hyperparameters"]

def same(flag, shown, used):
    if isinstance(used, str):
        return shown == used
    return abs(float(shown) - float(used)) <= 1e-6 * abs(float(used)) + 1e-12

bad = 0
# flag -> trainer_state.json key
keys = {"batch": "batch", "accum": "accum", "lr": "lr", "min-lr-frac": "min_lr_frac",
        "weight-decay": "weight_decay", "grad-clip": "grad_clip", "seed": "seed",
        "eval-every": "eval_every", "save-every": "save_every", "dtype": "dtype",
        "eval-batches": "eval_batches", "beta1": "beta1", "beta2": "beta2", "eps": "eps"}
for cmd, run in (("train", "run"), ("finetune", "ft")):
    d, text = defaults(cmd + "_help.txt")
    h = hparams(run)
    checked = dict(keys)
    if cmd == "train":
        checked["warmup"] = "warmup"
    for flag, key in checked.items():
        if flag not in d:
            print(f"{cmd} --help shows no default for {flag}"); bad += 1; continue
        if key not in h:
            print(f"{run}: trainer_state.json has no {key}"); bad += 1; continue
        ok = same(flag, d[flag], h[key])
        print(f"{cmd:8s} {flag:14s} help {d[flag]:>10s}  run {h[key]!s:>22s}  {'ok' if ok else 'DIFFERENT'}")
        bad += not ok
    if cmd == "finetune":
        # --warmup -1: the help's share of the run's steps
        m = re.search(r"--warmup N .*\(-1: ([0-9.]+)% of the steps\) \(default (-?\d+)\)", text)
        if not m or m.group(2) != "-1":
            print("finetune --help: no '-1: N% of the steps' default for --warmup"); bad += 1
        else:
            want = int(h["steps"] * float(m.group(1)) / 100.0)
            ok = h["warmup"] == want and h["steps"] >= 20
            print(f"finetune warmup         {m.group(1)}% of {h['steps']} steps = {want}  run {h['warmup']}  "
                  f"{'ok' if ok else 'DIFFERENT'}")
            bad += not ok
sys.exit(1 if bad else 0)
PYEOF
echo "e2e_train_defaults: ok"
