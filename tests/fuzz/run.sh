#!/bin/bash
# tests/fuzz/run.sh -- short libFuzzer runs of the CSV reader (fuzz_csv.c, RELIABILITY Z1)
# and of the rule loader (fuzz_rules.c, Z2), each on a copy of its seed folder.
# The engine sources are compiled here with clang and the fuzzer, address and
# undefined-behaviour sanitizers (not linked from libengine.a, which is built
# without them), without OpenMP: the harnesses run one thread, and every omp call
# in the engine is behind #ifdef _OPENMP.  FUZZ_SECONDS (default 10) per harness;
# FUZZ_SECONDS=0 skips.  FUZZ_HARNESSES="csv", "rules" or "csv rules" (the default)
# chooses the harnesses.  Skips when clang or its libFuzzer runtime is missing.
# A crashing input is kept in $FUZZ_FINDS (default $TMPDIR/refinery-fuzz-finds).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"

seconds=${FUZZ_SECONDS:-10}
case $seconds in
	'' | *[!0-9]*) skip_all "FUZZ_SECONDS=\"$seconds\" is not a number of seconds" ;;
	0) skip_all "FUZZ_SECONDS=0" ;;
esac
cc=${CLANG:-clang}
command -v "$cc" > /dev/null 2>&1 || skip_all "no clang (install clang)"
rt=$("$cc" -print-file-name="libclang_rt.fuzzer-$(uname -m).a")
[ -f "$rt" ] || skip_all "no libFuzzer runtime for $cc (install libclang-rt-14-dev)"
# make check runs in the build folder, which holds config.h (it may be the source folder)
builddir=${top_builddir:-$(pwd)}
[ -f "$builddir/config.h" ] || skip_all "no config.h in \"$builddir\" (run configure first)"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
finds=${FUZZ_FINDS:-${TMPDIR:-/tmp}/refinery-fuzz-finds}

# ---- build ----
# pkg-config's flags for each library, or a plain -l when it has no .pc file
pc() {
	pkg-config "$1" "$2" 2> /dev/null || { [ "$1" = --libs ] && echo "$3"; }
}
mods="libpcre2-8:-lpcre2-8 inih:-linih libutf8proc:-lutf8proc libcrypto:-lcrypto libpq:-lpq"
cflags="-std=gnu11 -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined
	-Wall -Wno-unused-parameter -Wno-unknown-pragmas -Wno-unused-variable -Wno-unused-but-set-variable
	-I$builddir -I$builddir/engine -I$top_srcdir/engine"
deps="-lcsv -lm"
for m in $mods; do
	cflags="$cflags $(pc --cflags "${m%%:*}")"
	deps="$(pc --libs "${m%%:*}" "${m#*:}") $deps"
done
# libpq without a .pc file: its headers are where pg_config says
pkg-config --exists libpq 2> /dev/null ||
	cflags="$cflags -I$(pg_config --includedir 2> /dev/null || echo /usr/include/postgresql)"
# the engine's sources, as listed for libengine.a in Makefile.am
sources=$(awk '/^libengine_a_SOURCES/ { on = 1 } on { print } on && !/\\$/ { exit }' \
	"$top_srcdir/Makefile.am" | tr -c 'A-Za-z0-9_./' '\n' | grep '\.c$')
build() {
	mkdir -p "$tmp/obj" &&
		sh "$top_srcdir/engine/embed.sh" "$top_srcdir/rules/default.ini" "$top_srcdir"/sql/[0-9]*.sql \
			> "$tmp/obj/embedded.c" &&
		for s in $sources "$tmp/obj/embedded.c"; do
			case $s in /*) ;; *) s=$top_srcdir/$s ;; esac
			# shellcheck disable=SC2086
			"$cc" $cflags -fsanitize=fuzzer-no-link,address,undefined -c "$s" \
				-o "$tmp/obj/$(basename "$s" .c).o" || return 1
		done &&
		ar cr "$tmp/engine.a" "$tmp"/obj/*.o &&
		for h in fuzz_csv fuzz_rules; do
			# shellcheck disable=SC2086
			"$cc" $cflags -fsanitize=fuzzer,address,undefined -DFUZZING \
				"$top_srcdir/tests/fuzz/$h.c" "$tmp/engine.a" $deps -o "$tmp/$h" || return 1
		done
}
build > "$tmp/build.log" 2>&1
built=$?
ok $built "the harnesses build with $cc and the sanitizers"
if [ $built != 0 ]; then
	tail -n 30 "$tmp/build.log" | sed 's/^/# /'
	done_testing
fi

# ---- a dictionary for the rule loader: every section and key of the shipped reference ----
{
	sed -n 's/^[#;]\{0,1\} \{0,1\}\[\([a-z0-9_.-]*\)\].*/"[\1]"/p' "$top_srcdir/rules/default.ini"
	sed -n 's/^[#;]\{0,1\}\([a-z0-9_][a-z0-9_.-]*\) *=.*/"\1 = "/p' "$top_srcdir/rules/default.ini"
	# libFuzzer's dictionary escapes are \\, \" and \xNN only
	printf '%s\n' '"\x0a\x09"' '" ; "' '"(?i)"' '"\\w+"' '"(a+)+$"' '"\\p{L}"' '", "' '"yes"' \
		'"1000000000"'
} | sort -u > "$tmp/rules.dict"

# ---- fuzz ----
# fuzz NAME WHAT [libFuzzer options...]: run one harness on a copy of its seeds
fuzz() {
	local name=$1 what=$2 log runs crash
	shift 2
	log=$tmp/$name.log
	mkdir -p "$tmp/$name.corpus" "$tmp/$name.art"
	cp "$top_srcdir/tests/fuzz/corpus_${name#fuzz_}"/* "$tmp/$name.corpus/"
	# one worker; stdin closed, so that no input can make a loader wait on it
	(cd "$tmp" && TMPDIR=$tmp "./$name" -max_total_time="$seconds" -timeout=60 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$tmp/$name.art/" "$@" "$tmp/$name.corpus" \
		< /dev/null > "$log" 2>&1)
	local rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	crash=$(find "$tmp/$name.art" -type f -printf '%f\n' | head -n 1)
	if [ $rc = 0 ] && [ -z "$crash" ] && [ -n "$runs" ]; then
		ok 0 "$what: $runs runs, no crash"
	else
		mkdir -p "$finds"
		[ -n "$crash" ] && cp "$tmp/$name.art/$crash" "$finds/$name-$crash"
		ok 1 "$what: ${crash:-no crash file} (exit status $rc)${crash:+, kept as $finds/$name-$crash}"
		{ grep -E 'ERROR|broken promise|SUMMARY|^    #[0-9]+ ' "$log" || tail -n 10 "$log"; } |
			head -n 30 | sed -e 's/ (BuildId: [0-9a-f]*)//' -e 's/^/# /'
	fi
}
harnesses=" ${FUZZ_HARNESSES:-csv rules} "
[[ $harnesses == *" csv "* ]] && fuzz fuzz_csv "csv reader"
[[ $harnesses == *" rules "* ]] && fuzz fuzz_rules "rule loader" -dict="$tmp/rules.dict"
done_testing
