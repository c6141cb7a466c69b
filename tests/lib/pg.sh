# tests/lib/pg.sh
#    A private, throwaway PostgreSQL server for one test script.
#
# Source this file, then call pg_start.  It runs initdb into a fresh
# temporary folder (as the "postgres" system user when the tests run as root,
# since initdb refuses root), starts the server on a free port, listening on
# a Unix socket inside that folder and on 127.0.0.1, and exports PGHOST,
# PGPORT, PGUSER and PGDATABASE so that psql and refinery reach it with no
# further options.  The server is stopped and the folder removed on exit.
#
# Local (socket) connections are trusted; TCP connections need the password
# in $PG_TEST_PASSWORD (scram-sha-256), so tests can exercise password
# handling.  An initdb'd template is cached in $PG_TEMPLATE_DIR (default
# $TMPDIR/refinery-pg-template-<uid>-<version>) so later scripts start fast.

PG_TEST_PASSWORD='s3cr3t-Pa55-w0rd'

pg_bindir() {
	local d
	for d in "${PG_BINDIR:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
		if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
			echo "$d"
			return 0
		fi
	done
	command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
	return 1
}

# run a server program as the owner of the data directory
pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_free_port() {
	local p
	for p in $(seq $((20000 + RANDOM % 20000)) 65000); do
		if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

pg_start() {
	local bindir owner tmpl
	bindir=$(pg_bindir) || { echo "pg_start: initdb not found (install postgresql-15)" >&2; return 1; }
	PG_BIN=$bindir
	PG_TMP=$(mktemp -d "${TMPDIR:-/tmp}/refinery-pg.XXXXXX")
	chmod 755 "$PG_TMP"
	owner=$(id -un)
	[ "$(id -u)" = 0 ] && owner=postgres
	tmpl=${PG_TEMPLATE_DIR:-${TMPDIR:-/tmp}/refinery-pg-template-$(id -u)-$("$bindir/initdb" --version | awk '{print $NF}')}
	if [ ! -f "$tmpl/PG_VERSION" ]; then
		local build="$tmpl.build.$$"
		rm -rf "$build"
		mkdir -p "$build"
		chown "$owner" "$build" 2>/dev/null
		chmod 700 "$build"
		echo "$PG_TEST_PASSWORD" >"$PG_TMP/pwfile"
		chown "$owner" "$PG_TMP/pwfile" 2>/dev/null
		pg_as_owner "$bindir/initdb" -D "$build" -U postgres -E UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=scram-sha-256 \
			--pwfile="$PG_TMP/pwfile" >"$PG_TMP/initdb.log" 2>&1 ||
			{ cat "$PG_TMP/initdb.log" >&2; return 1; }
		mv -T "$build" "$tmpl" 2>/dev/null || rm -rf "$build"
	fi
	mkdir -p "$PG_TMP/data"
	cp -a "$tmpl/." "$PG_TMP/data/"
	chown -R "$owner" "$PG_TMP" 2>/dev/null
	chmod 700 "$PG_TMP/data"
	PGPORT=$(pg_free_port)
	cat >>"$PG_TMP/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$PG_TMP'
fsync = ${PG_FSYNC:-off}
synchronous_commit = ${PG_FSYNC:-off}
full_page_writes = ${PG_FSYNC:-off}
shared_buffers = ${PG_SHARED_BUFFERS:-128MB}
log_min_messages = warning
log_statement = 'all'
logging_collector = off
max_connections = ${PG_MAX_CONNECTIONS:-30}
CONF
	pg_as_owner "$bindir/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 start >/dev/null ||
		{ cat "$PG_TMP/server.log" >&2; return 1; }
	export PGHOST=$PG_TMP PGPORT PGUSER=postgres PGDATABASE=postgres
	unset PGSERVICE PGPASSWORD PGOPTIONS
	trap pg_stop EXIT
}

# the server log: every statement is logged, so tests can search it for secrets
pg_log() {
	cat "$PG_TMP/server.log"
}

pg_stop() {
	if [ -n "${PG_TMP:-}" ] && [ -d "$PG_TMP" ]; then
		pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1
		rm -rf "$PG_TMP"
	fi
}

# stop the server at once, as a crash would (the folder stays until exit)
pg_crash() {
	pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -m immediate -w stop >/dev/null 2>&1
}

pg_restart() {
	pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_TMP/data" -l "$PG_TMP/server.log" -w -t 60 start >/dev/null
}

# psql with the settings every test wants
pq() {
	psql -X -q -v ON_ERROR_STOP=1 -At "$@"
}

# pg_load_leads DIR [SCHEMA]: create SCHEMA (default crm) with the tables the
# generator's files fill (leads, reps, rep_source_stats, and truth when
# DIR/truth.csv exists), load DIR's CSV files into them, and analyze.
pg_load_leads() {
	local dir=$1 s=${2:-crm} truth=""
	if [ -f "$dir/truth.csv" ]; then
		truth="CREATE TABLE $s.truth (lead_id bigint PRIMARY KEY, entity_id bigint NOT NULL,
		    is_blacklisted smallint NOT NULL, is_partial smallint NOT NULL, is_optout smallint NOT NULL, dirt text);
		\\copy $s.truth FROM '$dir/truth.csv' WITH (FORMAT csv, HEADER true)"
	fi
	psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE SCHEMA $s;
CREATE TABLE $s.leads (
    lead_id bigint NOT NULL, created_at timestamp NOT NULL, source text, campaign text,
    full_name text, phone text, email text, city text, status text,
    last_touch_at timestamp, touch_count int, last_touch_type text, handler_notes text,
    automation_after_last_touch boolean, last_rep_id int);
CREATE TABLE $s.reps (rep_id int PRIMARY KEY, name text NOT NULL, active boolean NOT NULL, capacity int NOT NULL);
CREATE TABLE $s.rep_source_stats (rep_id int, source text, attempts int, wins int, PRIMARY KEY (rep_id, source));
\copy $s.leads FROM '$dir/leads.csv' WITH (FORMAT csv, HEADER true)
\copy $s.reps FROM '$dir/reps.csv' WITH (FORMAT csv, HEADER true)
\copy $s.rep_source_stats FROM '$dir/rep_source_stats.csv' WITH (FORMAT csv, HEADER true)
$truth
ANALYZE $s.leads, $s.reps, $s.rep_source_stats;
SQL
}

