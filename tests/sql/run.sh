#!/bin/bash
# tests/sql/run.sh
#    pgTAP tests of the refinery schema, as one TAP stream.
#
# Starts a throwaway server (tests/lib/pg.sh), applies sql/NNN_*.sql the way
# `refinery init-db` does (apply_schema), loads the fixture runs, then runs
# every tests/sql/test_*.sql with psql and relays its pgTAP lines renumbered
# into one stream.  A file that fails in psql, or runs a different number of
# tests than it planned, adds a "not ok" line, so nothing fails silently.
# The plan is printed first, after all files ran (automake's tap-driver.sh).
# With --bench it instead times the write-back flow on $ROWS (default 1M)
# generated leads (tests/sql/bench_attach.sql) and prints the timings.

set -u

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=${top_srcdir:-$here/../..}
top=$(cd "$top" && pwd)

# shellcheck source=../lib/pg.sh
source "$top/tests/lib/pg.sh"

lines=()
n=0

emit() {
	lines+=("$1")
}

# ok STATUS DESCRIPTION: one test line of our own (STATUS 0 = pass)
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		emit "ok $n - $2"
	else
		emit "not ok $n - $2"
	fi
}

# diag FILE: its lines as TAP comments
diag_file() {
	local l
	while IFS= read -r l; do
		emit "# $l"
	done <"$1"
}

finish() {
	local l
	echo "1..$n"
	for l in "${lines[@]}"; do
		printf '%s\n' "$l"
	done
	exit 0
}

#
# apply_schema: what `refinery init-db` does, so that replacing this body by
# `"$top/refinery" init-db` changes nothing else.  Each file is sent as ONE
# query string (psql -c, i.e. one PQexec) in its own transaction, as the
# engine sends it: a file with a psql command or its own BEGIN/COMMIT fails
# here as it would there.
#
apply_schema() {
	local f base version sha
	if [ -n "${REFINERY:-}" ] && [ -x "$REFINERY" ]; then
		"$REFINERY" init-db -q
		return
	fi
	pq -c "CREATE SCHEMA refinery;
		   CREATE TABLE refinery.schema_migrations (
			   version integer PRIMARY KEY, name text NOT NULL, sha256 text NOT NULL,
			   applied_at timestamptz NOT NULL DEFAULT now())" || return 1
	for f in "$top"/sql/[0-9][0-9][0-9]_*.sql; do
		base=$(basename "$f")
		version=$((10#${base%%_*}))
		sha=$(sha256sum "$f" | cut -d' ' -f1)
		pq -c "$(cat "$f")
INSERT INTO refinery.schema_migrations (version, name, sha256)
VALUES ($version, '$base', '$sha');" || return 1
	done
}

if ! command -v psql >/dev/null 2>&1 || ! pg_bindir >/dev/null 2>&1; then
	echo "1..0 # SKIP PostgreSQL server programs or psql not found"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/refinery-sqltest.XXXXXX")
if ! pg_start >"$work/pg_start.log" 2>&1; then
	echo "Bail out! could not start a throwaway PostgreSQL server: $(tail -n 1 "$work/pg_start.log")"
	rm -rf "$work"
	exit 1
fi
trap 'pg_stop; rm -rf "$work"' EXIT

# --bench: time the write-back flow on ROWS generated leads instead of testing
if [ "${1:-}" = --bench ]; then
	apply_schema || exit 1
	psql -X -q -v ON_ERROR_STOP=1 -v rows="${ROWS:-1000000}" -f "$here/bench_attach.sql"
	exit
fi

if [ "$(pq -c "SELECT count(*) FROM pg_available_extensions WHERE name = 'pgtap'")" != 1 ]; then
	echo "1..0 # SKIP pgTAP is not installed (Debian package postgresql-15-pgtap)"
	exit 0
fi

apply_schema >"$work/apply.log" 2>&1
rc=$?
ok $rc "schema migrations apply in order, each as one query string"
[ $rc = 0 ] || { diag_file "$work/apply.log"; finish; }

pq -c "CREATE EXTENSION pgtap" >"$work/ext.log" 2>&1
rc=$?
ok $rc "pgtap extension created"
[ $rc = 0 ] || { diag_file "$work/ext.log"; finish; }
# dblink gives tests a second session (concurrency); tests skip without it
pq -c "CREATE EXTENSION IF NOT EXISTS dblink" >/dev/null 2>&1

psql -X -q -v ON_ERROR_STOP=1 -f "$here/fixture_run.sql" >"$work/fixture.log" 2>&1
rc=$?
ok $rc "fixture runs loaded through the partition flow"
[ $rc = 0 ] || { diag_file "$work/fixture.log"; finish; }

for t in "$here"/test_*.sql; do
	name=$(basename "$t" .sql)
	psql -X -q -At -v ON_ERROR_STOP=1 -f "$t" >"$work/out" 2>"$work/err"
	rc=$?
	planned=
	ran=0
	while IFS= read -r l; do
		case "$l" in
			1..*)
				planned=${l#1..}
				planned=${planned%% *}
				;;
			"ok "* | "not ok "*)
				n=$((n + 1))
				ran=$((ran + 1))
				# "ok 12 - text # SKIP why" -> "ok N - name: text # SKIP why"
				[[ $l =~ ^(not\ )?ok\ [0-9]+(\ -)?\ ?(.*)$ ]]
				emit "${BASH_REMATCH[1]}ok $n - $name: ${BASH_REMATCH[3]}"
				;;
			"# Failed test "*)
				# pgTAP numbers within the file; point at the stream's number
				emit "# Failed test $n:${l#*:}"
				;;
			"#"* | " "*"#"*)
				emit "$l"
				;;
			"")
				;;
			*)
				emit "# $l"
				;;
		esac
	done <"$work/out"
	if [ $rc != 0 ]; then
		ok 1 "$name: psql ended with status $rc"
		diag_file "$work/err"
	elif [ -z "$planned" ] || [ "$planned" != "$ran" ]; then
		ok 1 "$name: planned ${planned:-no} tests but ran $ran"
		diag_file "$work/err"
	fi
done

finish
