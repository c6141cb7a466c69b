/*
 * 002_views.sql
 *    The views that answer the common questions about runs in one SELECT.
 *
 * Each view keeps run_id as a plain output column, grouped or partitioned
 * by it, so that "WHERE run_id = N" reaches lead_results and prunes it to
 * that run's partition.  Views are read with their owner's rights: a
 * reporting role needs SELECT on the views only.
 */

/* ------------------------------------------------------------------------
 * latest_run
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.latest_run AS
SELECT r.run_id,
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
	   r.counts
FROM refinery.runs r
WHERE r.status = 'committed'
ORDER BY r.run_id DESC
LIMIT 1;

COMMENT ON VIEW refinery.latest_run IS
'The newest committed run (highest run_id), one row; empty before the first run. Use it as WHERE run_id = (SELECT run_id FROM refinery.latest_run).';
COMMENT ON COLUMN refinery.latest_run.run_id IS 'The run.';
COMMENT ON COLUMN refinery.latest_run.started_at IS 'When the run began.';
COMMENT ON COLUMN refinery.latest_run.finished_at IS 'When it finished writing.';
COMMENT ON COLUMN refinery.latest_run.status IS 'Always committed here.';
COMMENT ON COLUMN refinery.latest_run.rules_sha256 IS 'SHA-256 of the merged rules.';
COMMENT ON COLUMN refinery.latest_run.rules_text IS 'The merged rule set.';
COMMENT ON COLUMN refinery.latest_run.rules_files IS 'The rule files, one per line.';
COMMENT ON COLUMN refinery.latest_run.source_desc IS 'Where the leads came from.';
COMMENT ON COLUMN refinery.latest_run.engine_version IS 'Version of the engine.';
COMMENT ON COLUMN refinery.latest_run.host IS 'Host the engine ran on.';
COMMENT ON COLUMN refinery.latest_run.threads IS 'Threads used.';
COMMENT ON COLUMN refinery.latest_run.rows_pulled IS 'Leads pulled.';
COMMENT ON COLUMN refinery.latest_run.rows_kept IS 'Leads kept.';
COMMENT ON COLUMN refinery.latest_run.seconds_total IS 'Wall-clock seconds of the run.';
COMMENT ON COLUMN refinery.latest_run.counts IS 'Leads per verdict (JSON object).';

/* ------------------------------------------------------------------------
 * run_funnel: "why did we lose leads in run X"
 *
 * One 'pulled' row with the run's total, then one row per (verdict, rule).
 * Two aggregates joined by UNION ALL rather than one with GROUPING SETS:
 * PostgreSQL 15 keeps a pushed-down qual above a grouping-sets aggregate,
 * which would scan every run's partition; here "WHERE run_id = N" reaches
 * both scans and prunes them to one partition.
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.run_funnel AS
SELECT l.run_id,
	   0 AS step,
	   'pulled'::text AS verdict,
	   NULL::text AS rule_id,
	   count(*) AS leads,
	   100.00 AS pct_of_pulled,
	   NULL::text AS example_reason
FROM refinery.lead_results l
GROUP BY l.run_id
UNION ALL
SELECT l.run_id,
	   array_position(ARRAY['blacklisted', 'duplicate', 'partial', 'outlier', 'nurture', 'kept'],
					  l.verdict) AS step,
	   l.verdict,
	   l.rule_id,
	   count(*) AS leads,
	   round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY l.run_id), 2) AS pct_of_pulled,
	   min(l.reason) AS example_reason
FROM refinery.lead_results l
GROUP BY l.run_id, l.verdict, l.rule_id;

COMMENT ON VIEW refinery.run_funnel IS
'Where the leads of each run went: one row with verdict ''pulled'' holding the total, then one row per verdict and rule. Typical use: SELECT * FROM refinery.run_funnel WHERE run_id = 42 ORDER BY step, leads DESC.';
COMMENT ON COLUMN refinery.run_funnel.run_id IS 'The run.';
COMMENT ON COLUMN refinery.run_funnel.step IS 'Sort key in pipeline order: 0 pulled, 1 blacklisted, 2 duplicate, 3 partial, 4 outlier, 5 nurture, 6 kept.';
COMMENT ON COLUMN refinery.run_funnel.verdict IS '''pulled'' for the run''s total, else the verdict.';
COMMENT ON COLUMN refinery.run_funnel.rule_id IS 'The rule that decided the verdict; NULL for kept and for the pulled total.';
COMMENT ON COLUMN refinery.run_funnel.leads IS 'Number of leads.';
COMMENT ON COLUMN refinery.run_funnel.pct_of_pulled IS 'leads as a percentage of the run''s pulled leads, two decimals.';
COMMENT ON COLUMN refinery.run_funnel.example_reason IS 'One reason given by the rule (the first in sort order), to show what it caught; NULL for kept.';

/* ------------------------------------------------------------------------
 * lead_explain: one lead, everything about it
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.lead_explain AS
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
	   l.golden
FROM refinery.lead_results l
LEFT JOIN refinery.run_reps r ON r.run_id = l.run_id AND r.rep_id = l.rep_id
LEFT JOIN refinery.run_rep_sources s
	ON s.run_id = l.run_id AND s.rep_id = l.rep_id AND s.source = l.source;

COMMENT ON VIEW refinery.lead_explain IS
'Why each lead of each run ended as it did: verdict and rule, cluster, each scoring parameter''s points, cohort, rep, and the rates the matcher used. Typical use: SELECT * FROM refinery.lead_explain WHERE run_id = 42 AND lead_id = ''L123''.';
COMMENT ON COLUMN refinery.lead_explain.run_id IS 'The run.';
COMMENT ON COLUMN refinery.lead_explain.lead_id IS 'The lead''s id in the source.';
COMMENT ON COLUMN refinery.lead_explain.source IS 'The lead''s source.';
COMMENT ON COLUMN refinery.lead_explain.verdict IS 'kept, blacklisted, duplicate, partial, outlier or nurture.';
COMMENT ON COLUMN refinery.lead_explain.rule_id IS 'The rule that decided a removal.';
COMMENT ON COLUMN refinery.lead_explain.reason IS 'Why, in words.';
COMMENT ON COLUMN refinery.lead_explain.cluster_id IS 'Identity cluster, NULL if the lead matched no other record.';
COMMENT ON COLUMN refinery.lead_explain.survivor_id IS 'The cluster''s survivor (itself for the survivor).';
COMMENT ON COLUMN refinery.lead_explain.phone_norm IS 'Primary phone, E.164.';
COMMENT ON COLUMN refinery.lead_explain.phone_type IS 'Line type of the primary phone.';
COMMENT ON COLUMN refinery.lead_explain.phone_repair IS 'Repair applied to the phone.';
COMMENT ON COLUMN refinery.lead_explain.email_norm IS 'Normalised e-mail.';
COMMENT ON COLUMN refinery.lead_explain.name_norm IS 'Normalised name.';
COMMENT ON COLUMN refinery.lead_explain.status_norm IS 'Canonical last status.';
COMMENT ON COLUMN refinery.lead_explain.score IS 'Score 0-100.';
COMMENT ON COLUMN refinery.lead_explain.temperature IS 'hot, warm or cold.';
COMMENT ON COLUMN refinery.lead_explain.points_source IS 'Points for the lead''s source (parameter source); NULL when the rule set does not score it.';
COMMENT ON COLUMN refinery.lead_explain.points_created_at IS 'Points for the date the lead entered the system (parameter created_at).';
COMMENT ON COLUMN refinery.lead_explain.points_status IS 'Points for the last status (parameter status).';
COMMENT ON COLUMN refinery.lead_explain.points_last_touch_at IS 'Points for the date of the last handling (parameter last_touch_at).';
COMMENT ON COLUMN refinery.lead_explain.points_touch_count IS 'Points for the number of touches (parameter touch_count).';
COMMENT ON COLUMN refinery.lead_explain.points_last_touch_type IS 'Points for the kind of the last touch (parameter last_touch_type).';
COMMENT ON COLUMN refinery.lead_explain.points_notes IS 'Points for the handler''s notes (parameter notes).';
COMMENT ON COLUMN refinery.lead_explain.points_automation IS 'Points for a marketing automation after the last touch (parameter automation).';
COMMENT ON COLUMN refinery.lead_explain.points_total IS 'Sum of all parameters'' points, custom parameters included; equals score.';
COMMENT ON COLUMN refinery.lead_explain.points IS 'All parameters'' points as a JSON object, for rule sets with other parameters.';
COMMENT ON COLUMN refinery.lead_explain.persona IS 'Best-matching persona.';
COMMENT ON COLUMN refinery.lead_explain.cohort IS 'Work group.';
COMMENT ON COLUMN refinery.lead_explain.channel_plan IS 'The lead''s channel plan.';
COMMENT ON COLUMN refinery.lead_explain.sla_due_at IS 'When first contact is due.';
COMMENT ON COLUMN refinery.lead_explain.rep_id IS 'Assigned rep.';
COMMENT ON COLUMN refinery.lead_explain.rep_name IS 'The rep''s name.';
COMMENT ON COLUMN refinery.lead_explain.call_order IS 'Position in the rep''s call queue.';
COMMENT ON COLUMN refinery.lead_explain.p_close IS 'Expected probability that the rep closes the lead.';
COMMENT ON COLUMN refinery.lead_explain.rep_close_rate IS 'The rep''s smoothed overall close rate.';
COMMENT ON COLUMN refinery.lead_explain.rep_source_rate IS 'The rep''s smoothed close rate for the lead''s source, as the matcher used it; NULL when the rep has no history for that source.';
COMMENT ON COLUMN refinery.lead_explain.rep_source_attempts IS 'Leads of that source the rep handled in the history.';
COMMENT ON COLUMN refinery.lead_explain.rep_source_wins IS 'Of those, how many the rep closed.';
COMMENT ON COLUMN refinery.lead_explain.golden IS 'Merged golden record (survivors only).';

/* ------------------------------------------------------------------------
 * rep_load
 *
 * The conversion target of a rep is the sum of the cohort target rates of
 * the leads given to the rep [004-7]; it needs the rep's leads, hence the
 * aggregate over lead_results (pruned to one run by WHERE run_id = N).
 * Summed as numeric so that the value does not depend on row order.
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.rep_load AS
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
	   CASE WHEN r.assigned > 0 THEN r.expected_conversions / r.assigned END AS expected_rate
FROM refinery.run_reps r
LEFT JOIN (SELECT l.run_id,
				  l.rep_id,
				  sum(c.target_rate::numeric) AS target_conversions
		   FROM refinery.lead_results l
		   JOIN refinery.run_cohorts c ON c.run_id = l.run_id AND c.cohort = l.cohort
		   WHERE l.rep_id IS NOT NULL
		   GROUP BY l.run_id, l.rep_id) t
	ON t.run_id = r.run_id AND t.rep_id = r.rep_id;

COMMENT ON VIEW refinery.rep_load IS
'Per run and rep: leads assigned against capacity, expected conversions against the conversion target. Typical use: SELECT * FROM refinery.rep_load WHERE run_id = 42 ORDER BY utilisation DESC.';
COMMENT ON COLUMN refinery.rep_load.run_id IS 'The run.';
COMMENT ON COLUMN refinery.rep_load.rep_id IS 'The rep.';
COMMENT ON COLUMN refinery.rep_load.rep_name IS 'The rep''s name.';
COMMENT ON COLUMN refinery.rep_load.active IS 'Whether the rep could receive leads.';
COMMENT ON COLUMN refinery.rep_load.capacity IS 'Most leads the rep may be given; NULL = no limit.';
COMMENT ON COLUMN refinery.rep_load.assigned IS 'Leads assigned.';
COMMENT ON COLUMN refinery.rep_load.utilisation IS 'assigned / capacity as a fraction (1 = full); NULL when capacity is 0 or unlimited.';
COMMENT ON COLUMN refinery.rep_load.expected_conversions IS 'Sum of p_close over the rep''s leads.';
COMMENT ON COLUMN refinery.rep_load.target_conversions IS 'Conversion target of the rep: the sum of the cohort target rates of the rep''s leads.';
COMMENT ON COLUMN refinery.rep_load.close_rate IS 'The rep''s smoothed overall close rate.';
COMMENT ON COLUMN refinery.rep_load.expected_rate IS 'expected_conversions / assigned: the mean p_close of the rep''s leads; NULL with no leads.';

/* ------------------------------------------------------------------------
 * cohort_summary
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.cohort_summary AS
SELECT c.run_id,
	   c.ord,
	   c.cohort,
	   c.leads,
	   round(100.0 * c.leads / nullif(sum(c.leads) OVER (PARTITION BY c.run_id), 0), 2)
	   AS pct_of_leads,
	   c.score_min,
	   c.score_max,
	   c.mean_score,
	   c.sla_hours,
	   c.channel_plan,
	   c.target_rate,
	   c.leads * c.target_rate::numeric AS target_conversions,
	   c.expected_conversions,
	   CASE WHEN c.leads > 0 THEN c.expected_conversions / c.leads END AS expected_rate,
	   c.expected_conversions::numeric - c.leads * c.target_rate::numeric AS expected_vs_target
FROM refinery.run_cohorts c;

COMMENT ON VIEW refinery.cohort_summary IS
'Per run and cohort: size, score range, SLA, channel plan, and expected conversions against the conversion target. Typical use: SELECT * FROM refinery.cohort_summary WHERE run_id = 42 ORDER BY ord.';
COMMENT ON COLUMN refinery.cohort_summary.run_id IS 'The run.';
COMMENT ON COLUMN refinery.cohort_summary.ord IS 'Rank, 1 = the highest scores.';
COMMENT ON COLUMN refinery.cohort_summary.cohort IS 'Cohort name.';
COMMENT ON COLUMN refinery.cohort_summary.leads IS 'Leads in the cohort.';
COMMENT ON COLUMN refinery.cohort_summary.pct_of_leads IS 'leads as a percentage of all the run''s cohort leads, two decimals.';
COMMENT ON COLUMN refinery.cohort_summary.score_min IS 'Lowest score in the cohort.';
COMMENT ON COLUMN refinery.cohort_summary.score_max IS 'Highest score in the cohort.';
COMMENT ON COLUMN refinery.cohort_summary.mean_score IS 'Mean score in the cohort.';
COMMENT ON COLUMN refinery.cohort_summary.sla_hours IS 'First-contact SLA in hours.';
COMMENT ON COLUMN refinery.cohort_summary.channel_plan IS 'The cohort''s channel plan.';
COMMENT ON COLUMN refinery.cohort_summary.target_rate IS 'Conversion target as a rate.';
COMMENT ON COLUMN refinery.cohort_summary.target_conversions IS 'Conversion target in leads: leads * target_rate.';
COMMENT ON COLUMN refinery.cohort_summary.expected_conversions IS 'Sum of p_close over the cohort''s leads.';
COMMENT ON COLUMN refinery.cohort_summary.expected_rate IS 'expected_conversions / leads; NULL for an empty cohort.';
COMMENT ON COLUMN refinery.cohort_summary.expected_vs_target IS 'expected_conversions - target_conversions: negative when the allocation is expected to miss the target.';

/* ------------------------------------------------------------------------
 * stage_times
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.stage_times AS
SELECT s.run_id,
	   s.ord,
	   s.stage,
	   s.rows_in,
	   s.rows_out,
	   s.rows_in - s.rows_out AS rows_removed,
	   s.seconds,
	   round((100 * s.seconds / nullif(r.seconds_total, 0))::numeric, 1) AS pct_of_run,
	   CASE WHEN s.seconds > 0 THEN greatest(s.rows_in, s.rows_out) / s.seconds END
	   AS rows_per_second,
	   s.counters
FROM refinery.run_stages s
JOIN refinery.runs r ON r.run_id = s.run_id;

COMMENT ON VIEW refinery.stage_times IS
'Per run and stage: rows in and out, seconds, share of the run''s time and throughput. Typical use: SELECT * FROM refinery.stage_times WHERE run_id = 42 ORDER BY ord.';
COMMENT ON COLUMN refinery.stage_times.run_id IS 'The run.';
COMMENT ON COLUMN refinery.stage_times.ord IS 'Position in the pipeline.';
COMMENT ON COLUMN refinery.stage_times.stage IS 'Stage name.';
COMMENT ON COLUMN refinery.stage_times.rows_in IS 'Kept leads before the stage.';
COMMENT ON COLUMN refinery.stage_times.rows_out IS 'Kept leads after the stage.';
COMMENT ON COLUMN refinery.stage_times.rows_removed IS 'rows_in - rows_out: leads the stage removed (negative for a stage that adds leads, such as the pull).';
COMMENT ON COLUMN refinery.stage_times.seconds IS 'Seconds the stage took.';
COMMENT ON COLUMN refinery.stage_times.pct_of_run IS 'seconds as a percentage of the whole run (runs.seconds_total), one decimal.';
COMMENT ON COLUMN refinery.stage_times.rows_per_second IS 'The larger of rows_in and rows_out divided by seconds; NULL when the stage took no measurable time.';
COMMENT ON COLUMN refinery.stage_times.counters IS 'The stage''s own counters (name -> count).';

/* ------------------------------------------------------------------------
 * source_summary: per lead source, for campaign comparison and supplier
 * refund claims ([000-5], [001-5])
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.source_summary AS
SELECT l.run_id,
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
FROM refinery.lead_results l
GROUP BY l.run_id, l.source;

COMMENT ON VIEW refinery.source_summary IS
'Per run and lead source: how many leads were pulled, kept and removed by verdict, invalid phones (for refund claims to the supplier), mean score and expected conversions. Typical use: SELECT * FROM refinery.source_summary WHERE run_id = 42 ORDER BY pct_kept.';
COMMENT ON COLUMN refinery.source_summary.run_id IS 'The run.';
COMMENT ON COLUMN refinery.source_summary.source IS 'Lead source (NULL groups the leads without one).';
COMMENT ON COLUMN refinery.source_summary.pulled IS 'Leads pulled from this source.';
COMMENT ON COLUMN refinery.source_summary.kept IS 'Of those, kept.';
COMMENT ON COLUMN refinery.source_summary.blacklisted IS 'Of those, blacklisted.';
COMMENT ON COLUMN refinery.source_summary.duplicate IS 'Of those, duplicates.';
COMMENT ON COLUMN refinery.source_summary.partial IS 'Of those, partial.';
COMMENT ON COLUMN refinery.source_summary.outlier IS 'Of those, outliers.';
COMMENT ON COLUMN refinery.source_summary.nurture IS 'Of those, set to nurture.';
COMMENT ON COLUMN refinery.source_summary.invalid_phones IS 'Leads whose primary phone is invalid, whatever their verdict.';
COMMENT ON COLUMN refinery.source_summary.pct_kept IS 'kept as a percentage of pulled, two decimals.';
COMMENT ON COLUMN refinery.source_summary.mean_score_kept IS 'Mean score of the kept leads, two decimals.';
COMMENT ON COLUMN refinery.source_summary.expected_conversions IS 'Sum of p_close over the source''s assigned leads.';
