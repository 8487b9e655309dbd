# lib_e2e.sh — sourced by end-to-end scripts: what several of them share.
#
# Counting checks (e2e_ingest, e2e_search): output of the command under test
# goes to $T/out and $T/err; failures are counted in $fails.
#   ok WHAT / bad WHAT             print a result line (bad counts a failure)
#   expect CODE WHAT -- CMD...      run CMD, check its exit code
#   has FILE TEXT WHAT, hasnt FILE TEXT WHAT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
expect() {
  local want=$1 what=$2
  shift 3
  "$@" > "$T/out" 2> "$T/err"
  local got=$?
  if [ "$got" = "$want" ]; then ok "$what (exit $got)"; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/err" | head -5; fi
}
has() { if grep -q -- "$2" "$1"; then ok "$3"; else bad "$3: '$2' not in $1"; sed 's/^/    /' "$1" | head -5; fi; }
hasnt() { if grep -q -- "$2" "$1"; then bad "$3: '$2' in $1"; else ok "$3"; fi; }

# tg_e2e_tiny_run TG: in the current directory, byte shards of 20 KB of the
# science fortunes in data/ and a 2-step tiny run in good/ (checkpoint-2),
# trained with the options in the array SMALL (set here). Calls fail().
tg_e2e_tiny_run() {
  head -c 20000 /usr/share/games/fortunes/science > t.txt 2> /dev/null || fail "fortunes missing (scripts/setup.sh)"
  "$1" tokenize --bytes t.txt --out data > /dev/null || fail "tokenize"
  SMALL=(--preset tiny --layers 1 --heads 2 --dim 32 --ctx 16 --batch 2 --warmup 1 --eval-every 0 --threads 1)
  "$1" train "${SMALL[@]}" --data data --steps 2 --out good > good.log 2>&1 || { cat good.log; fail "setup run"; }
  [ -f good/checkpoint-2/model.safetensors ] || fail "setup run left no checkpoint"
}
