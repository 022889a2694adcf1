#!/usr/bin/env bash
# Installs what is missing, builds Chordphone and starts it. Flags are passed to chordphone:
#   packaging/run.sh                 the phone with its window
#   packaging/run.sh --headless ...  the headless peer
set -euo pipefail
cd "$(dirname "$0")/.."
packaging/install-deps.sh
mkdir -p build
echo "run: building chordphone (the first build takes a few minutes)" >&2
go build -o build/chordphone .
exec build/chordphone "$@"
