/*
 * 006_state.sql
 *    The job's lasting state: one current row per lead per job, a log of
 *    what each run changed, and runs without a full snapshot.
 *
 * A run compares what it decided with the job's state and writes only the
 * leads whose verdict, rule, cluster, survivor, temperature, cohort or rep
 * changed, that are new, whose source fields changed (a fingerprint), or
 * that vanished from the source; each such lead gets one row in
 * lead_changes with the old and the new values and the whole previous state
 * row, so that "refinery revert" can apply a run backwards.  A job's first
 * run writes every lead into the state and logs nothing (every lead is new).
 * With [output] snapshot = yes (the default) the run also writes every lead
 * into lead_results as before; with no, the run-keyed views answer for a
 * job's latest run from the state (through refinery.results).  Runs made
 * before this migration give job "default" its state, built from its newest
 * committed run.
 */

/* ------------------------------------------------------------------------
 * runs: what the run changed, and whether it has a snapshot
 * ------------------------------------------------------------------------ */
ALTER TABLE refinery.runs
	ADD COLUMN snapshot boolean NOT NULL DEFAULT true,
	ADD COLUMN full_write boolean,
	ADD COLUMN leads_new bigint CONSTRAINT runs_leads_new_check CHECK (leads_new >= 0),
	ADD COLUMN leads_changed bigint CONSTRAINT runs_leads_changed_check CHECK (leads_changed >= 0),
	ADD COLUMN leads_vanished bigint
		CONSTRAINT runs_leads_vanished_check CHECK (leads_vanished >= 0),
	ADD COLUMN reverted_at timestamptz;
ALTER TABLE refinery.runs DROP CONSTRAINT runs_status_check;
ALTER TABLE refinery.runs ADD CONSTRAINT runs_status_check
	CHECK (status IN ('running', 'committed', 'failed', 'dry_run', 'reverted'));

COMMENT ON COLUMN refinery.runs.snapshot IS 'Whether the run wrote every lead into lead_results ([output] snapshot = yes). Without a snapshot its leads are readable only while it is its job''s latest run, from the state (refinery.results); its summaries stay.';
COMMENT ON COLUMN refinery.runs.full_write IS 'Whether the run rewrote every lead''s state row: a job''s first run, "run --full", or rules other than the previous run''s (rules_sha256). NULL for runs made before the state existed and for CSV targets.';
COMMENT ON COLUMN refinery.runs.leads_new IS 'Leads the job''s state did not hold before this run.';
COMMENT ON COLUMN refinery.runs.leads_changed IS 'Leads of the state whose decision (verdict, rule, cluster, survivor, temperature, cohort, rep) or source fields changed in this run, or that came back after vanishing.';
COMMENT ON COLUMN refinery.runs.leads_vanished IS 'Leads of the state that this run did not pull any more: they became vanished.';
COMMENT ON COLUMN refinery.runs.reverted_at IS 'When "refinery revert" applied the run backwards (status reverted); NULL otherwise.';

