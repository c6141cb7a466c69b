#!/bin/bash
# tests/integration/ssl.sh -- TLS to the server (RELIABILITY S3): with sslmode=verify-full a
# server whose certificate is signed by another CA, or issued for another host name, is
# refused with the connection exit code and nothing is written; so is a server without TLS
# when TLS is required (no silent downgrade).  The right CA and host name connect.  A
# password given in the conninfo appears in no refusal.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
command -v openssl >/dev/null || skip_all "openssl is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/tls; mkdir -p "$tmp"

# a CA, a server certificate it signs for "localhost" only, and a CA that signed nothing
cert() { openssl "$@" >>"$tmp/openssl.log" 2>&1; }
cert req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=refinery test CA" \
	-keyout "$tmp/ca.key" -out "$tmp/ca.crt"
cert req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=another CA" \
	-keyout "$tmp/other.key" -out "$tmp/other.crt"
cert req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tmp/server.key" -out "$tmp/server.csr"
printf 'subjectAltName = DNS:localhost\n' >"$tmp/san.ext"
cert x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
	-days 2 -extfile "$tmp/san.ext" -out "$tmp/server.crt"
[ -s "$tmp/server.crt" ] || { echo "Bail out! openssl could not make the certificates"; cat "$tmp/openssl.log"; exit 1; }
cp "$tmp/server.crt" "$tmp/server.key" "$PG_TMP/data/"
chmod 600 "$PG_TMP/data/server.key"
[ "$(id -u)" = 0 ] && chown postgres "$PG_TMP/data/server.crt" "$PG_TMP/data/server.key"

# the server starts without TLS: requiring it must fail, not fall back to plain text
conn="host=localhost port=$PGPORT dbname=postgres user=postgres password=$PG_TEST_PASSWORD"
out=$("$REFINERY" init-db -d "$conn sslmode=require" 2>&1); rc=$?
is "$rc" 4 "sslmode=require against a server without TLS: the connection exit code"
like "$out" 'SSL' "and the message says TLS was required"

pq -c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
ok $? "TLS switched on"
# the reload is asynchronous: wait until a new session sees it
pg_wait "SHOW ssl" on
is "$(psql -X -At -d "$conn sslmode=verify-full sslrootcert=$tmp/ca.crt" -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>&1)" \
	t "psql reaches the server over verified TLS"

# a wrong CA: refused, nothing written, the password in no output
out=$("$REFINERY" init-db -d "$conn sslmode=verify-full sslrootcert=$tmp/other.crt" 2>&1); rc=$?
is "$rc" 4 "verify-full with a CA that did not sign the server: the connection exit code"
like "$out" 'certificate verify failed' "the message names the failed verification"
diag "$(printf '%s' "$out" | head -3)"
unlike "$out" "$PG_TEST_PASSWORD" "the password is not in the refusal"
is "$(pq -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'refinery'")" 0 "nothing was created"

# the right CA but another host name than the certificate's
out=$("$REFINERY" init-db -d "host=127.0.0.1 port=$PGPORT dbname=postgres user=postgres password=$PG_TEST_PASSWORD sslmode=verify-full sslrootcert=$tmp/ca.crt" 2>&1); rc=$?
is "$rc" 4 "verify-full with a host name the certificate does not name: the connection exit code"
like "$out" 'does not match host name' "the message names the mismatch"
is "$(pq -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'refinery'")" 0 "still nothing was created"

# the same through the PG* variables, as cron jobs set them
out=$(PGSSLMODE=verify-full PGSSLROOTCERT=$tmp/other.crt PGHOST=localhost "$REFINERY" init-db -d "password=$PG_TEST_PASSWORD" 2>&1); rc=$?
is "$rc" 4 "PGSSLMODE=verify-full with the wrong PGSSLROOTCERT is refused too"

# the right CA and host name: init-db, and a run, over verified TLS
out=$("$REFINERY" init-db -d "$conn sslmode=verify-full sslrootcert=$tmp/ca.crt" 2>&1); rc=$?
is "$rc" 0 "verify-full with the right CA and host name connects"
"$GENLEADS" --rows 500 --seed 5 --out-dir "$tmp" >/dev/null && pg_load_leads "$tmp" >/dev/null
printf '[source]\ntable = crm.leads\nnow = auto\n' >"$tmp/rules.ini"
out=$("$REFINERY" run -q -c "$tmp/rules.ini" -d "$conn sslmode=verify-full sslrootcert=$tmp/ca.crt" 2>&1); rc=$?
is "$rc" 0 "a run over verified TLS"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = (SELECT run_id FROM refinery.latest_run)")" 500 \
	"and its 500 result rows are committed"
done_testing
