#!/usr/bin/python3
"""dist_compare.py — compares two training runs for tests/e2e_dist*.sh.

  dist_compare.py metrics A.jsonl B.jsonl FIRST LAST RTOL
      the "loss" (and "val_loss") of steps FIRST..LAST agree within RTOL
      relative, and both files have every one of those steps
  dist_compare.py tensors A.safetensors B.safetensors ATOL
      the same tensor names and shapes, every element within ATOL

Prints the largest differences; exits 1 on a mismatch. Standard library
only (the safetensors header is JSON, the data little-endian F32).
"""
import json
import struct
import sys


def load_metrics(path):
    loss, val = {}, {}
    with open(path) as f:
        for line in f:
            o = json.loads(line)
            if "loss" in o:
                loss[o["step"]] = o["loss"]
            if "val_loss" in o:
                val[o["step"]] = o["val_loss"]
    return loss, val


def metrics(a, b, first, last, rtol):
    (la, va), (lb, vb) = load_metrics(a), load_metrics(b)
    worst = 0.0
    for s in range(first, last + 1):
        if s not in la or s not in lb:
            print(f"step {s} missing in {a if s not in la else b}")
            return 1
        r = abs(la[s] - lb[s]) / max(abs(la[s]), 1e-30)
        worst = max(worst, r)
        if r > rtol:
            print(f"step {s}: loss {la[s]!r} vs {lb[s]!r} (relative {r:.3g} > {rtol})")
            return 1
    for s in set(va) & set(vb):
        if first <= s <= last:
            r = abs(va[s] - vb[s]) / max(abs(va[s]), 1e-30)
            worst = max(worst, r)
            if r > rtol:
                print(f"step {s}: val_loss {va[s]!r} vs {vb[s]!r} (relative {r:.3g} > {rtol})")
                return 1
    print(f"losses of steps {first}-{last}: max relative difference {worst:.3g} (tolerance {rtol})")
    return 0


def load_tensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    head = json.loads(blob[8 : 8 + n])
    head.pop("__metadata__", None)
    out = {}
    for name, t in head.items():
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {t['dtype']}, expected F32")
        lo, hi = t["data_offsets"]
        data = blob[8 + n + lo : 8 + n + hi]
        out[name] = (t["shape"], struct.unpack(f"<{len(data) // 4}f", data))
    return out


def tensors(a, b, atol):
    ta, tb = load_tensors(a), load_tensors(b)
    if set(ta) != set(tb):
        print(f"tensor names differ: {sorted(set(ta) ^ set(tb))[:5]}")
        return 1
    worst, where = 0.0, ""
    for name in sorted(ta):
        (sa, xa), (sb, xb) = ta[name], tb[name]
        if sa != sb:
            print(f"{name}: shape {sa} vs {sb}")
            return 1
        for i, (u, v) in enumerate(zip(xa, xb)):
            d = abs(u - v)
            if d > worst:
                worst, where = d, f"{name}[{i}] {u!r} vs {v!r}"
    print(f"{a.split('/')[-1]}: max abs difference {worst:.3g} (tolerance {atol}) {where}")
    return 0 if worst <= atol else 1


if __name__ == "__main__":
    if len(sys.argv) == 7 and sys.argv[1] == "metrics":
        sys.exit(metrics(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])))
    if len(sys.argv) == 5 and sys.argv[1] == "tensors":
        sys.exit(tensors(sys.argv[2], sys.argv[3], float(sys.argv[4])))
    print(__doc__)
    sys.exit(2)
