#!/bin/bash
# tests/cli/format.sh -- the C sources follow .clang-format (skipped without clang-format).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
command -v clang-format >/dev/null || skip_all "clang-format is not installed"
cd "$top_srcdir" || exit 1
bad=$(for f in engine/*.[ch] tests/unit/*.[ch] fixtures/*.c tests/fuzz/*.c; do
	[ "$f" = engine/embedded.c ] && continue    # generated from rules/ and sql/
	clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"
done)
is "$bad" "" "every C file is formatted as .clang-format says (make format)"
done_testing
