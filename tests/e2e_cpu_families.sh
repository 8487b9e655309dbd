#!/usr/bin/env bash
# e2e_cpu_families.sh — one portable program, every CPU kernel family:
#   - `--version` names the family the CPU gets, TG_CPU forces each family
#     this CPU runs, and a family it cannot run (or an unknown name) exits 2
#     naming what is missing;
#   - `sample` on a trained tiny checkpoint gives the same greedy and seeded
#     tokens under every family, natively and under QEMU's user-mode
#     emulation of a Haswell (AVX2, no AVX-512) and a Nehalem (no AVX at
#     all), where the program must pick avx2 and generic by itself;
#   - the manifest records the family that trained the model.
# QEMU cannot emulate AVX-512: the avx512 families run only where the CPU
# has them (test_backend checks their ops). Skips (77) off x86-64.
# Usage: tests/e2e_cpu_families.sh path/to/truthgpt
set -u
TG=${1:?usage: e2e_cpu_families.sh path/to/truthgpt}
TG=$(cd "$(dirname "$TG")" && pwd)/$(basename "$TG")
[ "$(uname -m)" = x86_64 ] || { echo "skip: not x86-64"; exit 77; }
W=$(mktemp -d /tmp/tg_e2e_cpu_XXXXXX)
trap 'rm -rf "$W"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$W"
export OMP_NUM_THREADS=2

head -c 20000 /usr/share/games/fortunes/science > t.txt || fail "fortunes missing (scripts/setup.sh)"
"$TG" tokenize --bytes t.txt --out data > /dev/null 2>&1 || fail "tokenize"
"$TG" train --preset tiny --layers 2 --heads 2 --dim 64 --ctx 64 --batch 8 --steps 120 --lr 3e-3 \
  --eval-every 0 --data data --out run > train.log 2>&1 || { cat train.log; fail "train"; }

native=$("$TG" --version | sed -n 's/^CPU kernels: \([a-z0-9]*\) .*/\1/p')
avail=$("$TG" --version | sed -n 's/.*this CPU runs: \([a-z0-9,]*\);.*/\1/p')
[ -n "$native" ] && [ -n "$avail" ] || fail "--version does not name the CPU kernels: $("$TG" --version)"
grep -q "\"cpu_kernels\": \"$native\"" run/manifest.json || fail "manifest.json lacks cpu_kernels $native"
echo "native family: $native (this CPU runs: $avail)"

samples() { # the greedy and the seeded sample of a run, one line each
  "$@" sample --model run --prompt "The " --temperature 0 --max-tokens 40 2>/dev/null | tr '\n' '|'
  echo
  "$@" sample --model run --prompt "A " --temperature 1 --seed 5 --max-tokens 40 2>/dev/null | tr '\n' '|'
  echo
}
want=$(samples "$TG")
[ "$(echo "$want" | head -1 | wc -c)" -gt 20 ] || fail "no sample: $want"
for fam in ${avail//,/ }; do
  got=$(TG_CPU=$fam samples "$TG")
  [ "$got" = "$want" ] || fail "TG_CPU=$fam samples differ from $native's:
$got
$want"
  echo "ok TG_CPU=$fam: same tokens"
done

# families the CPU cannot run, and names that are none
out=$(TG_CPU=nonesuch "$TG" sample --model run --prompt "x" --max-tokens 2 2>&1)
[ $? -eq 2 ] && echo "$out" | grep -q "not a kernel family" || fail "TG_CPU=nonesuch: $out"
case ",$avail," in
  *,avx512bf16,*) ;;
  *) out=$(TG_CPU=avx512bf16 "$TG" sample --model run --prompt "x" --max-tokens 2 2>&1)
     [ $? -eq 2 ] && echo "$out" | grep -q "lacks" || fail "TG_CPU=avx512bf16 on a CPU without it: $out" ;;
esac

if ! command -v qemu-x86_64 > /dev/null; then
  echo "FAIL: qemu-x86_64 missing (Debian's qemu-user; scripts/setup.sh --test installs it)" >&2
  exit 1
fi
for cpu in Haswell:avx2 Nehalem:generic; do
  model=${cpu%%:*} fam=${cpu##*:}
  # OPENBLAS_CORETYPE (set on some hosts to pin OpenBLAS's kernels for the
  # host's CPU) would make OpenBLAS run Haswell code on the emulated Nehalem
  q=(env -u OPENBLAS_CORETYPE qemu-x86_64 -cpu "$model")
  v=$("${q[@]}" "$TG" --version 2> /dev/null | sed -n 's/^CPU kernels: \([a-z0-9]*\) .*/\1/p')
  [ "$v" = "$fam" ] || fail "under qemu -cpu $model the program picked '$v', expected $fam"
  got=$(samples "${q[@]}" "$TG")
  [ "$got" = "$want" ] || fail "qemu -cpu $model ($fam) samples differ:
$got
$want"
  echo "ok qemu -cpu $model: picks $fam, same tokens"
done
echo "e2e_cpu_families: all ok"