/* ------------------------------------------------------------------------
 * lead_state
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.lead_state
(
	job			text NOT NULL,
	lead_id		text NOT NULL,
	state		text NOT NULL DEFAULT 'current'
		CONSTRAINT lead_state_state_check CHECK (state IN ('current', 'vanished')),
	fingerprint bigint,
	first_run	bigint NOT NULL,
	changed_run bigint NOT NULL,
	version		bigint NOT NULL DEFAULT 1,
	assigned_at timestamptz,
	source		text,
	verdict		text NOT NULL,
	rule_id		text,
	reason		text,
	cluster_id	bigint,
	survivor_id text,
	phone_norm	text,
	phone_type	text,
	phone_repair text,
	email_norm	text,
	name_norm	text,
	status_norm text,
	score		numeric(5, 2),
	points		jsonb,
	temperature text,
	persona		text,
	cohort		text,
	rep_id		bigint,
	call_order	integer,
	p_close		double precision,
	channel_plan text,
	sla_due_at	timestamptz,
	golden		jsonb,
	PRIMARY KEY (job, lead_id)
)
PARTITION BY LIST (job);

COMMENT ON TABLE refinery.lead_state IS
'The job''s state: one row per lead the job ever pulled, as its last run that changed the lead left it. A run rewrites a row only when the lead is new, vanished or came back, its source fields changed, or its verdict, rule, cluster, survivor, temperature, cohort or rep changed (each such rewrite is logged in lead_changes); otherwise the row keeps the score, points, p_close and call order of the run named by changed_run. When that run wrote a snapshot ([output] snapshot = yes), the row holds the decision only (source, verdict, rule, cluster, survivor, temperature, cohort, rep, call order, p_close, due time) and the phone and NULL in the other result columns, which lead_results holds; a job that turns the snapshot off rewrites every row (its rules changed). Partitioned by job, one partition per job, made and attached by the job''s first run (new_state_table). Typical use: SELECT * FROM refinery.lead_state WHERE job = ''nightly'' AND rep_id = 7 AND state = ''current''.';
COMMENT ON COLUMN refinery.lead_state.job IS 'The job (refinery.jobs); the partition key.';
COMMENT ON COLUMN refinery.lead_state.lead_id IS 'The lead''s id in the source, as text.';
COMMENT ON COLUMN refinery.lead_state.state IS 'current (pulled by the job''s latest run) or vanished (no longer in the source: out of every hold and queue, its history kept).';
COMMENT ON COLUMN refinery.lead_state.fingerprint IS 'A 64-bit hash of the lead''s mapped source fields as last pulled; a different value means the source changed the lead. NULL when unknown (state built by the upgrade).';
COMMENT ON COLUMN refinery.lead_state.first_run IS 'The run that first pulled the lead.';
COMMENT ON COLUMN refinery.lead_state.changed_run IS 'The run that last rewrote the row; score, points, p_close and call_order are as of that run.';
COMMENT ON COLUMN refinery.lead_state.version IS 'Incremented at every rewrite of the row.';
COMMENT ON COLUMN refinery.lead_state.assigned_at IS 'When rep_id got the lead: a lead assigned to an active rep stays with that rep ([match] hold_days after this time at most). NULL when unassigned.';
COMMENT ON COLUMN refinery.lead_state.source IS 'As refinery.lead_results.source.';
COMMENT ON COLUMN refinery.lead_state.verdict IS 'As refinery.lead_results.verdict, as of changed_run (also for a vanished lead: its last verdict).';
COMMENT ON COLUMN refinery.lead_state.rule_id IS 'As refinery.lead_results.rule_id.';
COMMENT ON COLUMN refinery.lead_state.reason IS 'As refinery.lead_results.reason.';
COMMENT ON COLUMN refinery.lead_state.cluster_id IS 'Identity cluster, stable from run to run: it changes only for members of clusters that merge (the smallest id survives) or split (the part holding the survivor keeps it); NULL when the lead matched no other record.';
COMMENT ON COLUMN refinery.lead_state.survivor_id IS 'As refinery.lead_results.survivor_id.';
COMMENT ON COLUMN refinery.lead_state.phone_norm IS 'As refinery.lead_results.phone_norm.';
COMMENT ON COLUMN refinery.lead_state.phone_type IS 'As refinery.lead_results.phone_type.';
COMMENT ON COLUMN refinery.lead_state.phone_repair IS 'As refinery.lead_results.phone_repair.';
COMMENT ON COLUMN refinery.lead_state.email_norm IS 'As refinery.lead_results.email_norm.';
COMMENT ON COLUMN refinery.lead_state.name_norm IS 'As refinery.lead_results.name_norm.';
COMMENT ON COLUMN refinery.lead_state.status_norm IS 'As refinery.lead_results.status_norm.';
COMMENT ON COLUMN refinery.lead_state.score IS 'As refinery.lead_results.score, as of changed_run.';
COMMENT ON COLUMN refinery.lead_state.points IS 'As refinery.lead_results.points, as of changed_run.';
COMMENT ON COLUMN refinery.lead_state.temperature IS 'As refinery.lead_results.temperature.';
COMMENT ON COLUMN refinery.lead_state.persona IS 'As refinery.lead_results.persona.';
COMMENT ON COLUMN refinery.lead_state.cohort IS 'As refinery.lead_results.cohort.';
COMMENT ON COLUMN refinery.lead_state.rep_id IS 'The rep holding the lead; NULL when unassigned or vanished.';
COMMENT ON COLUMN refinery.lead_state.call_order IS 'Position in the rep''s queue as of changed_run; refinery.results numbers each rep''s current queue afresh.';
COMMENT ON COLUMN refinery.lead_state.p_close IS 'As refinery.lead_results.p_close, as of changed_run.';
COMMENT ON COLUMN refinery.lead_state.channel_plan IS 'As refinery.lead_results.channel_plan.';
COMMENT ON COLUMN refinery.lead_state.sla_due_at IS 'When the first contact is due; kept while the lead stays with the same rep in the same cohort.';
COMMENT ON COLUMN refinery.lead_state.golden IS 'As refinery.lead_results.golden.';

CREATE INDEX lead_state_job_rep_idx ON refinery.lead_state (job, rep_id) WHERE rep_id IS NOT NULL;
COMMENT ON INDEX refinery.lead_state_job_rep_idx IS 'A rep''s held leads: queues, rep_load and the holds a run reads.';

/* ------------------------------------------------------------------------
 * new_state_table(job), attach_state_table(job): a job's first state
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.state_table_name(job text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN octet_length('lead_state_' || job) <= 63 THEN 'lead_state_' || job
				ELSE 'lead_state_' || md5(job) END
$$;

COMMENT ON FUNCTION refinery.state_table_name(text) IS
'The name (in schema refinery, to be quoted as an identifier) of the job''s partition of refinery.lead_state: lead_state_<job>, or lead_state_<md5 of job> for a name too long.';

CREATE FUNCTION refinery.new_state_table(job text)
RETURNS text
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tbl			text := refinery.state_table_name(new_state_table.job);
	qual		text := format('refinery.%I', refinery.state_table_name(new_state_table.job));
	owner		oid;
BEGIN
	IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
			   WHERE i.inhparent = 'refinery.lead_state'::regclass
				 AND pg_get_expr(c.relpartbound, c.oid) = format('FOR VALUES IN (%L)', new_state_table.job))
	THEN
		RETURN NULL;			/* the job has its partition: write into the parent */
	END IF;
	EXECUTE format('CREATE TABLE %s (LIKE refinery.lead_state '
				   'INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMMENTS)', qual);
	EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (job = %L)',
				   qual, left(tbl, 57) || '_check', new_state_table.job);
	EXECUTE format('COMMENT ON TABLE %s IS %L', qual,
				   format('State of job %s: a partition of refinery.lead_state. Query the parent table.',
						  new_state_table.job));
	SELECT c.relowner INTO owner FROM pg_class c WHERE c.oid = 'refinery.lead_state'::regclass;
	IF owner <> to_regrole(current_user)::oid THEN
		EXECUTE format('ALTER TABLE %s OWNER TO %s', qual, owner::regrole);
	END IF;
	RETURN qual;
