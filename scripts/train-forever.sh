#!/usr/bin/env bash
# train-forever.sh — keeps a `truthgpt train` run going through failures, as
# large runs do (docs/distributed.md "Failures"): launches it (under mpirun
# when more than one rank), and when the job dies — a rank killed, a node
# lost, the collective watchdog firing — relaunches it with --resume from
# the newest complete checkpoint, optionally on fewer ranks.
#
# usage: scripts/train-forever.sh [options] -- TRUTHGPT train --out RUN [train flags]
#   --ranks N          ranks of the first launch (default 1: no mpirun)
#   --min-ranks M      never fewer ranks than M (default 1)
#   --shrink           one rank fewer after each failed launch (a lost node)
#   --ranks-file F     before each launch read the rank count from F (a health
#                      check or an operator writes how many ranks are usable)
#   --global-batch G   keep G micro-batches a step whatever the ranks: passes
#                      --accum G/ranks (G must be a multiple of every rank
#                      count used); the run then continues the same training
#                      (docs/architecture.md: k = (step*A + a)*R + r)
#   --max-restarts K   give up after K failed launches in a row (default 100)
#   --delay S          seconds to wait before a relaunch (default 10)
#   --mpirun "CMD"     the launcher and its flags (default "mpirun"); e.g.
#                      "mpirun --hostfile hosts" or "srun" (with srun the
#                      rank count is given as -n N)
# Exit status: 0 when the run finished; the run's own status when it stopped
# for a reason a relaunch cannot fix (2: bad input; 130/143: stopped by
# Ctrl-C/SIGTERM, checkpoint saved); 1 after --max-restarts failures.
set -u
ranks=1 min_ranks=1 shrink=0 ranks_file="" global_batch=0 max_restarts=100 delay=10 launcher="mpirun"
usage() { sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --min-ranks) min_ranks=$2; shift 2 ;;
    --shrink) shrink=1; shift ;;
    --ranks-file) ranks_file=$2; shift 2 ;;
    --global-batch) global_batch=$2; shift 2 ;;
    --max-restarts) max_restarts=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --mpirun) launcher=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; break ;;
    *) echo "train-forever.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ $# -ge 2 ] || { echo "train-forever.sh: give the command after --: -- truthgpt train --out RUN ..." >&2; exit 2; }
for v in "$ranks" "$min_ranks" "$global_batch" "$max_restarts" "$delay"; do
  case "$v" in ''|*[!0-9]*) echo "train-forever.sh: '$v' is not a whole number" >&2; exit 2 ;; esac
done
[ "$ranks" -ge 1 ] || { echo "train-forever.sh: --ranks must be at least 1" >&2; exit 2; }
cmd=("$@")
has_resume=0
for a in "${cmd[@]}"; do [ "$a" = "--resume" ] && has_resume=1; done
# The first launch also takes --resume: an empty RUN then starts fresh.
[ $has_resume = 1 ] || cmd+=(--resume)

failures=0 launch=0 stop=0 child=""
# Ctrl-C or SIGTERM to this script: passed on to the job (which saves a
# checkpoint and stops: mpirun forwards it to every rank), and no relaunch.
trap 'stop=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' INT TERM
while :; do
  if [ -n "$ranks_file" ] && [ -s "$ranks_file" ]; then
    r=$(tr -dc '0-9' < "$ranks_file")
    [ -n "$r" ] && [ "$r" -ge 1 ] && ranks=$r
  fi
  [ "$ranks" -lt "$min_ranks" ] && { echo "train-forever.sh: $ranks ranks left, fewer than --min-ranks $min_ranks" >&2; exit 1; }
  extra=()
  if [ "$global_batch" -gt 0 ]; then
    if [ $((global_batch % ranks)) -ne 0 ]; then
      echo "train-forever.sh: --global-batch $global_batch is not a multiple of $ranks ranks" >&2; exit 2
    fi
    extra=(--accum $((global_batch / ranks)))
  fi
  launch=$((launch + 1))
  echo "train-forever.sh: launch $launch on $ranks rank(s): ${cmd[*]} ${extra[*]}" >&2
  if [ "$ranks" -gt 1 ]; then
    read -r -a L <<< "$launcher"
    case "${L[0]}" in
      srun) "${L[@]}" -n "$ranks" "${cmd[@]}" "${extra[@]}" & ;;
      *) "${L[@]}" -np "$ranks" "${cmd[@]}" "${extra[@]}" & ;;
    esac
  else
    "${cmd[@]}" "${extra[@]}" &
  fi
  child=$!
  # wait returns early when a trapped signal arrives: wait again for the exit.
  wait "$child"; rc=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child"; rc=$?; done
  child=""
  [ $stop = 1 ] && { echo "train-forever.sh: stopped by a signal (the job saved a checkpoint): not relaunching" >&2; exit 143; }
  case $rc in
    0) echo "train-forever.sh: done after $launch launch(es)" >&2; exit 0 ;;
    2|130|143) echo "train-forever.sh: the run exited $rc (bad input or stopped on purpose): not relaunching" >&2; exit $rc ;;
  esac
  failures=$((failures + 1))
  if [ "$failures" -gt "$max_restarts" ]; then
    echo "train-forever.sh: $failures failed launches: giving up" >&2; exit 1
  fi
  [ $shrink = 1 ] && [ "$ranks" -gt "$min_ranks" ] && ranks=$((ranks - 1))
  echo "train-forever.sh: the job failed (exit $rc); relaunching from the last checkpoint in ${delay}s" >&2
  sleep "$delay"
done
