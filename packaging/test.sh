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

echo "== go vet" >&2
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
go test -race -p 1 -timeout 20m $realtime
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
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/dev/null
  done
done
echo "== all tests passed" >&2
