#!/bin/bash
# Build the vaultfs Debian package from a clean copy of this tree:
#   packaging/build-deb.sh OUTDIR
# The copy holds only the files git tracks, or sees as new and not
# ignored, so build products of the work tree never reach the package.
# packaging/debian becomes debian/ in the copy, dpkg-buildpackage -us -uc -b
# runs there, and the .deb, .buildinfo and .changes land in OUTDIR.
set -euo pipefail

die() {
	echo "build-deb.sh: error: $*" >&2
	exit 1
}

[ $# -eq 1 ] || {
	echo "usage: $0 OUTDIR" >&2
	exit 64
}
top=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)

command -v dpkg-buildpackage >/dev/null ||
	die "dpkg-buildpackage is missing; install it with: apt-get install dpkg-dev debhelper"
command -v git >/dev/null || die "git is missing; install it with: apt-get install git"
git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1 ||
	die "$top is not a git work tree; build from a clone"

work=$(mktemp -d /tmp/vaultfs-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/vaultfs

# Copy the files git tracks. A tracked file deleted in the work tree is
# skipped, as it will be in the next commit.
mkdir "$src"
(
	cd "$top"
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do
			[ -e "$f" ] && printf '%s\0' "$f"
		done |
		tar --null -T - -cf -
) | tar -xf - -C "$src"

# dpkg-buildpackage wants the packaging at debian/.
[ -d "$src/packaging/debian" ] || die "packaging/debian is missing from $top"
[ ! -e "$src/debian" ] || die "$top has a debian/ directory of its own; remove it"
mv "$src/packaging/debian" "$src/debian"

# Name the missing build dependencies before a long build fails on them.
if ! (cd "$src" && dpkg-checkbuilddeps) 2>"$work/builddeps"; then
	cat "$work/builddeps" >&2
	die "build dependencies are missing; install the packages named above with apt-get install"
fi

(cd "$src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 || {
	tail -40 "$work/build.log" >&2
	die "dpkg-buildpackage failed (last 40 lines above)"
}

shopt -s nullglob
artifacts=("$work"/*.deb "$work"/*.buildinfo "$work"/*.changes)
[ ${#artifacts[@]} -gt 0 ] || die "dpkg-buildpackage produced no .deb"
cp "${artifacts[@]}" "$out/"
for f in "${artifacts[@]}"; do
	echo "$out/${f##*/}"
done