END
$$;

COMMENT ON FUNCTION refinery.new_state_table(text) IS
'For a job''s first run: create the job''s state table (named by state_table_name, not yet a partition, so it fills without index upkeep) with a CHECK on the job, and return its qualified name to COPY into; NULL when the job already has its partition (then write into refinery.lead_state). Call refinery.attach_state_table(job) after the COPY.';

CREATE FUNCTION refinery.attach_state_table(job text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	/* builds the partition's indexes in one pass; the CHECK spares the validation scan */
	EXECUTE format('ALTER TABLE refinery.lead_state ATTACH PARTITION refinery.%I FOR VALUES IN (%L)',
				   refinery.state_table_name(attach_state_table.job), attach_state_table.job);
END
$$;

COMMENT ON FUNCTION refinery.attach_state_table(text) IS
'Attach the table made by new_state_table(job) as the job''s partition of refinery.lead_state (locks the parent SHARE UPDATE EXCLUSIVE until the transaction ends; readers are not blocked).';

/* ------------------------------------------------------------------------
 * lead_changes
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.lead_changes
(
	run_id		bigint NOT NULL REFERENCES refinery.runs (run_id) ON DELETE CASCADE,
	job			text NOT NULL,
	lead_id		text NOT NULL,
	change		text NOT NULL
		CONSTRAINT lead_changes_change_check
		CHECK (change IN ('new', 'changed', 'vanished', 'returned')),
	old_verdict text,
	new_verdict text,
	old_rule_id text,
	new_rule_id text,
	old_cluster_id bigint,
	new_cluster_id bigint,
	old_survivor_id text,
	new_survivor_id text,
	old_temperature text,
	new_temperature text,
	old_cohort	text,
	new_cohort	text,
	old_rep_id	bigint,
	new_rep_id	bigint,
	previous	jsonb,
	PRIMARY KEY (run_id, lead_id)
);

COMMENT ON TABLE refinery.lead_changes IS
'What each run changed in its job''s state, one row per lead rewritten: old and new values of the decision. A job''s first run logs nothing lead by lead (every lead is new; lead_state.first_run says so). Rows go with their run (retention). Typical use: SELECT * FROM refinery.lead_history(''nightly'', ''1000001'').';
COMMENT ON COLUMN refinery.lead_changes.run_id IS 'The run that made the change.';
COMMENT ON COLUMN refinery.lead_changes.job IS 'The run''s job.';
COMMENT ON COLUMN refinery.lead_changes.lead_id IS 'The lead.';
COMMENT ON COLUMN refinery.lead_changes.change IS 'new (first pulled by this run), changed (decision or source fields changed), vanished (no longer pulled), returned (pulled again after vanishing).';
COMMENT ON COLUMN refinery.lead_changes.old_verdict IS 'Verdict before the run; NULL for a new lead.';
COMMENT ON COLUMN refinery.lead_changes.new_verdict IS 'Verdict after the run.';
COMMENT ON COLUMN refinery.lead_changes.old_rule_id IS 'Rule before the run.';
COMMENT ON COLUMN refinery.lead_changes.new_rule_id IS 'Rule after the run.';
COMMENT ON COLUMN refinery.lead_changes.old_cluster_id IS 'Cluster before the run.';
COMMENT ON COLUMN refinery.lead_changes.new_cluster_id IS 'Cluster after the run.';
COMMENT ON COLUMN refinery.lead_changes.old_survivor_id IS 'Survivor before the run.';
COMMENT ON COLUMN refinery.lead_changes.new_survivor_id IS 'Survivor after the run.';
COMMENT ON COLUMN refinery.lead_changes.old_temperature IS 'Score band before the run.';
COMMENT ON COLUMN refinery.lead_changes.new_temperature IS 'Score band after the run.';
COMMENT ON COLUMN refinery.lead_changes.old_cohort IS 'Cohort before the run.';
COMMENT ON COLUMN refinery.lead_changes.new_cohort IS 'Cohort after the run.';
COMMENT ON COLUMN refinery.lead_changes.old_rep_id IS 'Rep before the run.';
COMMENT ON COLUMN refinery.lead_changes.new_rep_id IS 'Rep after the run.';
COMMENT ON COLUMN refinery.lead_changes.previous IS 'The whole lead_state row before the run, as JSON (NULL for a new lead): what "refinery revert" puts back.';

CREATE INDEX lead_changes_job_lead_idx ON refinery.lead_changes (job, lead_id, run_id);
COMMENT ON INDEX refinery.lead_changes_job_lead_idx IS 'A lead''s history: refinery.lead_history(job, lead_id).';

/* latest_run: the new columns at the end (a reverted run is not committed) */
CREATE OR REPLACE VIEW refinery.latest_run AS
SELECT DISTINCT ON (r.job)
	   r.run_id,
	   r.started_at,
	   r.finished_at,
	   r.status,
	   r.rules_sha256,
	   r.rules_text,
	   r.rules_files,
	   r.source_desc,
	   r.engine_version,
	   r.host,
	   r.threads,
	   r.rows_pulled,
	   r.rows_kept,
	   r.seconds_total,
	   r.counts,
	   r.job,
	   r.snapshot,
	   r.leads_new,
	   r.leads_changed,
	   r.leads_vanished
FROM refinery.runs r
WHERE r.status = 'committed'
ORDER BY r.job, r.run_id DESC;

COMMENT ON COLUMN refinery.latest_run.snapshot IS 'Whether the run wrote a full snapshot into lead_results.';
COMMENT ON COLUMN refinery.latest_run.leads_new IS 'Leads the run added to the job''s state.';
COMMENT ON COLUMN refinery.latest_run.leads_changed IS 'Leads of the state the run changed.';
COMMENT ON COLUMN refinery.latest_run.leads_vanished IS 'Leads the run found gone from the source.';

/* ------------------------------------------------------------------------
 * results: every lead of every run that can still be read
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.results AS
SELECT l.run_id, l.lead_id, l.source, l.verdict, l.rule_id, l.reason, l.cluster_id,
	   l.survivor_id, l.phone_norm, l.phone_type, l.phone_repair, l.email_norm, l.name_norm,
	   l.status_norm, l.score, l.points, l.temperature, l.persona, l.cohort, l.rep_id,
	   l.call_order, l.p_close, l.channel_plan, l.sla_due_at, l.golden
FROM refinery.lead_results l
UNION ALL
SELECT r.run_id, s.lead_id, s.source, s.verdict, s.rule_id, s.reason, s.cluster_id,
	   s.survivor_id, s.phone_norm, s.phone_type, s.phone_repair, s.email_norm, s.name_norm,
	   s.status_norm, s.score, s.points, s.temperature, s.persona, s.cohort, s.rep_id,
	   /*
		* the position in the rep's queue: 1 + the rep's leads ranked ahead
		* (p_close descending, due time, the assigning run's order, lead id),
		* counted per lead, so that a query for one lead reads only its rep's
		* few leads (a window would number the whole state first)
		*/
	   CASE WHEN s.rep_id IS NOT NULL
			THEN (SELECT count(*) + 1
				  FROM refinery.lead_state o
				  WHERE o.job = s.job AND o.rep_id = s.rep_id AND o.state = 'current'
					AND (coalesce(o.p_close, 2) > coalesce(s.p_close, 2)
						 OR (coalesce(o.p_close, 2) = coalesce(s.p_close, 2)
							 AND (coalesce(o.sla_due_at, 'infinity') < coalesce(s.sla_due_at, 'infinity')
								  OR (coalesce(o.sla_due_at, 'infinity') = coalesce(s.sla_due_at, 'infinity')
									  AND (coalesce(o.call_order, 2147483647), o.lead_id)
										  < (coalesce(s.call_order, 2147483647), s.lead_id))))))
	   END::integer,
	   s.p_close, s.channel_plan, s.sla_due_at, s.golden
FROM refinery.lead_state s
JOIN refinery.latest_run r ON r.job = s.job
WHERE NOT r.snapshot AND s.state = 'current';

COMMENT ON VIEW refinery.results IS
'Every lead result that can be read, with the columns of lead_results: the snapshot rows of runs made with [output] snapshot = yes, and for each job whose latest run has no snapshot, its current state labelled with that run''s id (call_order numbered afresh per rep: p_close, then due time, then the order of the run that assigned the lead, then lead id). Query it as lead_results: WHERE run_id = (SELECT run_id FROM refinery.latest_run WHERE job = ''nightly'').';

COMMENT ON COLUMN refinery.results.run_id IS 'As refinery.lead_results.run_id (for a run without a snapshot: the job''s latest run).';
COMMENT ON COLUMN refinery.results.lead_id IS 'As refinery.lead_results.lead_id.';
COMMENT ON COLUMN refinery.results.source IS 'As refinery.lead_results.source.';
COMMENT ON COLUMN refinery.results.verdict IS 'As refinery.lead_results.verdict.';
COMMENT ON COLUMN refinery.results.rule_id IS 'As refinery.lead_results.rule_id.';
COMMENT ON COLUMN refinery.results.reason IS 'As refinery.lead_results.reason.';
COMMENT ON COLUMN refinery.results.cluster_id IS 'As refinery.lead_results.cluster_id.';
COMMENT ON COLUMN refinery.results.survivor_id IS 'As refinery.lead_results.survivor_id.';
COMMENT ON COLUMN refinery.results.phone_norm IS 'As refinery.lead_results.phone_norm.';
COMMENT ON COLUMN refinery.results.phone_type IS 'As refinery.lead_results.phone_type.';
COMMENT ON COLUMN refinery.results.phone_repair IS 'As refinery.lead_results.phone_repair.';
COMMENT ON COLUMN refinery.results.email_norm IS 'As refinery.lead_results.email_norm.';
COMMENT ON COLUMN refinery.results.name_norm IS 'As refinery.lead_results.name_norm.';
COMMENT ON COLUMN refinery.results.status_norm IS 'As refinery.lead_results.status_norm.';
COMMENT ON COLUMN refinery.results.score IS 'As refinery.lead_results.score.';
COMMENT ON COLUMN refinery.results.points IS 'As refinery.lead_results.points.';
COMMENT ON COLUMN refinery.results.temperature IS 'As refinery.lead_results.temperature.';
COMMENT ON COLUMN refinery.results.persona IS 'As refinery.lead_results.persona.';
COMMENT ON COLUMN refinery.results.cohort IS 'As refinery.lead_results.cohort.';
COMMENT ON COLUMN refinery.results.rep_id IS 'As refinery.lead_results.rep_id.';
COMMENT ON COLUMN refinery.results.call_order IS 'As refinery.lead_results.call_order (numbered afresh per rep for a run without a snapshot).';
COMMENT ON COLUMN refinery.results.p_close IS 'As refinery.lead_results.p_close.';
COMMENT ON COLUMN refinery.results.channel_plan IS 'As refinery.lead_results.channel_plan.';
COMMENT ON COLUMN refinery.results.sla_due_at IS 'As refinery.lead_results.sla_due_at.';
COMMENT ON COLUMN refinery.results.golden IS 'As refinery.lead_results.golden.';

/* ------------------------------------------------------------------------
 * The run-keyed views read refinery.results
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE VIEW refinery.run_funnel AS
SELECT f.run_id, f.step, f.verdict, f.rule_id, f.leads, f.pct_of_pulled, f.example_reason, r.job
FROM (SELECT l.run_id,
			 0 AS step,
			 'pulled'::text AS verdict,
			 NULL::text AS rule_id,
			 count(*) AS leads,
			 100.00 AS pct_of_pulled,
			 NULL::text AS example_reason
	  FROM refinery.results l
	  GROUP BY l.run_id
	  UNION ALL
	  SELECT l.run_id,
			 array_position(ARRAY['blacklisted', 'duplicate', 'partial', 'outlier', 'nurture',
								  'kept'], l.verdict) AS step,
			 l.verdict,
			 l.rule_id,
			 count(*) AS leads,
			 round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY l.run_id), 2)
			 AS pct_of_pulled,
			 min(l.reason) AS example_reason
	  FROM refinery.results l
	  GROUP BY l.run_id, l.verdict, l.rule_id) f
JOIN refinery.runs r ON r.run_id = f.run_id;

CREATE OR REPLACE VIEW refinery.lead_explain AS
SELECT l.run_id,
	   l.lead_id,
	   l.source,
	   l.verdict,
	   l.rule_id,
	   l.reason,
	   l.cluster_id,
	   l.survivor_id,
	   l.phone_norm,
	   l.phone_type,
	   l.phone_repair,
	   l.email_norm,
	   l.name_norm,
	   l.status_norm,
	   l.score,
	   l.temperature,
	   (l.points ->> 'source')::numeric AS points_source,
	   (l.points ->> 'created_at')::numeric AS points_created_at,
	   (l.points ->> 'status')::numeric AS points_status,
	   (l.points ->> 'last_touch_at')::numeric AS points_last_touch_at,
	   (l.points ->> 'touch_count')::numeric AS points_touch_count,
	   (l.points ->> 'last_touch_type')::numeric AS points_last_touch_type,
	   (l.points ->> 'notes')::numeric AS points_notes,
	   (l.points ->> 'automation')::numeric AS points_automation,
	   (SELECT sum(p.value::numeric) FROM jsonb_each_text(l.points) p) AS points_total,
	   l.points,
	   l.persona,
	   l.cohort,
	   l.channel_plan,
	   l.sla_due_at,
	   l.rep_id,
	   r.rep_name,
	   l.call_order,
	   l.p_close,
	   r.close_rate AS rep_close_rate,
	   s.rate_smoothed AS rep_source_rate,
	   s.attempts AS rep_source_attempts,
	   s.wins AS rep_source_wins,
	   l.golden,
	   rn.job
FROM refinery.results l
JOIN refinery.runs rn ON rn.run_id = l.run_id
LEFT JOIN refinery.run_reps r ON r.run_id = l.run_id AND r.rep_id = l.rep_id
LEFT JOIN refinery.run_rep_sources s
	ON s.run_id = l.run_id AND s.rep_id = l.rep_id AND s.source = l.source;

CREATE OR REPLACE VIEW refinery.rep_load AS
SELECT r.run_id,
	   r.rep_id,
	   r.rep_name,
	   r.active,
	   r.capacity,
	   r.assigned,
	   CASE WHEN r.capacity > 0 THEN r.assigned::double precision / r.capacity END AS utilisation,
	   r.expected_conversions,
	   coalesce(t.target_conversions, 0) AS target_conversions,
	   r.close_rate,
	   CASE WHEN r.assigned > 0 THEN r.expected_conversions / r.assigned END AS expected_rate,
	   rn.job
FROM refinery.run_reps r
JOIN refinery.runs rn ON rn.run_id = r.run_id
LEFT JOIN (SELECT l.run_id,
				  l.rep_id,
				  sum(c.target_rate::numeric) AS target_conversions
		   FROM refinery.results l
		   JOIN refinery.run_cohorts c ON c.run_id = l.run_id AND c.cohort = l.cohort
		   WHERE l.rep_id IS NOT NULL
		   GROUP BY l.run_id, l.rep_id) t
	ON t.run_id = r.run_id AND t.rep_id = r.rep_id;

CREATE OR REPLACE VIEW refinery.source_summary AS
SELECT s.run_id, s.source, s.pulled, s.kept, s.blacklisted, s.duplicate, s.partial, s.outlier,
	   s.nurture, s.invalid_phones, s.pct_kept, s.mean_score_kept, s.expected_conversions, r.job
FROM (SELECT l.run_id,
			 l.source,
			 count(*) AS pulled,
			 count(*) FILTER (WHERE l.verdict = 'kept') AS kept,
			 count(*) FILTER (WHERE l.verdict = 'blacklisted') AS blacklisted,
			 count(*) FILTER (WHERE l.verdict = 'duplicate') AS duplicate,
			 count(*) FILTER (WHERE l.verdict = 'partial') AS partial,
			 count(*) FILTER (WHERE l.verdict = 'outlier') AS outlier,
			 count(*) FILTER (WHERE l.verdict = 'nurture') AS nurture,
			 count(*) FILTER (WHERE l.phone_type = 'invalid') AS invalid_phones,
			 round(100.0 * count(*) FILTER (WHERE l.verdict = 'kept') / count(*), 2) AS pct_kept,
			 round(avg(l.score) FILTER (WHERE l.verdict = 'kept'), 2) AS mean_score_kept,
			 sum(l.p_close::numeric) AS expected_conversions
	  FROM refinery.results l
	  GROUP BY l.run_id, l.source) s
JOIN refinery.runs r ON r.run_id = s.run_id;

/* ------------------------------------------------------------------------
 * lead_history(job, lead_id): a lead's changes, oldest first
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.lead_history(job text, lead_id text)
RETURNS TABLE (run_id bigint, started_at timestamptz, run_status text, change text,
			   old_verdict text, new_verdict text, old_rule_id text, new_rule_id text,
			   old_cluster_id bigint, new_cluster_id bigint, old_survivor_id text,
			   new_survivor_id text, old_temperature text, new_temperature text,
			   old_cohort text, new_cohort text, old_rep_id bigint, new_rep_id bigint)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT c.run_id, r.started_at, r.status, c.change,
		   c.old_verdict, c.new_verdict, c.old_rule_id, c.new_rule_id,
		   c.old_cluster_id, c.new_cluster_id, c.old_survivor_id, c.new_survivor_id,
		   c.old_temperature, c.new_temperature, c.old_cohort, c.new_cohort,
		   c.old_rep_id, c.new_rep_id
	FROM refinery.lead_changes c
	JOIN refinery.runs r ON r.run_id = c.run_id
	WHERE c.job = lead_history.job AND c.lead_id = lead_history.lead_id
	UNION ALL
	/* a lead that came in with a run that logged nothing (a job's first run) */
	SELECT s.first_run, r.started_at, r.status, 'new',
		   NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
	FROM refinery.lead_state s
	JOIN refinery.runs r ON r.run_id = s.first_run
	WHERE s.job = lead_history.job AND s.lead_id = lead_history.lead_id
	  AND NOT EXISTS (SELECT 1 FROM refinery.lead_changes c
					  WHERE c.job = s.job AND c.lead_id = s.lead_id AND c.run_id = s.first_run)
	ORDER BY 1
$$;

COMMENT ON FUNCTION refinery.lead_history(text, text) IS
'What the job''s runs changed about one lead, oldest first: the run, when it started, its status (reverted when undone), the kind of change, and the old and new verdict, rule, cluster, survivor, temperature, cohort and rep. A lead first pulled by a run that logged no changes (a job''s first run) shows as new, with no values. History goes with its runs (retention).';

/* ------------------------------------------------------------------------
 * job_summary: the state's size too
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE VIEW refinery.job_summary AS
SELECT j.name AS job,
	   j.created_at,
	   l.run_id AS last_run_id,
	   l.finished_at AS last_finished_at,
	   l.rows_pulled AS last_rows_pulled,
	   coalesce(s.runs, 0) AS runs,
	   coalesce(s.result_rows, 0) AS result_rows,
	   coalesce(s.result_bytes, 0) AS result_bytes,
	   (SELECT count(*) FROM refinery.lead_state st WHERE st.job = j.name) AS state_rows,
	   coalesce(pg_total_relation_size(to_regclass(format('refinery.%I',
			refinery.state_table_name(j.name)))), 0) AS state_bytes,
	   (SELECT count(*) FROM refinery.lead_changes c WHERE c.job = j.name) AS change_rows
FROM refinery.jobs j
LEFT JOIN refinery.latest_run l ON l.job = j.name
LEFT JOIN (SELECT r.job,
				  count(*) AS runs,
				  sum(r.rows_pulled) FILTER (WHERE r.snapshot)::bigint AS result_rows,
				  sum(coalesce(pg_total_relation_size(
						  to_regclass(format('refinery.%I', 'lead_results_' || r.run_id))), 0))::bigint
				  AS result_bytes
		   FROM refinery.runs r
		   WHERE r.status = 'committed'
		   GROUP BY r.job) s ON s.job = j.name;

COMMENT ON COLUMN refinery.job_summary.result_rows IS 'lead_results rows of those runs (runs with a snapshot).';
COMMENT ON COLUMN refinery.job_summary.state_rows IS 'Rows of the job''s state (refinery.lead_state), vanished leads included.';
COMMENT ON COLUMN refinery.job_summary.state_bytes IS 'Bytes of the job''s partition of lead_state, indexes included.';
COMMENT ON COLUMN refinery.job_summary.change_rows IS 'Rows of the job''s change log (refinery.lead_changes) still kept.';

/* ------------------------------------------------------------------------
 * Runs made before the state: each job's state from its newest run
 * ------------------------------------------------------------------------ */
SELECT refinery.new_state_table(r.job)
FROM (SELECT DISTINCT job FROM refinery.runs WHERE status = 'committed') r;

SELECT refinery.attach_state_table(r.job)
FROM (SELECT DISTINCT job FROM refinery.runs WHERE status = 'committed') r;

INSERT INTO refinery.lead_state
	(job, lead_id, state, fingerprint, first_run, changed_run, assigned_at, source, verdict,
	 rule_id, reason, cluster_id, survivor_id, phone_norm, phone_type, phone_repair, email_norm,
	 name_norm, status_norm, score, points, temperature, persona, cohort, rep_id, call_order,
	 p_close, channel_plan, sla_due_at, golden)
SELECT r.job, l.lead_id, 'current', NULL, l.run_id, l.run_id,
	   CASE WHEN l.rep_id IS NOT NULL THEN r.started_at END, l.source, l.verdict,
	   l.rule_id, l.reason, l.cluster_id, l.survivor_id, l.phone_norm, l.phone_type,
	   l.phone_repair, l.email_norm, l.name_norm, l.status_norm, l.score, l.points,
	   l.temperature, l.persona, l.cohort, l.rep_id, l.call_order, l.p_close, l.channel_plan,
	   l.sla_due_at, l.golden
FROM refinery.lead_results l
JOIN (SELECT DISTINCT ON (x.job) x.job, x.run_id, x.started_at
	  FROM refinery.runs x
	  WHERE x.status = 'committed'
	  ORDER BY x.job, x.run_id DESC) r ON r.run_id = l.run_id;

/* ------------------------------------------------------------------------
 * revert_run(run_id) -> leads put back
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.revert_run(run_id bigint)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	r			record;
	newest		bigint;
	removed		bigint;
	restored	bigint;
BEGIN
	SELECT x.job, x.status INTO r FROM refinery.runs x WHERE x.run_id = revert_run.run_id;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'run % does not exist', revert_run.run_id USING ERRCODE = 'no_data_found';
	END IF;
	IF r.status <> 'committed' THEN
		RAISE EXCEPTION 'run % is %, not committed', revert_run.run_id, r.status
			USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;
	/* the job's lease: no run of the job may be writing its state meanwhile */
	PERFORM 1 FROM refinery.jobs j WHERE j.name = r.job FOR UPDATE NOWAIT;
	SELECT max(x.run_id) INTO newest
	FROM refinery.runs x
	WHERE x.job = r.job AND x.status = 'committed';
	IF newest <> revert_run.run_id THEN
		RAISE EXCEPTION 'run % is not the latest committed run of job "%" (run % is)',
			revert_run.run_id, r.job, newest
			USING ERRCODE = 'object_not_in_prerequisite_state',
				  HINT = 'Revert the job''s runs newest first.';
	END IF;
	IF (SELECT x.full_write FROM refinery.runs x WHERE x.run_id = revert_run.run_id) IS NULL THEN
		RAISE EXCEPTION 'run % of job "%" was made before the job had a state: it has no change log',
			revert_run.run_id, r.job USING ERRCODE = 'object_not_in_prerequisite_state';
	END IF;

	/* leads the run brought in go; the rest get their row from before the run */
	DELETE FROM refinery.lead_state s
	WHERE s.job = r.job AND s.first_run = revert_run.run_id;
	GET DIAGNOSTICS removed = ROW_COUNT;
	UPDATE refinery.lead_state s
	SET (state, fingerprint, first_run, changed_run, version, assigned_at, source, verdict,
		 rule_id, reason, cluster_id, survivor_id, phone_norm, phone_type, phone_repair,
		 email_norm, name_norm, status_norm, score, points, temperature, persona, cohort,
		 rep_id, call_order, p_close, channel_plan, sla_due_at, golden)
	  = (p.state, p.fingerprint, p.first_run, p.changed_run, s.version + 1, p.assigned_at,
		 p.source, p.verdict, p.rule_id, p.reason, p.cluster_id, p.survivor_id, p.phone_norm,
		 p.phone_type, p.phone_repair, p.email_norm, p.name_norm, p.status_norm, p.score,
		 p.points, p.temperature, p.persona, p.cohort, p.rep_id, p.call_order, p.p_close,
		 p.channel_plan, p.sla_due_at, p.golden)
	FROM refinery.lead_changes c
	CROSS JOIN LATERAL jsonb_populate_record(NULL::refinery.lead_state, c.previous) p
	WHERE c.run_id = revert_run.run_id AND c.previous IS NOT NULL
	  AND s.job = c.job AND s.lead_id = c.lead_id;
	GET DIAGNOSTICS restored = ROW_COUNT;
	UPDATE refinery.runs x SET status = 'reverted', reverted_at = clock_timestamp()
	WHERE x.run_id = revert_run.run_id;
	RETURN removed + restored;
END
$$;

COMMENT ON FUNCTION refinery.revert_run(bigint) IS
'Undo a committed run of a job by applying its change log backwards: the leads it brought in leave the state, every lead it changed gets its row from before the run back, and the run''s status becomes reverted (latest_run then names the run before it). Only the job''s latest committed run can be reverted (revert several newest first); a run of the job in progress makes it fail at once (the job''s lease). Returns the number of state rows removed or put back. "refinery revert --job J --run N" calls it.';

/* ------------------------------------------------------------------------
 * missing_privileges(): the state tables too
 * ------------------------------------------------------------------------ */
CREATE OR REPLACE FUNCTION refinery.missing_privileges()
RETURNS SETOF text
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	owner		oid;
	need		record;
BEGIN
	IF current_setting('transaction_read_only')::boolean THEN
		RETURN NEXT 'a read-write transaction (this one is read-only)';
	END IF;
	IF NOT has_schema_privilege('refinery', 'CREATE') THEN
		RETURN NEXT 'CREATE on schema refinery';
	END IF;
	SELECT c.relowner INTO owner
	FROM pg_class c
	WHERE c.oid = 'refinery.lead_results'::regclass;
	IF NOT pg_has_role(owner, 'USAGE') THEN
		RETURN NEXT format('membership in role %s, the owner of refinery.lead_results '
						   '(attaching and dropping partitions needs it)', owner::regrole);
	END IF;
	FOR need IN
		SELECT v.tbl, v.priv
		FROM (VALUES ('refinery.runs', 'SELECT', 1), ('refinery.runs', 'INSERT', 2),
					 ('refinery.runs', 'UPDATE', 3), ('refinery.runs', 'DELETE', 4),
					 ('refinery.run_stages', 'INSERT', 5), ('refinery.run_cohorts', 'INSERT', 6),
					 ('refinery.run_reps', 'INSERT', 7), ('refinery.run_rep_sources', 'INSERT', 8),
					 ('refinery.lead_results', 'SELECT', 9), ('refinery.jobs', 'SELECT', 10),
					 ('refinery.jobs', 'INSERT', 11), ('refinery.jobs', 'UPDATE', 12),
					 ('refinery.lead_state', 'SELECT', 13), ('refinery.lead_state', 'INSERT', 14),
					 ('refinery.lead_state', 'UPDATE', 15), ('refinery.lead_state', 'DELETE', 16),
					 ('refinery.lead_changes', 'SELECT', 17),
					 ('refinery.lead_changes', 'INSERT', 18))
			AS v (tbl, priv, ord)
		ORDER BY v.ord
	LOOP
		IF NOT has_table_privilege(need.tbl, need.priv) THEN
			RETURN NEXT format('%s on %s', need.priv, need.tbl);
		END IF;
	END LOOP;
END
$$;
