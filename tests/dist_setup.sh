# dist_setup.sh — sourced by tests/e2e_dist*.sh (after they set W, the work
# directory, and trap its removal): checks for mpirun, sets MPI (the
# launcher with the flags a root CI on 2 cores needs: --allow-run-as-root
# and the OMPI_ALLOW_* variables, --oversubscribe for 3 ranks on 2 cores),
# makes byte-level train and validation shards in data/ and valdata/, and
# exits 77 (skipped) when this build has no MPI (after checking it says so).
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (scripts/setup.sh installs openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
MPI=(mpirun --allow-run-as-root --oversubscribe)
cd "$W" || fail "cd $W"
F=/usr/share/games/fortunes
[ -s "$F/science" ] || fail "$F/science missing (scripts/setup.sh installs the 'fortunes' package)"
head -c 60000 "$F/science" > train.txt
tail -c 20000 "$F/people" > val.txt
"$TG" tokenize --bytes train.txt --out data >/dev/null || fail "tokenize"
"$TG" tokenize --bytes val.txt --out valdata >/dev/null || fail "tokenize val"
"${MPI[@]}" -np 2 "$TG" train --data data --out probe --steps 1 --preset tiny --layers 1 --dim 32 --heads 2 --ctx 16 \
  --batch 2 --threads 1 > probe.log 2>&1
if grep -q "built without MPI" probe.log; then
  grep -q "launched by an MPI launcher as 2 ranks" probe.log || { cat probe.log; fail "the no-MPI message"; }
  [ -e probe/metrics.jsonl ] && fail "a build without MPI wrote a run under mpirun"
  echo "SKIP: this build has no MPI (and says so under mpirun)"; exit 77
fi
grep -q "data parallel: 2 ranks" probe.log || { cat probe.log; fail "mpirun -np 2 did not make a 2-rank job"; }
rm -rf probe
