#!/bin/sh
# Runs every fuzz target of package wire for a few seconds each
# (FUZZTIME=5m ./fuzz.sh for a longer run). Seeds: testdata/fuzz/<Target>/.
set -e
cd "$(dirname "$0")"
for f in FuzzDecode FuzzBody FuzzFrame FuzzReassemble; do
	go test -run '^$' -fuzz "^$f\$" -fuzztime "${FUZZTIME:-5s}" -parallel "${FUZZPARALLEL:-1}" .
done
