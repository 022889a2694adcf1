#!/usr/bin/env bash
# Builds Chordphone's Linux packages into build/package/ (or --out DIR):
#   chordphone_VERSION_linux_amd64.tar.xz  from `fyne package -os linux --release`: the binary,
#                                          the .desktop entry and the icon, with a Makefile
#                                          (`sudo make install` puts them under /usr/local)
#   chordphone_VERSION_amd64.deb           the same binary, desktop entry and icons for /usr,
#                                          the chordphone-peer systemd unit, and a postinst that
#                                          makes the `chordphone` system user and /var/lib/chordphone
#
#   packaging/build-package.sh [--out DIR] [--tools DIR]
#
# The version comes from app/version/version.go (the one place it is defined), the Fyne build
# number from the commit count (CHORDPHONE_BUILD overrides it). `fyne package` rewrites
# FyneApp.toml (it bumps Build) and writes into the source directory, so it runs on a copy of
# the source tree under the output directory: the git tree is left exactly as it was.
# The fyne tool (fyne.io/tools, not a dependency of the app) is installed into build/tools
# (or --tools DIR) and kept there.
# It first runs packaging/install-deps.sh (the build dependencies; a no-op when present). It
# needs go, tar, xz and dpkg-deb, and uses dpkg-shlibdeps (dpkg-dev, installed with --test)
# for versioned library dependencies when present.
set -euo pipefail

FYNE_TOOLS_VERSION=v1.7.4

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build/package"
tools="$root/build/tools"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    --tools) tools=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    -h|--help) sed -n '2,/^set -e/p' "$0" | sed -n 's/^# \{0,1\}//p'; exit 0 ;;
    *) echo "build-package: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
say() { echo "build-package: $*" >&2; }
die() { say "$*"; exit 1; }

"$root/packaging/install-deps.sh"
for tool in go tar xz dpkg-deb; do
  command -v "$tool" >/dev/null || die "$tool is missing (packaging/install-deps.sh --test installs the packaging tools)"
done

