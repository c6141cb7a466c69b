/*
 * tests/sql/bench_attach.sql
 *    How long the write-back's partition flow takes for one run of
 *    :rows leads (default 1,000,000): fill, ATTACH with the primary key,
 *    ANALYZE, COMMIT; and the variants worth comparing.
 *
 * A benchmark, not a test (tests/sql/run.sh --bench runs it on a throwaway
 * server; the server there runs with fsync off, so COMMIT costs are low).
 * Rows are generated with realistic widths: every column filled as the
 * engine would, points summing to the score, golden records on survivors.
 * Leaves the database as it found it except for consumed run ids.
 */
\set ON_ERROR_STOP 1
\if :{?rows}
\else
\set rows 1000000
\endif
SET client_min_messages = warning;

-- one generated run's rows for run :r
CREATE TEMP VIEW gen AS
SELECT g,
	   'L' || lpad(g::text, 9, '0') AS lead_id,
	   (ARRAY['facebook', 'google', 'referral', 'list', 'website', 'inbound_call'])[1 + g % 6] AS source,
	   CASE WHEN g % 100 < 60 THEN 'kept' WHEN g % 100 < 70 THEN 'blacklisted'
			WHEN g % 100 < 85 THEN 'duplicate' WHEN g % 100 < 90 THEN 'partial'
			WHEN g % 100 < 92 THEN 'outlier' ELSE 'nurture' END AS verdict,
	   ((g::bigint * 7919) % 10001) / 100.0 AS sc
FROM generate_series(1, :rows) g;

CREATE TEMP VIEW gen_rows AS
SELECT g, lead_id, source, verdict,
	   CASE verdict WHEN 'kept' THEN NULL WHEN 'blacklisted' THEN 'blacklist.status'
			WHEN 'duplicate' THEN 'dedupe.phone' WHEN 'partial' THEN 'partial.no_contact'
			WHEN 'outlier' THEN 'outlier.future_date' ELSE 'nurture.low_score' END AS rule_id,
	   CASE WHEN verdict <> 'kept' THEN 'status "wrong number" in the source' END AS reason,
	   CASE WHEN verdict = 'duplicate' OR g % 10 = 0 THEN g / 3 END AS cluster_id,
	   CASE WHEN verdict = 'duplicate' OR g % 10 = 0 THEN 'L' || lpad((g - 1)::text, 9, '0') END AS survivor_id,
	   '+9725' || lpad(((g::bigint * 104729) % 100000000)::text, 8, '0') AS phone_norm,
	   'mobile' AS phone_type,
	   CASE WHEN g % 50 = 0 THEN 'area code 4 -> 04' END AS phone_repair,
	   'user' || g || '@example.com' AS email_norm,
	   'first' || (g % 5000) || ' last' || (g % 7000) AS name_norm,
	   (ARRAY['no answer', 'callback', 'not now', 'interested'])[1 + g % 4] AS status_norm,
	   CASE WHEN verdict IN ('kept', 'nurture') THEN sc END AS score,
	   CASE WHEN verdict IN ('kept', 'nurture') THEN
			jsonb_build_object('source', round(sc * 0.2, 2), 'created_at', round(sc * 0.1, 2),
							   'status', round(sc * 0.15, 2), 'last_touch_at', round(sc * 0.15, 2),
							   'touch_count', round(sc * 0.1, 2), 'last_touch_type', round(sc * 0.1, 2),
							   'notes', round(sc * 0.1, 2),
							   'automation', sc - round(sc * 0.2, 2) - round(sc * 0.1, 2) * 4
											 - round(sc * 0.15, 2) * 2) END AS points,
	   CASE WHEN verdict = 'kept' THEN CASE WHEN sc >= 70 THEN 'hot' WHEN sc >= 40 THEN 'warm' ELSE 'cold' END END AS temperature,
	   CASE WHEN verdict = 'kept' THEN (ARRAY['smb', 'enterprise'])[1 + g % 2] END AS persona,
	   CASE WHEN verdict = 'kept' THEN CASE WHEN sc >= 70 THEN 'A' WHEN sc >= 40 THEN 'B' ELSE 'C' END END AS cohort,
	   CASE WHEN verdict = 'kept' THEN 100 + g % 40 END AS rep_id,
	   CASE WHEN verdict = 'kept' THEN 1 + g / 40 END AS call_order,
	   CASE WHEN verdict = 'kept' THEN sc / 250.0 END AS p_close,
	   CASE WHEN verdict = 'kept' THEN 'call+sms' END AS channel_plan,
	   CASE WHEN verdict = 'kept' THEN timestamptz '2024-03-02 02:00+00' + interval '1 hour' * (g % 168) END AS sla_due_at,
	   CASE WHEN g % 10 = 0 THEN jsonb_build_object('touch_count', g % 9, 'first_created_at', '2023-01-10',
													'status', 'callback') END AS golden
