/*
 * 001_schema.sql
 *    The tables of schema refinery: one row per run, its stage timings, one
 *    result row per pulled lead, and the per-run cohort and rep summaries.
 *
 * `refinery init-db` has already created the schema and
 * refinery.schema_migrations, and runs this file in its own transaction
 * (one PQexec string: no BEGIN/COMMIT, no psql commands).  Results are
 * partitioned by run: a run writes its rows into a table of its own and
 * attaches it at the end (see 003_functions.sql), so a run appears at
 * COMMIT in one piece and retention drops a run without touching others.
 * Every object carries a COMMENT: the catalogue is the DBA's manual.
 */

COMMENT ON SCHEMA refinery IS
'Lead Refinery: every run of the engine, every decision it made on every pulled lead, and the per-run summaries. Query the views (latest_run, run_funnel, lead_explain, rep_load, cohort_summary, stage_times, source_summary) for the common questions.';

COMMENT ON TABLE refinery.schema_migrations IS
'Migrations applied by "refinery init-db": one row per file sql/NNN_name.sql, each applied in its own transaction. Never edit an applied file; add a new one.';
COMMENT ON COLUMN refinery.schema_migrations.version IS 'The NNN of the file name, as a number.';
COMMENT ON COLUMN refinery.schema_migrations.name IS 'The file name, e.g. 001_schema.sql.';
COMMENT ON COLUMN refinery.schema_migrations.sha256 IS 'SHA-256 (hex) of the file text as applied; refinery init-db warns when a migration it carries differs from the one applied.';
COMMENT ON COLUMN refinery.schema_migrations.applied_at IS 'When the migration was committed.';

