#!/bin/bash
# The man pages under packaging/man: each renders with groff and man
# without a warning, has a NAME line that mandb can index, and is found by
# man -w after make install.
. "$(dirname "$0")/lib.sh"

ensure_packages groff-base man-db
require "groff (package groff-base)" command -v groff
require "man (package man-db)" command -v man

make_test_dir
PAGES=(vaultfs.8 vaultctl.8 vaultfs-policy.5 agent-kill-switch.8)

# no_warnings COMMAND...: COMMAND succeeds and prints nothing on standard error.
no_warnings() {
	local err
	err=$("$@" 2>&1 >/dev/null)
	local r=$?
	[ -n "$err" ] && diag "$err"
	[ $r -eq 0 ] && [ -z "$err" ]
}

lexgrog_quiet() { lexgrog "$1" >/dev/null; }

for page in "${PAGES[@]}"; do
	file=$VF_SRCDIR/packaging/man/$page
	check "$page renders with groff -man -ww and no warning" \
		no_warnings groff -man -ww -z "$file"
	check "$page renders with man --warnings and no warning" \
		no_warnings env MANWIDTH=80 man --warnings=w -l "$file"
	check "$page has a NAME line mandb indexes" lexgrog_quiet "$file"
done

if is_root && [ -f "$VF_BUILDDIR/Makefile" ]; then
	check "make install into a prefix" install_prefix
	for page in "${PAGES[@]}"; do
		name=${page%.*}
		section=${page##*.}
		check "man -w finds $name($section) after make install" \
			test "$(MANPATH=$PKG_PREFIX/share/man man -w "$section" "$name" 2>/dev/null)" = \
			"$PKG_PREFIX/share/man/man$section/$page"
	done
fi

finish
