#!/bin/sh
# rules/merge.sh [OUT] -- build rules/default.ini from the parts, in pipeline order.
# The engine's own parts come first, then one part per stage, named and ordered
# as in engine/stagelist.h.  Each stage's part documents its own sections; the
# CLI tests check that the committed default.ini is exactly this output.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/default.ini}
stages=$(sed -n 's/^\(PLAN_\)\{0,1\}STAGE("\([a-z_]*\)".*/\2/p' "$here/../engine/stagelist.h")
[ -n "$stages" ] || { echo "merge.sh: no stages in engine/stagelist.h" >&2; exit 1; }
{
	for p in engine csvio feedback $stages; do
		cat "$here/$p.ini.part"
		echo
	done
} > "$out.tmp"
mv "$out.tmp" "$out"
