#!/usr/bin/env bash
# Installs the Debian packages Chordphone needs, skipping those already present.
#   packaging/install-deps.sh          build dependencies (enough to build and run the phone)
#   packaging/install-deps.sh --test   build and test dependencies
# Non-interactive; uses sudo when not root. A package that cannot be installed is named.
set -euo pipefail

build_pkgs=(pkg-config gcc libc6-dev libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev
  libxinerama-dev libxi-dev libxxf86vm-dev portaudio19-dev libopus-dev libopusfile-dev
  libspeexdsp-dev)
test_pkgs=(xvfb xauth x11-apps x11-utils xdotool imagemagick tshark pulseaudio pulseaudio-utils
  libasound2-plugins iproute2 iptables dpkg-dev fakeroot xz-utils dbus baresip-core)

want=("${build_pkgs[@]}")
if [ "${1:-}" = "--test" ]; then want+=("${test_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}" >&2
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get update -qq >&2 || echo "install-deps: apt-get update failed; trying the cached lists" >&2
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
  still=()
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || still+=("$p")
  done
  echo "install-deps: could not install: ${still[*]}" >&2
  exit 1
fi
