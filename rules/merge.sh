#!/bin/sh
# rules/merge.sh [OUT] -- build rules/default.ini from the parts, in pipeline order.
# Each stage's part documents its own sections; the CLI tests check that the
# committed default.ini is exactly this output.
set -e
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/default.ini}
{
	for p in engine csvio normalize blacklist dedupe partial score cohort match; do
		cat "$here/$p.ini.part"
		echo
	done
} > "$out.tmp"
mv "$out.tmp" "$out"