FROM gen;

CREATE FUNCTION pg_temp.new_run() RETURNS bigint LANGUAGE sql AS $$
	INSERT INTO refinery.runs (rules_sha256, rules_text, source_desc, engine_version)
	VALUES (repeat('5', 64), '[source]', 'bench', 'bench') RETURNING run_id
$$;

\echo
\echo '== generating' :rows 'rows without writing them (the generator''s own cost)'
\timing on
SELECT count(*), sum(length(lead_id) + coalesce(length(points::text), 0)) FROM gen_rows \gset
\timing off

\echo
\echo '== A. the engine flow: new_results_table, INSERT ... SELECT, attach (builds the PK), ANALYZE, COMMIT'
BEGIN;
SELECT pg_temp.new_run() AS r \gset
SELECT refinery.new_results_table(:r) AS t \gset
\timing on
INSERT INTO :t SELECT :r, lead_id, source, verdict, rule_id, reason, cluster_id, survivor_id, phone_norm,
	phone_type, phone_repair, email_norm, name_norm, status_norm, score, points, temperature, persona,
	cohort, rep_id, call_order, p_close, channel_plan, sla_due_at, golden FROM gen_rows;
\echo '-- attach_results_table (ATTACH + primary key build on' :rows 'rows):'
SELECT refinery.attach_results_table(:r);
\echo '-- ANALYZE of the new partition:'
ANALYZE :t;
UPDATE refinery.runs SET status = 'committed', finished_at = clock_timestamp() WHERE run_id = :r;
COMMIT;
\timing off
SELECT pg_size_pretty(pg_table_size(:'t')) AS table_size,
	   pg_size_pretty(pg_indexes_size(:'t')) AS pk_size;

\echo
\echo '== views on the' :rows 'row run'
\timing on
SELECT count(*) AS funnel_rows FROM refinery.run_funnel WHERE run_id = :r;
SELECT lead_id, verdict, points_total FROM refinery.lead_explain WHERE run_id = :r AND lead_id = 'L000500000';
SELECT count(*) AS sources FROM refinery.source_summary WHERE run_id = :r;
\timing off

\echo
\echo '== B. the same, primary key added BEFORE the INSERT (ATTACH adopts it; a plain unique index would not be)'
BEGIN;
SELECT pg_temp.new_run() AS r2 \gset
SELECT refinery.new_results_table(:r2) AS t2 \gset
\timing on
ALTER TABLE :t2 ADD PRIMARY KEY (run_id, lead_id);
INSERT INTO :t2 SELECT :r2, lead_id, source, verdict, rule_id, reason, cluster_id, survivor_id, phone_norm,
	phone_type, phone_repair, email_norm, name_norm, status_norm, score, points, temperature, persona,
	cohort, rep_id, call_order, p_close, channel_plan, sla_due_at, golden FROM gen_rows;
SELECT refinery.attach_results_table(:r2);
\timing off
ROLLBACK;