# pg_test_start: what an integration test does first (after sourcing tap.sh and this
# file): skip the whole test when psql, the server binaries or the refinery binary are
# missing; start a throwaway server, or bail out; make $tmp, a work folder in it.
pg_test_start() {
	command -v psql >/dev/null || skip_all "psql is not installed"
	pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
	"$REFINERY" --help >/dev/null || skip_all "no refinery binary"
	pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
	tmp=$PG_TMP/work
	mkdir -p "$tmp"
}

# poll_until BOUND CMD [ARG...]: run CMD until it succeeds; fails after BOUND
# seconds.  Every wait of the tests goes through here: it is for an observed
# state, and the bound only guards against a hang, never a timing assumption.
# This is the tests' one poll interval.
poll_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}

pg_returns() { [ "$(pq -c "$1" 2>/dev/null)" = "$2" ]; }

# pg_wait SQL WANT: poll until SQL returns WANT; fails after $PG_WAIT_SECONDS (default 600)
pg_wait() {
	poll_until "${PG_WAIT_SECONDS:-600}" pg_returns "$1" "$2"
}

# PATH exists, or PID (when given) has exited
file_or_exit() { [ -e "$1" ] || { [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; }; }

# wait_file PATH [PID]: poll until PATH exists; fails if PID (when given) has
# exited first, or after $PG_WAIT_SECONDS.
wait_file() {
	poll_until "${PG_WAIT_SECONDS:-600}" file_or_exit "$1" "${2:-}" && [ -e "$1" ]
}

# pg_run_stalled POINT GATE [RUN ARGS...]: start `refinery run ARGS` in the
# background, stopped at the fault point POINT (engine/fault.h) until the file
# GATE exists; returns once the engine has reached the point (fails if it exited
# first).  Its standard output goes to GATE.out, its standard error to GATE.err.
# Sets $pid.
pg_run_stalled() {
	local point=$1 gate=$2
	shift 2
	rm -f "$gate" "$gate.stalled"
	REFINERY_FAULT="$point:stall:$gate" "$REFINERY" run "$@" >"$gate.out" 2>"$gate.err" &
	pid=$!
	wait_file "$gate.stalled" $pid
}

# no refinery backend left (a killed engine's session ends only when its
# server process notices): wait before a rerun
pg_wait_no_engine() {
	pg_wait "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'refinery'" 0
}

# pg_hold_open NAME SQL: a psql session that runs SQL and then keeps its
# transaction open until pg_hold_close NAME; the SQL's result goes to
# $PG_TMP/NAME.out.  The caller waits for the state it needs (pg_wait).
pg_hold_open() {
	local fifo=$PG_TMP/$1.fifo
	mkfifo "$fifo"
	psql -X -q -At -v ON_ERROR_STOP=1 <"$fifo" >"$PG_TMP/$1.out" 2>&1 &
	eval "PG_HOLD_PID_$1=\$!"
	eval "exec {PG_HOLD_FD_$1}>\"\$fifo\""
	local fd
	eval "fd=\$PG_HOLD_FD_$1"
	printf '%s\n' "$2" >&"$fd"
}

# pg_hold_close NAME [SQL]: send SQL (default COMMIT) and wait for the session to end
pg_hold_close() {
	local fd pid
	eval "fd=\$PG_HOLD_FD_$1 pid=\$PG_HOLD_PID_$1"
	printf '%s\n' "${2:-COMMIT;}" >&"$fd"
	eval "exec $fd>&-"
	wait "$pid"
}

# the engine was built with the REFINERY_FAULT hooks (configure --enable-fault-injection)
fault_hooks() {
	"$REFINERY" --version | grep -q 'fault injection'
}
