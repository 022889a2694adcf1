#!/bin/bash
# GUI smoke run against a real overlay, for the Xvfb end-to-end test (issue 10 point 8):
#   xvfb-run -a -s "-screen 0 900x700x24" ui/testdata/gui-smoke.sh path/to/chordphone
# A headless "bob" starts the overlay with --auto-answer; the GUI "alice" joins it. xdotool
# types "bob" into the dial field (focused at start) and presses Return; bob must report the
# call. Then bob calls alice and the script clicks Accept in the incoming-call window.
# Screenshots go to $CHORDPHONE_ARTIFACTS (default: a temp dir). Exit status 0 = passed.
set -u
BIN=${1:?usage: gui-smoke.sh CHORDPHONE_BINARY}
WORK=$(mktemp -d)
OUT=${CHORDPHONE_ARTIFACTS:-$WORK/artifacts}
mkdir -p "$OUT"
export HOME=$WORK/home XDG_CONFIG_HOME=$WORK/home/.config LANG=C.UTF-8
WAV=$(dirname "$0")/../../assets/sounds/ringtone.wav
P1=$((20000 + RANDOM % 20000)); P2=$((P1 + 1))
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
trap cleanup EXIT

# wait_for FILE REGEX SECONDS: until a line of FILE matches.
wait_for() {
	for _ in $(seq $(($3 * 10))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
	echo "FAIL: no '$2' in $1 within $3 s"; cat "$1"; exit 1
}

mkfifo "$WORK/bob.in"
sleep 600 > "$WORK/bob.in" & pids+=($!)   # keeps bob's stdin open
"$BIN" --headless --auto-answer --profile "$WORK/bob" --user bob --overlay smoke.test \
	--listen 127.0.0.1:$P2 --audio-in "$WAV" --audio-out "$WORK/bob-out.wav" \
	< "$WORK/bob.in" > "$WORK/bob.jsonl" 2> "$WORK/bob.log" & pids+=($!)
exec 3> "$WORK/bob.in"
wait_for "$WORK/bob.jsonl" '"event":"registered"' 30

"$BIN" --profile "$WORK/alice" --user alice --overlay smoke.test --listen 127.0.0.1:$P1 \
	--bootstrap 127.0.0.1:$P2 --audio-in "$WAV" --audio-out "$WORK/alice-out.wav" \
	> "$WORK/alice.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do W=$(xdotool search --name '^Chordphone$' 2>/dev/null | head -1); [ -n "$W" ] && break; sleep 0.1; done
[ -n "${W:-}" ] || { echo "FAIL: no Chordphone window"; cat "$WORK/alice.log"; exit 1; }
sleep 4 # joining and registering on loopback takes well under this; the GUI logs no event
import -window root "$OUT/xvfb-main.png"

# Outgoing: type into the focused dial field, Return places the call.
xdotool type --window "$W" bob
xdotool key --window "$W" Return
wait_for "$WORK/bob.jsonl" '"event":"answered"' 30
sleep 1
import -window root "$OUT/xvfb-in-call.png"
echo hangup >&3
wait_for "$WORK/bob.jsonl" '"event":"hangup"' 30

# Incoming: bob calls; the incoming-call window must not take the keyboard focus.
echo "call alice" >&3
for _ in $(seq 100); do IW=$(xdotool search --name '^Incoming call' 2>/dev/null | head -1); [ -n "$IW" ] && break; sleep 0.1; done
[ -n "${IW:-}" ] || { echo "FAIL: no incoming-call window"; exit 1; }
sleep 0.5
import -window root "$OUT/xvfb-incoming.png"
FOCUS=$(xdotool getwindowfocus getwindowname 2>/dev/null)
[ "$FOCUS" = "Chordphone" ] || echo "note: focus is on '$FOCUS'"
xdotool mousemove --window "$IW" 240 115 click 1 # Accept (right half of the button row)
wait_for "$WORK/bob.jsonl" '"event":"answered","time":"[^"]*","call_id":"2"' 30
echo hangup >&3
wait_for "$WORK/bob.jsonl" '"call_id":"2".*"event":"hangup"\|"event":"hangup".*"call_id":"2"' 30
echo "PASS: screenshots in $OUT"