# --- version: app/version/version.go is the one place ---------------------------------------
version=$(sed -n 's/^const Version = "\([^"]*\)".*/\1/p' "$root/app/version/version.go")
[ -n "$version" ] || die "no 'const Version = \"...\"' in app/version/version.go"
# Fyne wants x, x.y or x.y.z; a pre-release suffix (0.2.0-rc1) stays in the .deb version only.
fyne_version=$(grep -oE '^[0-9]+(\.[0-9]+){0,2}' <<<"$version") || die "version $version does not start with x.y.z"
# Debian sorts ~ before anything: 0.2.0~rc1 < 0.2.0.
deb_version=${version//-/\~}
build_no=${CHORDPHONE_BUILD:-$(git -C "$root" rev-list --count HEAD 2>/dev/null || echo 1)}
[[ "$build_no" =~ ^[1-9][0-9]*$ ]] || die "build number '$build_no' is not a positive integer"
arch=$(dpkg --print-architecture 2>/dev/null || echo amd64)
goarch=$(go env GOARCH)
say "version $version (fyne $fyne_version build $build_no), $arch"

# --- the fyne tool, in a temporary GOBIN kept under build/tools ---------------------------------
fyne="$tools/fyne-$FYNE_TOOLS_VERSION"
if [ ! -x "$fyne" ]; then
  say "installing fyne.io/tools/cmd/fyne@$FYNE_TOOLS_VERSION into $tools"
  mkdir -p "$tools"
  gobin=$(mktemp -d "$tools/gobin.XXXXXX")
  # Outside the module, so that go.mod is neither read nor changed.
  (cd / && GOBIN="$gobin" GOFLAGS=-mod=mod go install "fyne.io/tools/cmd/fyne@$FYNE_TOOLS_VERSION")
  mv "$gobin/fyne" "$fyne"
  rmdir "$gobin"
fi

# --- a copy of the source tree ------------------------------------------------------------------
mkdir -p "$out"
stage="$out/src"
rm -rf "$stage"
mkdir -p "$stage"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and new files, as in the work tree; ignored ones (build/, binaries) stay out.
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -xf - -C "$stage"
else
  (cd "$root" && tar --exclude=./build --exclude=./chordphone -cf - .) | tar -xf - -C "$stage"
fi
# The copy's FyneApp.toml carries this version and build; fyne then bumps the copy's Build.
sed -i -E "s/^([[:space:]]*Version[[:space:]]*=[[:space:]]*).*/\1\"$fyne_version\"/; s/^([[:space:]]*Build[[:space:]]*=[[:space:]]*).*/\1$build_no/" "$stage/FyneApp.toml"

# --- fyne package -------------------------------------------------------------------------------
work="$out/work"
rm -rf "$work"
mkdir -p "$work"
say "fyne package -os linux --release (compiles Chordphone; a cold build takes a few minutes)"
(
  cd "$work"
  # The copy lives inside the repository's directory: no VCS stamp from the enclosing repo.
  export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false"
  "$fyne" package -os linux --release --source-dir "$stage" \
    --app-version "$fyne_version" --app-build "$build_no"
)
shopt -s nullglob
made=("$work"/*.tar.xz)
[ ${#made[@]} -eq 1 ] || die "fyne package made no single .tar.xz in $work: ${made[*]:-none}"
tarball="$out/chordphone_${version}_linux_${goarch}.tar.xz"
mv "${made[0]}" "$tarball"
say "made $tarball"

# --- the .deb -----------------------------------------------------------------------------------
unpacked="$work/unpacked"
mkdir -p "$unpacked"
tar -xJf "$tarball" -C "$unpacked"
find_one() { # find_one DESCRIPTION PATTERN: the single file in the tarball matching PATTERN
  local hits
  mapfile -t hits < <(find "$unpacked" -path "$2" -type f)
  [ ${#hits[@]} -eq 1 ] || die "the tarball has ${#hits[@]} $1 ($2)"
  echo "${hits[0]}"
}
bin=$(find_one binary '*/bin/chordphone')
desktop=$(find_one "desktop entry" '*/share/applications/*.desktop')
app_id=$(basename "$desktop" .desktop)
# Join links (chordphone:join?..., from `chordphone overlay-server invite`) open the phone with
# Settings → Overlay filled: the entry handles the chordphone: URI scheme and passes the link.
# fyne package has no setting for either, so the entry is edited here (and the tarball remade).
sed -i -e 's/^Exec=chordphone$/Exec=chordphone %u/' "$desktop"
grep -q '^MimeType=' "$desktop" || sed -i -e '/^Exec=/a MimeType=x-scheme-handler/chordphone;' "$desktop"
grep -q '^Exec=chordphone %u$' "$desktop" || die "the desktop entry's Exec line is not 'chordphone': $(grep '^Exec=' "$desktop")"
tar -cJf "$tarball" -C "$unpacked" .

debroot="$work/deb"
mkdir -p "$debroot/DEBIAN"
install -D -m 0755 "$bin" "$debroot/usr/bin/chordphone"
install -D -m 0644 "$desktop" "$debroot/usr/share/applications/$app_id.desktop"
# The desktop entry names its icon by app ID; the icon theme has it in every rendered size.
for png in "$root"/assets/icon-*.png; do
  n=$(basename "$png" .png); n=${n#icon-}
  install -D -m 0644 "$png" "$debroot/usr/share/icons/hicolor/${n}x${n}/apps/$app_id.png"
done
install -D -m 0644 "$root/assets/icon.png" "$debroot/usr/share/icons/hicolor/512x512/apps/$app_id.png"
install -D -m 0644 "$root/assets/icon.svg" "$debroot/usr/share/icons/hicolor/scalable/apps/$app_id.svg"
install -D -m 0644 "$root/packaging/chordphone-peer.service" "$debroot/lib/systemd/system/chordphone-peer.service"
install -D -m 0644 "$root/packaging/chordphone-peer.default" "$debroot/etc/default/chordphone-peer"
install -D -m 0644 "$root/README.md" "$debroot/usr/share/doc/chordphone/README.md"
gzip -9n "$debroot/usr/share/doc/chordphone/README.md"
echo "/etc/default/chordphone-peer" >"$debroot/DEBIAN/conffiles"
for s in postinst prerm postrm; do
  install -m 0755 "$root/packaging/deb/$s" "$debroot/DEBIAN/$s"
done

# Runtime libraries. The binary's own (DT_NEEDED) ones with minimum versions from
# dpkg-shlibdeps; GLFW opens the X11 extension libraries with dlopen at run time, so no tool
# sees them in the binary and they are named here.
dlopened="libxcursor1, libxrandr2, libxinerama1, libxi6, libxxf86vm1"
if command -v dpkg-shlibdeps >/dev/null; then
  shl="$work/shlibdeps"
  mkdir -p "$shl/debian"
  printf 'Source: chordphone\n\nPackage: chordphone\nArchitecture: any\n' >"$shl/debian/control"
  linked=$(cd "$shl" && dpkg-shlibdeps -O "$debroot/usr/bin/chordphone" 2>"$work/shlibdeps.log" | sed -n 's/^shlibs:Depends=//p') ||
    die "dpkg-shlibdeps failed: $(cat "$work/shlibdeps.log")"
else
  # Without dpkg-dev: the packages that hold the libraries the binary links, unversioned.
  linked=$(ldd "$debroot/usr/bin/chordphone" | awk '/=> \//{print $3}' | xargs -r realpath |
    xargs -r dpkg -S 2>/dev/null | cut -d: -f1 | sort -u | paste -sd, | sed 's/,/, /g')
fi
[ -n "$linked" ] || die "found no library dependencies of the binary"
depends="$linked, $dlopened"
installed_size=$(du -sk --exclude=DEBIAN "$debroot" | cut -f1)

cat >"$debroot/DEBIAN/control" <<EOF
Package: chordphone
Version: $deb_version
Architecture: $arch
Maintainer: Chordphone developers <chordphone@chordphone.org>
Installed-Size: $installed_size
Depends: $depends
Recommends: pulseaudio | pipewire-pulse | libasound2-plugins
Section: net
Priority: optional
Homepage: https://github.com/chordphone/chordphone
Description: peer-to-peer softphone with no SIP server
 Chordphone is a desktop softphone that is itself a full P2PSIP peer: every
 running Chordphone is a RELOAD (RFC 6940) peer on a CHORD-RELOAD overlay. It
 stores its user's SIP registration (RFC 7904), finds callees through Chord,
 connects to the callee's phone directly with AppAttach and ICE, and runs SIP
 and Opus audio between the two phones.
 .
 The chordphone-peer systemd unit runs a headless, always-on storing and
 bootstrap peer with its profile in /var/lib/chordphone.
EOF
(cd "$debroot" && find . \( -path ./DEBIAN -o -path ./etc \) -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)

deb="$out/chordphone_${deb_version}_${arch}.deb"
rm -f "$deb"
# --root-owner-group: files owned by root in the package without fakeroot.
dpkg-deb --root-owner-group -Zxz --build "$debroot" "$deb" >&2
say "made $deb"
say "depends: $depends"
rm -rf "$work" "$stage"
printf '%s\n%s\n' "$tarball" "$deb"