/* ------------------------------------------------------------------------
 * runs
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.runs
(
	run_id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	started_at	timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	status		text NOT NULL DEFAULT 'running'
		CONSTRAINT runs_status_check
		CHECK (status IN ('running', 'committed', 'failed', 'dry_run')),
	rules_sha256 text NOT NULL
		CONSTRAINT runs_rules_sha256_check CHECK (rules_sha256 ~ '^[0-9a-f]{64}$'),
	rules_text	text NOT NULL,
	rules_files text,
	source_desc text NOT NULL,
	engine_version text NOT NULL,
	host		text,
	threads		integer CONSTRAINT runs_threads_check CHECK (threads > 0),
	rows_pulled bigint CONSTRAINT runs_rows_pulled_check CHECK (rows_pulled >= 0),
	rows_kept	bigint CONSTRAINT runs_rows_kept_check CHECK (rows_kept >= 0 AND rows_kept <= rows_pulled),
	seconds_total double precision
		CONSTRAINT runs_seconds_total_check CHECK (seconds_total >= 0),
	counts		jsonb CONSTRAINT runs_counts_check CHECK (jsonb_typeof(counts) = 'object'),
	CONSTRAINT runs_committed_finished_check
		CHECK (status IN ('running', 'dry_run') OR finished_at IS NOT NULL)
);

COMMENT ON TABLE refinery.runs IS
'One row per run of the engine. A run inserts its row (status running), writes its results and summaries, sets status committed and commits, all in one transaction: other sessions never see a running run. A dry run does the same and rolls back.';
COMMENT ON COLUMN refinery.runs.run_id IS 'Run number, assigned by the database in increasing order; "newest" always means the highest run_id.';
COMMENT ON COLUMN refinery.runs.started_at IS 'When the run began (defaults to the start of the run''s transaction).';
COMMENT ON COLUMN refinery.runs.finished_at IS 'When the run finished writing (set with status; required once committed or failed). NULL while running.';
COMMENT ON COLUMN refinery.runs.status IS 'running (only ever seen inside the run''s own transaction), committed, or dry_run (seen only inside a dry run''s transaction, which is rolled back). failed is reserved: the engine records nothing of a run that does not commit, so that a failed run leaves the database exactly as it was.';
COMMENT ON COLUMN refinery.runs.rules_sha256 IS 'SHA-256 (64 lower-case hex digits) of rules_text: two runs with the same value ran the same rules.';
COMMENT ON COLUMN refinery.runs.rules_text IS 'The merged rule set the run used, in canonical INI text (every file given, later files overriding earlier ones).';
COMMENT ON COLUMN refinery.runs.rules_files IS 'The rule files merged, in order, separated by ", "; the first is default.ini, the rules compiled into the engine.';
COMMENT ON COLUMN refinery.runs.source_desc IS 'Where the leads came from: the source query or table, or the CSV file names (never a password).';
COMMENT ON COLUMN refinery.runs.engine_version IS 'Version of the refinery program that made the run.';
COMMENT ON COLUMN refinery.runs.host IS 'Host name of the machine the engine ran on.';
COMMENT ON COLUMN refinery.runs.threads IS 'Number of threads the stages used.';
COMMENT ON COLUMN refinery.runs.rows_pulled IS 'Leads pulled from the source; equals the run''s row count in lead_results.';
COMMENT ON COLUMN refinery.runs.rows_kept IS 'Leads with verdict kept at the end of the run.';
COMMENT ON COLUMN refinery.runs.seconds_total IS 'Wall-clock seconds of the whole run, pull and write-back included.';
COMMENT ON COLUMN refinery.runs.counts IS 'Leads per verdict, as a JSON object with all six verdicts as keys, e.g. {"kept": 5, "blacklisted": 3, "duplicate": 1, "partial": 1, "outlier": 1, "nurture": 1}; the values add up to rows_pulled.';
COMMENT ON CONSTRAINT runs_committed_finished_check ON refinery.runs IS
'A committed or failed run has a finish time.';

/* ------------------------------------------------------------------------
 * run_stages
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.run_stages
(
	run_id		bigint NOT NULL REFERENCES refinery.runs (run_id) ON DELETE CASCADE,
	ord			integer NOT NULL CONSTRAINT run_stages_ord_check CHECK (ord >= 0),
	stage		text NOT NULL,
	rows_in		bigint NOT NULL CONSTRAINT run_stages_rows_in_check CHECK (rows_in >= 0),
	rows_out	bigint NOT NULL CONSTRAINT run_stages_rows_out_check CHECK (rows_out >= 0),
	seconds		double precision NOT NULL CONSTRAINT run_stages_seconds_check CHECK (seconds >= 0),
	counters	jsonb CONSTRAINT run_stages_counters_check CHECK (jsonb_typeof(counters) = 'object'),
	PRIMARY KEY (run_id, ord),
	CONSTRAINT run_stages_stage_key UNIQUE (run_id, stage)
);

COMMENT ON TABLE refinery.run_stages IS
'One row per pipeline stage per run: rows in and out, time, and the stage''s own counters. See the view stage_times.';
COMMENT ON COLUMN refinery.run_stages.run_id IS 'The run (refinery.runs).';
COMMENT ON COLUMN refinery.run_stages.ord IS 'Position of the stage in the pipeline, in execution order.';
COMMENT ON COLUMN refinery.run_stages.stage IS 'Stage name, in run order: pull, normalize, blacklist, dedupe, partial, score, cohort, match, write.';
COMMENT ON COLUMN refinery.run_stages.rows_in IS 'Kept leads when the stage began.';
COMMENT ON COLUMN refinery.run_stages.rows_out IS 'Kept leads when the stage ended.';
COMMENT ON COLUMN refinery.run_stages.seconds IS 'Wall-clock seconds the stage took.';
COMMENT ON COLUMN refinery.run_stages.counters IS 'The stage''s named counts as a JSON object (name -> count), e.g. leads removed per rule id: {"blacklist.status": 1}.';

/* ------------------------------------------------------------------------
 * lead_results: partitioned by run
 *
 * No foreign key to runs: it would make every ATTACH re-check all rows
 * against runs, and retention drops whole partitions anyway.  The primary
 * key is a partitioned index, so each run's table gets its unique index
 * built when it is attached; a lead id twice in one run fails the write-back
 * there, naming the id.
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.lead_results
(
	run_id		bigint NOT NULL,
	lead_id		text NOT NULL,
	source		text,
	verdict		text NOT NULL
		CONSTRAINT lead_results_verdict_check
		CHECK (verdict IN ('kept', 'blacklisted', 'duplicate', 'partial', 'outlier', 'nurture')),
	rule_id		text,
	reason		text,
	cluster_id	bigint,
	survivor_id text,
	phone_norm	text,
	phone_type	text
		CONSTRAINT lead_results_phone_type_check
		CHECK (phone_type IN ('mobile', 'landline', 'voip', 'special', 'invalid')),
	phone_repair text,
	email_norm	text,
	name_norm	text,
	status_norm text,
	score		numeric(5, 2)
		CONSTRAINT lead_results_score_check CHECK (score BETWEEN 0 AND 100),
	points		jsonb CONSTRAINT lead_results_points_check CHECK (jsonb_typeof(points) = 'object'),
	temperature text
		CONSTRAINT lead_results_temperature_check CHECK (temperature IN ('hot', 'warm', 'cold')),
	persona		text,
	cohort		text,
	rep_id		bigint,
	call_order	integer CONSTRAINT lead_results_call_order_check CHECK (call_order >= 1),
	p_close		double precision
		CONSTRAINT lead_results_p_close_check CHECK (p_close BETWEEN 0 AND 1),
	channel_plan text,
	sla_due_at	timestamptz,
	golden		jsonb CONSTRAINT lead_results_golden_check CHECK (jsonb_typeof(golden) = 'object'),
	CONSTRAINT lead_results_removed_rule_check
		CHECK (verdict = 'kept' OR rule_id IS NOT NULL),
	CONSTRAINT lead_results_duplicate_survivor_check
		CHECK (verdict <> 'duplicate' OR (cluster_id IS NOT NULL AND survivor_id IS NOT NULL)),
	CONSTRAINT lead_results_phone_norm_check
		CHECK (phone_type IS NULL OR phone_type NOT IN ('mobile', 'landline', 'voip')
			   OR (phone_norm IS NOT NULL AND phone_norm LIKE '+%'
				   AND length(phone_norm) BETWEEN 8 AND 16)),
	PRIMARY KEY (run_id, lead_id)
)
PARTITION BY LIST (run_id);

COMMENT ON TABLE refinery.lead_results IS
'One row per pulled lead per run: the verdict and everything the engine decided about the lead. Partitioned by run_id, one partition per run (refinery.lead_results_<run_id>), attached when the run commits; always query this parent table, e.g. WHERE run_id = (SELECT run_id FROM refinery.latest_run).';
COMMENT ON COLUMN refinery.lead_results.run_id IS 'The run (refinery.runs); the partition key.';
COMMENT ON COLUMN refinery.lead_results.lead_id IS 'The lead''s id in the source, as text; unique within a run.';
COMMENT ON COLUMN refinery.lead_results.source IS 'The lead''s source (where it came from, e.g. facebook, referral), as pulled; joins run_rep_sources.source.';
COMMENT ON COLUMN refinery.lead_results.verdict IS 'kept (goes to a rep), blacklisted (dead or opted out), duplicate (merged into its survivor), partial (no usable contact or required field missing), outlier (impossible values), nurture (kept out of the call lists, e.g. too low a score).';
COMMENT ON COLUMN refinery.lead_results.rule_id IS 'The rule that decided a verdict other than kept, as named in the rule file (e.g. blacklist.status); never NULL for a removed lead.';
COMMENT ON COLUMN refinery.lead_results.reason IS 'Why, in words, with the value that triggered the rule.';
COMMENT ON COLUMN refinery.lead_results.cluster_id IS 'Identity cluster (records of one person, found by dedupe); NULL when the lead matched no other record.';
COMMENT ON COLUMN refinery.lead_results.survivor_id IS 'lead_id of the cluster''s survivor (the record that carries the merged golden record); equals lead_id for the survivor itself; NULL when not clustered.';
COMMENT ON COLUMN refinery.lead_results.phone_norm IS 'Primary phone in E.164 form, e.g. +972521234567; NULL when there is none. Required, starting with + and 8 to 16 characters long, when phone_type is mobile, landline or voip.';
COMMENT ON COLUMN refinery.lead_results.phone_type IS 'Line type of the primary phone: mobile, landline, voip, special (1-700 / 1-800 and similar) or invalid (given but not a number of the plan); NULL when no phone was given.';
COMMENT ON COLUMN refinery.lead_results.phone_repair IS 'The repair applied to the phone (e.g. a missing 0 added to an area code); NULL when none was needed.';
COMMENT ON COLUMN refinery.lead_results.email_norm IS 'E-mail trimmed and lower-cased; NULL when missing or invalid.';
COMMENT ON COLUMN refinery.lead_results.name_norm IS 'Name normalised for comparison (Unicode NFKC, case-folded, punctuation dropped, single spaces).';
COMMENT ON COLUMN refinery.lead_results.status_norm IS 'Last status mapped from its legacy spelling to the canonical status.';
COMMENT ON COLUMN refinery.lead_results.score IS 'Relative priority 0-100 (two decimals), the sum of points; NULL for leads removed before scoring.';
COMMENT ON COLUMN refinery.lead_results.points IS 'Points of each scoring parameter as a JSON object (parameter -> points), adding up to score. The default parameters are source, created_at, status, last_touch_at, touch_count, last_touch_type, notes and automation.';
COMMENT ON COLUMN refinery.lead_results.temperature IS 'hot, warm or cold, from the score.';
COMMENT ON COLUMN refinery.lead_results.persona IS 'The persona (ideal-buyer profile of the rule file) the lead matched best.';
COMMENT ON COLUMN refinery.lead_results.cohort IS 'Work group the score placed the lead in (run_cohorts.cohort); NULL when not kept.';
COMMENT ON COLUMN refinery.lead_results.rep_id IS 'The rep the lead is assigned to (run_reps.rep_id); NULL when unassigned.';
COMMENT ON COLUMN refinery.lead_results.call_order IS 'Position in the rep''s call queue, 1 = first.';
COMMENT ON COLUMN refinery.lead_results.p_close IS 'Expected probability (0-1) that this rep closes this lead; the matcher maximised the sum of these.';
COMMENT ON COLUMN refinery.lead_results.channel_plan IS 'Channels and their order for this lead, e.g. call+sms (no SMS for a landline-only lead).';
COMMENT ON COLUMN refinery.lead_results.sla_due_at IS 'When the first contact is due under the cohort''s SLA.';
COMMENT ON COLUMN refinery.lead_results.golden IS 'The merged golden record of the cluster (JSON object: touches summed, first entry date, latest touch, best status); on survivors only.';
COMMENT ON CONSTRAINT lead_results_removed_rule_check ON refinery.lead_results IS
'Every removed lead names the rule that removed it, so the funnel accounts for every pulled lead.';
COMMENT ON CONSTRAINT lead_results_duplicate_survivor_check ON refinery.lead_results IS
'A duplicate always belongs to a cluster and names its survivor.';
COMMENT ON CONSTRAINT lead_results_phone_norm_check ON refinery.lead_results IS
'A valid mobile, landline or VoIP phone is stored in E.164 form (+, country code, no spaces). Checked cheaply (leading + and length 8-16) to keep the write-back fast; the engine validates the digits.';

/* ------------------------------------------------------------------------
 * run_cohorts
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.run_cohorts
(
	run_id		bigint NOT NULL REFERENCES refinery.runs (run_id) ON DELETE CASCADE,
	cohort		text NOT NULL,
	ord			integer NOT NULL,
	leads		bigint NOT NULL CONSTRAINT run_cohorts_leads_check CHECK (leads >= 0),
	score_min	numeric(5, 2),
	score_max	numeric(5, 2),
	mean_score	double precision,
	expected_conversions double precision
		CONSTRAINT run_cohorts_expected_check CHECK (expected_conversions >= 0),
	target_rate double precision
		CONSTRAINT run_cohorts_target_rate_check CHECK (target_rate BETWEEN 0 AND 1),
	sla_hours	integer CONSTRAINT run_cohorts_sla_hours_check CHECK (sla_hours > 0),
	channel_plan text,
	PRIMARY KEY (run_id, cohort),
	CONSTRAINT run_cohorts_ord_key UNIQUE (run_id, ord),
	CONSTRAINT run_cohorts_score_range_check CHECK (score_min <= score_max)
);

COMMENT ON TABLE refinery.run_cohorts IS
'One row per work group (cohort) per run: its size, score range, SLA, channel plan, conversion target and expected conversions. See the view cohort_summary.';
COMMENT ON COLUMN refinery.run_cohorts.run_id IS 'The run (refinery.runs).';
COMMENT ON COLUMN refinery.run_cohorts.cohort IS 'Cohort name from the rule file ([cohort.<name>]).';
COMMENT ON COLUMN refinery.run_cohorts.ord IS 'Rank of the cohort, 1 = the highest scores.';
COMMENT ON COLUMN refinery.run_cohorts.leads IS 'Kept leads placed in the cohort.';
COMMENT ON COLUMN refinery.run_cohorts.score_min IS 'Lowest score among the cohort''s leads; NULL when it is empty.';
COMMENT ON COLUMN refinery.run_cohorts.score_max IS 'Highest score among the cohort''s leads; NULL when it is empty.';
COMMENT ON COLUMN refinery.run_cohorts.mean_score IS 'Mean score of the cohort''s leads; NULL when it is empty.';
COMMENT ON COLUMN refinery.run_cohorts.expected_conversions IS 'Sum of p_close over the cohort''s assigned leads.';
COMMENT ON COLUMN refinery.run_cohorts.target_rate IS 'Conversion target of the cohort as a rate (0-1), from the rule file.';
COMMENT ON COLUMN refinery.run_cohorts.sla_hours IS 'Hours within which each lead of the cohort must first be contacted.';
COMMENT ON COLUMN refinery.run_cohorts.channel_plan IS 'The cohort''s channel plan (a lead''s own plan may drop a channel, e.g. SMS for a landline).';

/* ------------------------------------------------------------------------
 * run_reps and run_rep_sources
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.run_reps
(
	run_id		bigint NOT NULL REFERENCES refinery.runs (run_id) ON DELETE CASCADE,
	rep_id		bigint NOT NULL,
	rep_name	text,
	active		boolean NOT NULL,
	capacity	integer CONSTRAINT run_reps_capacity_check CHECK (capacity >= 0),
	assigned	bigint NOT NULL CONSTRAINT run_reps_assigned_check CHECK (assigned >= 0),
	expected_conversions double precision
		CONSTRAINT run_reps_expected_check CHECK (expected_conversions >= 0),
	close_rate	double precision
		CONSTRAINT run_reps_close_rate_check CHECK (close_rate BETWEEN 0 AND 1),
	PRIMARY KEY (run_id, rep_id),
	CONSTRAINT run_reps_within_capacity_check CHECK (assigned <= capacity),
	CONSTRAINT run_reps_inactive_check CHECK (active OR assigned = 0)
);

COMMENT ON TABLE refinery.run_reps IS
'One row per rep known to the run: capacity, leads assigned, expected conversions and smoothed close rate. See the view rep_load.';
COMMENT ON COLUMN refinery.run_reps.run_id IS 'The run (refinery.runs).';
COMMENT ON COLUMN refinery.run_reps.rep_id IS 'The rep''s id in the source; lead_results.rep_id refers to it.';
COMMENT ON COLUMN refinery.run_reps.rep_name IS 'The rep''s name.';
COMMENT ON COLUMN refinery.run_reps.active IS 'Whether the rep could receive leads in this run; inactive reps are listed with assigned = 0.';
COMMENT ON COLUMN refinery.run_reps.capacity IS 'Most leads the rep may be given in one run; NULL = no limit.';
COMMENT ON COLUMN refinery.run_reps.assigned IS 'Leads assigned to the rep in this run.';
COMMENT ON COLUMN refinery.run_reps.expected_conversions IS 'Sum of p_close over the rep''s assigned leads.';
COMMENT ON COLUMN refinery.run_reps.close_rate IS 'The rep''s overall close rate from history, smoothed toward the team''s rate so that small samples do not dominate.';
COMMENT ON CONSTRAINT run_reps_within_capacity_check ON refinery.run_reps IS
'The matcher never gives a rep more leads than the capacity.';
COMMENT ON CONSTRAINT run_reps_inactive_check ON refinery.run_reps IS
'An inactive rep receives no leads.';

CREATE TABLE refinery.run_rep_sources
(
	run_id		bigint NOT NULL REFERENCES refinery.runs (run_id) ON DELETE CASCADE,
	rep_id		bigint NOT NULL,
	source		text NOT NULL,
	attempts	integer NOT NULL CONSTRAINT run_rep_sources_attempts_check CHECK (attempts >= 0),
	wins		integer NOT NULL CONSTRAINT run_rep_sources_wins_check CHECK (wins >= 0),
	rate_smoothed double precision NOT NULL
		CONSTRAINT run_rep_sources_rate_check CHECK (rate_smoothed BETWEEN 0 AND 1),
	PRIMARY KEY (run_id, rep_id, source),
	CONSTRAINT run_rep_sources_wins_attempts_check CHECK (wins <= attempts),
	CONSTRAINT run_rep_sources_rep_fkey FOREIGN KEY (run_id, rep_id)
		REFERENCES refinery.run_reps (run_id, rep_id) ON DELETE CASCADE
);

COMMENT ON TABLE refinery.run_rep_sources IS
'Each rep''s history per lead source as the matcher used it: attempts, wins and the smoothed close rate. Write run_reps first (foreign key).';
COMMENT ON COLUMN refinery.run_rep_sources.run_id IS 'The run (refinery.runs).';
COMMENT ON COLUMN refinery.run_rep_sources.rep_id IS 'The rep (run_reps.rep_id).';
COMMENT ON COLUMN refinery.run_rep_sources.source IS 'Lead source, spelled as in lead_results.source.';
COMMENT ON COLUMN refinery.run_rep_sources.attempts IS 'Leads of this source the rep handled in the history.';
COMMENT ON COLUMN refinery.run_rep_sources.wins IS 'Of those, how many the rep closed.';
COMMENT ON COLUMN refinery.run_rep_sources.rate_smoothed IS 'Close rate for this source after smoothing toward the rep''s overall rate: the rate the matcher used.';
