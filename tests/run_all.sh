#!/usr/bin/env bash
# run_all.sh — `make test`: builds the release program (with the CUDA module
# where nvcc is found: CI compiles and links it) and a sanitizer (ASan+UBSan)
# build that also holds the fuzz targets, then runs every test in the first
# and the unit tests in the second, the unit tests under valgrind (a Debug
# build), and each fuzz target for a few seconds. The second and third builds
# leave CUDA out: it would only be compiled again. Exits non-zero if anything
# fails.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=$(nproc)
fail=0
# Tests run two at a time on 2 cores, each with OpenMP threads: threads that
# spin while waiting would steal the core from the other test's workers.
export OMP_WAIT_POLICY=PASSIVE
make --no-print-directory build || exit 1
if [ -f tests/package.json ] && command -v npm >/dev/null; then
  bash tests/setup_npm.sh || { echo "npm test dependencies failed to install"; exit 1; }
fi
echo "== release build: all tests"
(cd build && ctest --output-on-failure -j "$JOBS") || fail=1
echo "== sanitizer build (ASan+UBSan): unit tests"
make --no-print-directory build-asan || exit 1
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
   OMP_NUM_THREADS=2 ctest --output-on-failure -j "$JOBS" -L unit -LE slow) || fail=1
echo "== valgrind (TG_CPU=avx2: valgrind cannot decode AVX-512): unit tests, leaks and memory errors"
cmake -S . -B build-valgrind -DCMAKE_BUILD_TYPE=Debug -DTG_CUDA=OFF > build-valgrind.cmake.log 2>&1 &&
  cmake --build build-valgrind -j "$JOBS" > build-valgrind.build.log 2>&1 || { cat build-valgrind.build.log; exit 1; }
# TG_BLAS=openblas: oneDNN's JIT-generated code confuses valgrind's analysis.
# TG_CPU: the AVX2 kernels (or the generic ones on a CPU without AVX2).
VG_CPU=avx2
grep -qw avx2 /proc/cpuinfo || VG_CPU=generic
export VG_CPU
vg_one() {
  local t=$1 log="build-valgrind/$(basename "$1").valgrind.log"
  # tests/valgrind.supp: ld.so's word-wise strncmp when the CUDA runtime dlopens the driver
  if TG_CPU=$VG_CPU TG_BLAS=openblas OMP_NUM_THREADS=2 valgrind -q --suppressions=tests/valgrind.supp --leak-check=full \
       --errors-for-leak-kinds=definite \
       --error-exitcode=99 "$t" > "$log" 2>&1; then
    echo "valgrind $(basename "$t"): clean"
  else
    echo "valgrind $(basename "$t"): FAILED"; tail -40 "$log"; return 1
  fi
}
export -f vg_one
find build-valgrind -maxdepth 1 -name "test_*" -type f -executable ! -name "*.log" | sort | xargs -P "$JOBS" -I{} bash -c 'vg_one {}' > build-valgrind/summary.log 2>&1 || fail=1
cat build-valgrind/summary.log
echo "valgrind: $(grep -c ': clean$' build-valgrind/summary.log) passed, $(grep -c ': FAILED$' build-valgrind/summary.log) failed"
echo "== fuzz targets (libFuzzer, ASan+UBSan, built in the sanitizer build): 3 s each over their seed corpora"
bash tests/fuzz/run.sh build-asan 3 || fail=1
exit $fail
