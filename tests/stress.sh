#!/usr/bin/env bash
# Run the whole test suite several times on a busy machine, to find tests whose outcome
# depends on timing or load. Busy-loop processes run beside pytest for the whole run and
# are stopped however it ends.
#
#   tests/stress.sh [RUNS] [BUSY] [-- extra pytest args]
#     RUNS  how many times to run the suite (default 3)
#     BUSY  how many busy-loop processes to start beside it (default: the CPU count)
#
# Each run's pytest output goes to stress-logs/run-N.log; the summary lists every test
# that failed in any run, with how many runs it failed in.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
busy=${2:-$(nproc)}
shift $(( $# > 2 ? 2 : $# ))
[ "${1:-}" = "--" ] && shift
logs=stress-logs
mkdir -p "$logs"

pids=()
stop_busy() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; }
trap stop_busy EXIT INT TERM
for _ in $(seq "$busy"); do
    python -c "while True: pass" &
    pids+=($!)
done

failed_runs=0
for run in $(seq "$runs"); do
    log="$logs/run-$run.log"
    python -m pytest -n auto -q "$@" >"$log" 2>&1
    code=$?
    echo "run $run: exit $code, $(tail -n 1 "$log")"
    [ $code -eq 0 ] || failed_runs=$((failed_runs + 1))
done
echo "busy loops: $busy, runs: $runs, runs with a failure: $failed_runs"
echo "failing tests (runs failed in):"
grep -h "^FAILED\|^ERROR" "$logs"/run-*.log | sed 's/ - .*//' | sort | uniq -c | sort -rn
[ $failed_runs -eq 0 ]
