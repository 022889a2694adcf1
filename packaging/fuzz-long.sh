#!/usr/bin/env bash
# Runs every fuzz target of the module (each func FuzzX in a *_test.go) for FUZZTIME each,
# one after the other, and prints a summary: target, executions, result (issue 12 point 3).
#   FUZZTIME=10m (default)    how long each target runs
#   FUZZPARALLEL=N            fuzzing workers per target (default: go's, GOMAXPROCS)
#   FUZZMATCH=REGEXP          only targets whose "package Target" matches (e.g. 'wire|SDP')
#   FUZZJOBS=N                targets run at the same time (default 1)
#   FUZZLOG=DIR               where the per-target logs go (default build/fuzz-long)
# A crash makes go write the failing input to the package's testdata/fuzz/FuzzX/ (commit it
# with the fix: it then runs as a regression test in every `go test`). Exit status 1 if any
# target failed.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10m}"
logdir="${FUZZLOG:-build/fuzz-long}"
mkdir -p "$logdir"
summary="$logdir/summary.txt"
: >"$summary"
par=()
if [ -n "${FUZZPARALLEL:-}" ]; then
  par=(-parallel "$FUZZPARALLEL")
fi
jobs="${FUZZJOBS:-1}"
printf '%-42s %-28s %14s %10s  %s\n' package target execs "execs/s" result | tee -a "$summary"

# run_target PKG TARGET: one fuzz run; prints its summary line, exit 1 on failure.
run_target() {
  local pkg=$1 target=$2 log start result secs execs rate
  log="$logdir/$(basename "$pkg")-$target.log"
  start=$(date +%s)
  if go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "${par[@]}" "$pkg" >"$log" 2>&1; then
    result=ok
  else
    result="FAIL (see $log)"
  fi
  secs=$(( $(date +%s) - start ))
  # go's progress lines: "fuzz: elapsed: 2m0s, execs: 123456 (1028/sec), new interesting: ..."
  execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  rate="-"
  if [ -n "$execs" ] && [ "$secs" -gt 0 ]; then
    rate=$(( execs / secs ))
  fi
  printf '%-42s %-28s %14s %10s  %s\n' "${pkg#github.com/chordphone/chordphone/}" "$target" "${execs:-?}" "$rate" "$result" | tee -a "$summary"
  [ "$result" = ok ]
}

failed=0
running=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do
    if [ -n "${FUZZMATCH:-}" ] && ! grep -qE "$FUZZMATCH" <<<"$pkg $target"; then
      continue
    fi
    if [ "$running" -ge "$jobs" ]; then
      wait -n || failed=1
      running=$((running - 1))
    fi
    run_target "$pkg" "$target" &
    running=$((running + 1))
  done
done
while [ "$running" -gt 0 ]; do
  wait -n || failed=1
  running=$((running - 1))
done
echo "FUZZTIME=$fuzztime per target, FUZZJOBS=$jobs; logs in $logdir" | tee -a "$summary"
exit $failed