\echo
\echo '== C. COPY from a server-side file (the engine COPYs over the network): plain, then FREEZE'
\set cols 'lead_id, source, verdict, rule_id, reason, cluster_id, survivor_id, phone_norm, phone_type, phone_repair, email_norm, name_norm, status_norm, score, points, temperature, persona, cohort, rep_id, call_order, p_close, channel_plan, sla_due_at, golden'
BEGIN;
SELECT pg_temp.new_run() AS r3 \gset
SELECT refinery.new_results_table(:r3) AS t3 \gset
COPY (SELECT :r3, :cols FROM refinery.lead_results WHERE run_id = :r) TO '/tmp/refinery-bench.copy';
\timing on
\echo '-- COPY:'
COPY :t3 FROM '/tmp/refinery-bench.copy';
\echo '-- attach_results_table:'
SELECT refinery.attach_results_table(:r3);
\timing off
ROLLBACK;
BEGIN;
SELECT pg_temp.new_run() AS r5 \gset
SELECT refinery.new_results_table(:r5) AS t5 \gset
COPY (SELECT :r5, :cols FROM refinery.lead_results WHERE run_id = :r) TO '/tmp/refinery-bench.copy';
\timing on
\echo '-- COPY ... WITH (FREEZE) (for comparison only: frozen rows escape MVCC for older snapshots):'
COPY :t5 FROM '/tmp/refinery-bench.copy' WITH (FREEZE);
\echo '-- attach_results_table:'
SELECT refinery.attach_results_table(:r5);
\timing off
ROLLBACK;
BEGIN;
SELECT pg_temp.new_run() AS r6 \gset
SELECT refinery.new_results_table(:r6) AS t6 \gset
COPY (SELECT :r6, :cols FROM refinery.lead_results WHERE run_id = :r) TO '/tmp/refinery-bench.copy';
\timing on
\echo '-- plain COPY again (to rule out an order effect):'
COPY :t6 FROM '/tmp/refinery-bench.copy';
\timing off
ROLLBACK;
BEGIN;
CREATE TABLE refinery.bench_nocheck (LIKE refinery.lead_results);
\timing on
\echo '-- COPY into a table with no CHECK constraints (what the CHECKs cost):'
COPY refinery.bench_nocheck FROM '/tmp/refinery-bench.copy';
\timing off
ROLLBACK;
\! rm -f /tmp/refinery-bench.copy

\echo
\echo '== D. ATTACH without any index (what the primary key costs)'
BEGIN;
CREATE TABLE refinery.bench_nopk (LIKE refinery.lead_results) PARTITION BY LIST (run_id);
SELECT pg_temp.new_run() AS r4 \gset
CREATE TABLE refinery.bench_nopk_part (LIKE refinery.lead_results INCLUDING CONSTRAINTS);
ALTER TABLE refinery.bench_nopk_part ADD CHECK (run_id = :r4);
INSERT INTO refinery.bench_nopk_part SELECT :r4, lead_id, source, verdict, rule_id, reason, cluster_id,
	survivor_id, phone_norm, phone_type, phone_repair, email_norm, name_norm, status_norm, score, points,
	temperature, persona, cohort, rep_id, call_order, p_close, channel_plan, sla_due_at, golden FROM gen_rows;
\timing on
ALTER TABLE refinery.bench_nopk ATTACH PARTITION refinery.bench_nopk_part FOR VALUES IN (:r4);
\timing off
ROLLBACK;

\echo
\echo '== E. the primary key build alone, default maintenance_work_mem vs 256MB'
BEGIN;
CREATE TABLE refinery.bench_pk AS SELECT * FROM refinery.lead_results WHERE run_id = :r;
SHOW maintenance_work_mem;
\timing on
ALTER TABLE refinery.bench_pk ADD PRIMARY KEY (run_id, lead_id);
\timing off
ROLLBACK;
BEGIN;
CREATE TABLE refinery.bench_pk AS SELECT * FROM refinery.lead_results WHERE run_id = :r;
SET LOCAL maintenance_work_mem = '256MB';
\timing on
ALTER TABLE refinery.bench_pk ADD PRIMARY KEY (run_id, lead_id);
\timing off
ROLLBACK;

\echo
\echo '== clean-up: drop_run of the committed bench run'
\timing on
SELECT refinery.drop_run(:r);
\timing off
