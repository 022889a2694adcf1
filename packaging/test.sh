#!/usr/bin/env bash
# Installs what is missing and runs the whole test suite: vet, unit and integration tests
# (race detector on the non-GUI packages), each fuzz target briefly, the GUI under Xvfb.
# Screenshots and captures go to build/artifacts.
#   FUZZTIME=5s (default) sets how long each fuzz target runs.
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh --test

export CHORDPHONE_ARTIFACTS="$PWD/build/artifacts"
mkdir -p "$CHORDPHONE_ARTIFACTS"
fuzztime="${FUZZTIME:-5s}"

echo "== gofmt and go vet" >&2
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './build/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:" $unformatted >&2
  exit 1
fi
go vet ./...

all=$(go list ./...)
gui=$(go list ./... | grep -E '/ui($|/)' || true)
# Packages whose tests run audio in real time (sound devices, media sessions, whole phones):
# one at a time, so that they do not compete with other packages for the two cores.
realtime=$(go list ./media/audio ./media/pipeline ./media/rtc ./app/e2e/...)
nongui=$(grep -vxF -f <(printf '%s\n' $gui $realtime) <<<"$all" || true)

echo "== tests with the race detector (non-GUI packages)" >&2
go test -race -timeout 20m $nongui
echo "== real-time audio and end-to-end tests (race detector, one package at a time)" >&2
nat='TestCallThroughTURNRelay|TestCallDirectBehindEIMNATs'
go test -race -p 1 -timeout 20m -skip "$nat" $realtime
# Calls between phones behind NATs in network namespaces (root only; they skip otherwise):
# ICE through two NATs on a busy 2-core machine is the slowest path here, so a failure is
# tried once more (a second failure fails the suite).
echo "== calls through NATs (TURN relay and direct)" >&2
go test -race -count=1 -timeout 10m -run "$nat" ./app/e2e ||
  { echo "   NAT call tests failed once; trying again" >&2; go test -race -count=1 -timeout 10m -run "$nat" ./app/e2e; }
echo "== calls between phones built with the race detector" >&2
CHORDPHONE_E2E_RACE=1 go test -race -count=1 -timeout 15m -run 'TestCallByName|TestCallFailures|TestHeadless' ./app/e2e
if [ -n "$gui" ]; then
  echo "== GUI package tests (Fyne test driver)" >&2
  go test -timeout 10m $gui
fi

echo "== fuzz targets, $fuzztime each" >&2
for pkg in $all; do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do
    echo "   $pkg $target" >&2
    if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
      printf '%s\n' "$out" >&2
      # A finding is saved under testdata/fuzz; a run that failed without one (the fuzzing
      # engine's own trouble on a busy machine) is run once more.
      if [ -n "$(git status --porcelain -- "$dir/testdata/fuzz" 2>/dev/null)" ] ||
         ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "fuzz target $target in $pkg failed (a failing input is saved under $dir/testdata/fuzz)" >&2
        exit 1
      fi
      echo "   $target: the first run failed without a finding; the second passed" >&2
    fi
  done
done
echo "== all tests passed" >&2
