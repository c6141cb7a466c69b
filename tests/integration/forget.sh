#!/bin/bash
# tests/integration/forget.sh -- erasure on request: `refinery forget` deletes every
# result row of a person (every run, every record of the person's cluster), keeps only
# salted hashes of the person's contacts, and later runs keep the person out without
# writing their data.  "No trace" is checked on a dump of the refinery schema.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
command -v pg_dump >/dev/null || skip_all "pg_dump is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
"$REFINERY" --help >/dev/null || skip_all "no refinery binary"
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/work; mkdir -p "$tmp"

"$GENLEADS" --rows 3000 --seed 9 --out-dir "$tmp" >/dev/null
pg_load_leads "$tmp"
cat > "$tmp/rules.ini" <<INI
[source]
table = crm.leads
now = auto
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
INI
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/rules.ini" && "$REFINERY" run -q -c "$tmp/rules.ini"
ok $? "two committed runs"

dump() { pg_dump --schema=refinery --data-only; }
# traces COUNT of the strings in file $1 in a dump of the refinery schema
traces() {
	local d n=0 s
	d=$(dump)
	[ -n "$d" ] || { echo "no dump"; return; }
	while IFS= read -r s; do
		[ -n "$s" ] && printf '%s' "$d" | grep -qF -- "$s" && n=$((n + 1))
	done < "$1"
	echo $n
}

# a person: the cluster of three or more records with the most contacts
cl=$(pq -c "SELECT cluster_id FROM refinery.lead_results WHERE run_id = 1 AND cluster_id IS NOT NULL
	GROUP BY cluster_id HAVING count(*) >= 3 AND count(phone_norm) >= 2 AND count(email_norm) >= 1
	ORDER BY count(DISTINCT phone_norm) + count(DISTINCT email_norm) DESC, cluster_id LIMIT 1")
ok $([ -n "$cl" ]; echo $?) "the generated data holds a person with several records ($cl)"
ids=$(pq -c "SELECT string_agg(quote_literal(lead_id), ',') FROM refinery.lead_results WHERE run_id = 1 AND cluster_id = $cl")
n=$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = 1 AND cluster_id = $cl")
# every contact the results hold for the person: phones without "+" (as digits), addresses
pq -c "SELECT DISTINCT ltrim(phone_norm, '+') FROM refinery.lead_results WHERE cluster_id = $cl AND phone_norm IS NOT NULL
	UNION SELECT DISTINCT email_norm FROM refinery.lead_results WHERE cluster_id = $cl AND email_norm IS NOT NULL" > "$tmp/contacts"
contacts=$(wc -l < "$tmp/contacts")
is "$(traces "$tmp/contacts")" "$contacts" "before: the dump holds each of the person's $contacts contacts"
# the phone as the source wrote it, of one of the person's leads
raw=$(pq -c "SELECT l.phone FROM crm.leads l JOIN refinery.lead_results r ON r.lead_id = l.lead_id::text
	WHERE r.run_id = 1 AND r.cluster_id = $cl AND r.phone_norm IS NOT NULL ORDER BY l.lead_id LIMIT 1")

# a dry run changes nothing
before=$(pq -c "SELECT count(*) FROM refinery.lead_results")
out=$("$REFINERY" forget -n -c "$tmp/rules.ini" --phone "$raw"); rc=$?
is "$rc" 0 "forget --dry-run exits 0"
like "$out" "^dry run, rolled back: $((3 * n)) result rows of $n leads deleted" "and says what it would erase"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results")/$(pq -c "SELECT count(*) FROM refinery.suppressed")" \
	"$before/0" "and erases nothing"

out=$("$REFINERY" forget -c "$tmp/rules.ini" --phone "$raw"); rc=$?
is "$rc" 0 "forget --phone exits 0"
like "$out" "^forgot: $((3 * n)) result rows of $n leads deleted; [0-9]+ phones and [0-9]+ e-mail addresses suppressed" \
	"and counts the person's records in both runs and in the job's state"
is "$(pq -c "SELECT count(*) FROM refinery.lead_state WHERE lead_id IN ($ids)")/$(pq -c "SELECT count(*) FROM refinery.lead_changes WHERE lead_id IN ($ids)")" "0/0" \
	"the job's state and change log hold none of the person's leads"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE lead_id IN ($ids)")" 0 \
	"no result row of any of the person's leads is left, in any run"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results")" "$((before - 2 * n))" "and no other row went"
is "$(traces "$tmp/contacts")" 0 "after: the dump holds none of the person's contacts"
is "$(pq -c "SELECT count(*) FROM refinery.suppressed")" \
	"$(pq -c "SELECT count(*) FROM refinery.suppressed WHERE hash ~ '^[0-9a-f]{64}\$'")" "the suppression list holds hashes only"
ok $([ "$(pq -c "SELECT count(*) FROM refinery.suppressed")" -ge "$contacts" ]; echo $?) \
	"every contact of the person is suppressed"

# the next run imports the person's leads (still in the source) but keeps them out, bare
"$REFINERY" run -q -c "$tmp/rules.ini"; ok $? "a run after the erasure"
last=$(pq -c "SELECT max(run_id) FROM refinery.runs")
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last AND lead_id IN ($ids)
	AND verdict = 'blacklisted' AND rule_id = 'suppress.forgotten'")" "$n" \
	"the person's leads are blacklisted by suppress.forgotten"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last AND rule_id = 'suppress.forgotten'
	AND (phone_norm IS NOT NULL OR email_norm IS NOT NULL OR name_norm IS NOT NULL OR golden IS NOT NULL OR rep_id IS NOT NULL)")" 0 \
	"with no contact, name, golden record or rep"
is "$(traces "$tmp/contacts")" 0 "the dump still holds none of the person's contacts"
is "$(pq -c "SELECT counters->>'suppress.forgotten' FROM refinery.run_stages WHERE run_id = $last AND stage = 'blacklist'")" \
	"$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last AND rule_id = 'suppress.forgotten'")" \
	"the black-list stage counts them"

# by lead id: another person, found through one lead
other=$(pq -c "SELECT min(lead_id::bigint) FROM refinery.lead_results WHERE run_id = $last AND cluster_id IS NOT NULL
	AND cluster_id <> $cl AND rule_id IS DISTINCT FROM 'suppress.forgotten'")
ocl=$(pq -c "SELECT cluster_id FROM refinery.lead_results WHERE run_id = $last AND lead_id = '$other'")
on=$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last AND cluster_id = $ocl")
"$REFINERY" forget --lead-id "$other" -q; ok $? "forget --lead-id exits 0"
is "$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE run_id = $last AND cluster_id = $ocl")" 0 \
	"every record of that lead's person is gone ($on in the last run)"

# a lead whose phone changed: forgetting the new number erases its rows of every run, the
# older number among them, its outcomes, and other leads' earlier rows that held the number
X=$(pq -c "SELECT lead_id FROM refinery.lead_results WHERE run_id = $last AND cluster_id IS NULL
	AND phone_norm IS NOT NULL AND rule_id IS NULL ORDER BY lead_id LIMIT 1")
oldphone=$(pq -c "SELECT phone_norm FROM refinery.lead_results WHERE run_id = $last AND lead_id = '$X'")
pq -c "UPDATE crm.leads SET phone = '054-999-0017' WHERE lead_id = $X" \
	-c "INSERT INTO refinery.outcomes (job, lead_id, rep_id, outcome, at) VALUES ('default', '$X', 1, 'busy', now())" \
	-c "INSERT INTO refinery.lead_changes (run_id, job, lead_id, change, previous) VALUES
	    ($last, 'default', 'other-1', 'changed', jsonb_build_object('golden', jsonb_build_object('phone', '$oldphone'))),
	    ($last, 'default', 'other-2', 'changed', jsonb_build_object('golden', jsonb_build_object('phone', '+972500000000'))),
	    ($last, 'default', 'other-3', 'changed', jsonb_build_object('golden', jsonb_build_object('phones', jsonb_build_array('+972500000000', '$oldphone')))),
	    ($last, 'default', 'other-5', 'changed', jsonb_build_object('phone_norm', '$oldphone'))" >/dev/null
"$REFINERY" run -q -c "$tmp/rules.ini"; ok $? "a run with the lead's new number ($X: $oldphone, now 054-999-0017)"
"$REFINERY" forget -q -c "$tmp/rules.ini" --phone "054-999-0017"; rc=$?
is "$rc/$(pq -c "SELECT count(*) FROM refinery.lead_results WHERE lead_id = '$X'")/$(pq -c "SELECT count(*) FROM refinery.outcomes WHERE lead_id = '$X'")" \
	"0/0/0" "forget by the new number erases the lead's rows of every run, with the old number, and its outcomes"
is "$(pq -c "SELECT string_agg(lead_id || ':' || (previous IS NULL), ' ' ORDER BY lead_id) FROM refinery.lead_changes WHERE lead_id LIKE 'other-%'")" \
	"other-1:true other-2:false other-3:true other-5:true" \
	"another lead's earlier row that held the old number (as a value, at any depth) forgets it; one that did not keeps it"
printf '%s\n' "${oldphone#+}" >"$tmp/old"
is "$(traces "$tmp/old")" 0 "the dump holds the old number nowhere"

# an address forgotten keeps its mailbox's other spellings out too (gmail: dots, +tags)
"$REFINERY" forget -q -c "$tmp/rules.ini" --email "Dana.Levi+promo@gmail.com"
pq -c "INSERT INTO crm.leads (lead_id, created_at, full_name, email) VALUES (999999001, '2025-01-01', 'Dana Levi', 'danalevi@googlemail.com')" >/dev/null
"$REFINERY" run -q -c "$tmp/rules.ini"; rc=$?
is "$rc/$(pq -c "SELECT rule_id || ':' || coalesce(email_norm, 'none') FROM refinery.lead_results WHERE run_id = (SELECT max(run_id) FROM refinery.runs) AND lead_id = '999999001'")" \
	"0/suppress.forgotten:none" "a new lead with another spelling of the forgotten mailbox is kept out, bare"

# lead ids are each job's source's: lead L of job b is another person than lead L of
# job default, so --lead-id erases the lead of one job only
read -r L1 L2 <<<"$(pq -c "SELECT string_agg(lead_id, ' ') FROM (SELECT lead_id FROM refinery.lead_state
	WHERE job = 'default' AND state = 'current' AND rule_id IS DISTINCT FROM 'suppress.forgotten'
	ORDER BY lead_id::bigint OFFSET 100 LIMIT 2) s")"
pq -c "CREATE TABLE crm.leads_b AS SELECT lead_id, created_at, source, campaign, 'Bea Other ' || lead_id AS full_name,
	NULL::text AS phone, 'b' || lead_id || '@b-job.example' AS email, city, status, last_touch_at, touch_count,
	last_touch_type, handler_notes, automation_after_last_touch, last_rep_id
	FROM crm.leads WHERE lead_id IN ($L1, $L2)" \
	-c "INSERT INTO crm.leads_b (lead_id, created_at, full_name, email) VALUES (999999201, '2025-01-01', 'Bo Other', 'bo@b-job.example')" >/dev/null
sed -e 's/^table = crm.leads$/table = crm.leads_b/' "$tmp/rules.ini" >"$tmp/b.ini"
printf '[job]\nname = b\n' >>"$tmp/b.ini"
"$REFINERY" run -q -c "$tmp/b.ini"; ok $? "a run of a second job, b, whose leads $L1 and $L2 are other people"
# the rows of lead $1 in job $2: of its runs and its state
rows_of() {
	pq -c "SELECT (SELECT count(*) FROM refinery.lead_results r JOIN refinery.runs x USING (run_id)
		WHERE x.job = '$2' AND r.lead_id = '$1') + (SELECT count(*) FROM refinery.lead_state WHERE job = '$2' AND lead_id = '$1')"
}
d1=$(rows_of "$L1" default); d2=$(rows_of "$L2" default)
suppressed=$(pq -c "SELECT count(*) FROM refinery.suppressed")
out=$("$REFINERY" forget --lead-id "$L1" 2>&1); rc=$?
is "$rc" 2 "--lead-id of a lead two jobs have, without a job: the usage code"
like "$out" "2 jobs have a lead \"$L1\": say which with --job" "saying the id could mean either"
like "$out" 'Jobs: b, default\.' "and listing the jobs"
is "$(rows_of "$L1" default)/$(rows_of "$L1" b)/$(pq -c "SELECT count(*) FROM refinery.suppressed")" "$d1/2/$suppressed" \
	"and erasing nothing"
out=$("$REFINERY" forget --job b --lead-id "$L1"); rc=$?
is "$rc" 0 "forget --job b --lead-id exits 0"
like "$out" '^forgot: 2 result rows of 1 leads deleted; 0 phones and 1 e-mail addresses suppressed' \
	"and erases the lead of job b only"
is "$(rows_of "$L1" b)/$(rows_of "$L1" default)" "0/$d1" "job b's lead $L1 is gone; job default's lead $L1, another person, is kept"
out=$("$REFINERY" forget -q -c "$tmp/b.ini" --lead-id "$L2"); rc=$?
is "$rc/$(rows_of "$L2" b)/$(rows_of "$L2" default)" "0/0/$d2" "without --job, the rules' [job] name is the lead's job"
out=$("$REFINERY" forget -c "$tmp/rules.ini" --lead-id 999999201 2>&1); rc=$?
is "$rc/$(rows_of 999999201 b)" "2/2" "a job named (the rules' default) without the lead, which another job has: the usage code, nothing erased"
like "$out" 'job "default" has no lead "999999201"' "naming the job"
like "$out" 'Job with a lead "999999201": b\.' "and the job that has it"
out=$("$REFINERY" forget --job nosuch --lead-id "$L1" 2>&1); rc=$?
is "$rc" 2 "an unknown job: the usage code"
like "$out" 'there is no job "nosuch"' "naming it"
out=$("$REFINERY" forget --job b --email "bo@b-job.example" 2>&1); rc=$?
is "$rc/$(rows_of 999999201 b)" "2/2" "--job without --lead-id: the usage code (a contact is erased in every job)"

# a run writing holds the suppression list (SHARE) until its commit: forget waits for it
# at most [output] lock_timeout_ms (5000 as shipped), then erases nothing.  1500 ms here:
# above deadlock_timeout, so an autovacuum in the way is cancelled first.
n0=$(pg_log | grep -c 'statement: SET lock_timeout = 5000$')
"$REFINERY" forget -q --phone "054-999-0099"
is "$?/$(pg_log | grep -c 'statement: SET lock_timeout = 5000$')" "0/$((n0 + 1))" \
	"forget without rules waits at most the shipped [output] lock_timeout_ms for a lock"
cp "$tmp/b.ini" "$tmp/bt.ini"
printf '[output]\nlock_timeout_ms = 1500\n' >>"$tmp/bt.ini"
pg_hold_open writer "BEGIN; LOCK TABLE refinery.suppressed IN SHARE MODE;"
pg_wait "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	WHERE c.relname = 'suppressed' AND l.mode = 'ShareLock' AND l.granted" 1
# (timeout: a guard against a hang only)
out=$(timeout 60 "$REFINERY" forget -c "$tmp/bt.ini" --email "bo@b-job.example" 2>&1); rc=$?
pg_hold_close writer ROLLBACK
is "$rc/$(rows_of 999999201 b)" "6/2" "forget behind a run's lock gives up after lock_timeout_ms with status 6, erasing nothing"
like "$out" 'holds a lock the erasure needs; nothing was erased' "saying so"
like "$out" 'Waited 1500 ms' "and how long it waited"
like "$out" 'hint: Run forget again when the run has finished' "with a hint"
# the vacuums after the commit wait as long: the person is erased, the rows not yet vacuumed
pg_hold_open vacuumer "BEGIN; LOCK TABLE refinery.outcomes IN SHARE UPDATE EXCLUSIVE MODE;"
pg_wait "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
	WHERE c.relname = 'outcomes' AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted" 1
out=$(timeout 60 "$REFINERY" forget -c "$tmp/bt.ini" --email "bo@b-job.example" 2>&1); rc=$?
pg_hold_close vacuumer ROLLBACK
is "$rc/$(rows_of 999999201 b)" "5/0" "a vacuum that cannot lock its table in time: status 5, the person erased"
like "$out" 'the person was erased, but refinery.outcomes could not be vacuumed' "saying what was done and what was not"
like "$out" 'run VACUUM refinery.outcomes when the run has finished' "and what to do"

# bad input
out=$("$REFINERY" forget --phone "not a number" 2>&1); rc=$?
is "$rc" 2 "a phone that is not one: the usage code"
like "$out" '"not a number" is not a phone number' "naming the value"
out=$("$REFINERY" forget 2>&1); rc=$?
is "$rc" 2 "forget without a person: the usage code"

# a person erased while a run works: the run writes nothing
if fault_hooks; then
	pg_run_stalled compute "$tmp/gate" -c "$tmp/rules.ini"
	runs=$(pq -c "SELECT count(*) FROM refinery.runs")
	"$REFINERY" forget -q --email "someone.else@example.org"
	touch "$tmp/gate"
	wait $pid; rc=$?
	is "$rc" 5 "a run during which a person was erased fails with the data code"
	like "$(cat "$tmp/gate.err")" 'erased .* while this run was working' "and says why"
	is "$(pq -c "SELECT count(*) FROM refinery.runs")" "$runs" "and commits nothing"
else
	skip 3 "refinery was built without --enable-fault-injection"
fi
done_testing
