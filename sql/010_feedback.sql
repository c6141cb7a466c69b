/*
 * 010_feedback.sql
 *    Feedback: what the job's outcomes say against its targets and its own
 *    expectations, answer rates, money per source, and refund claims.
 *
 * Everything here reads the job's state (refinery.lead_state), its outcomes
 * (refinery.outcomes) and the rules of its latest committed run (the
 * canonical text in refinery.runs.rules_text): the [outcomes] map says what
 * each reported outcome means, [cost] lead_price what a lead of a source
 * cost, [supplier.NAME] the claim window and price of a supplier.  Source
 * columns the state does not hold (campaign, supplier, bought_at) come from
 * an "origin" relation the caller names: "refinery feedback" and "refinery
 * export --claims" fill a temporary table from the run's source, a DBA may
 * name a view of their own with the columns lead_id, campaign, supplier and
 * bought_at.  Intervals are Wilson score intervals at 95%; a group with
 * fewer than 30 worked leads (or calls) is noted "few outcomes".
 */

/* ------------------------------------------------------------------------
 * outcomes: an amount and a region (a migration of outcome import may have
 * added them already)
 * ------------------------------------------------------------------------ */
ALTER TABLE refinery.outcomes
	ADD COLUMN IF NOT EXISTS amount numeric,
	ADD COLUMN IF NOT EXISTS region text;
COMMENT ON COLUMN refinery.outcomes.amount IS 'Money the outcome brought (a won deal''s value), in the currency of [cost] lead_price; NULL when not reported. refinery.feedback_money sums it as revenue.';
COMMENT ON COLUMN refinery.outcomes.region IS 'Region of the call as reported (a city, a district); NULL: the area code of the lead''s number stands for it in refinery.feedback_answers.';

/* ------------------------------------------------------------------------
 * Reading the rules a run stored
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.rules_value(rules_text text, section text, key text)
RETURNS text
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT replace((regexp_match(rules_text,
								 '(?:^|\n)\[' || regexp_replace(section, '([^A-Za-z0-9_])', '\\\1', 'g')
								 || '\]\n(?:[^\n]+\n)*?'
								 || regexp_replace(key, '([^A-Za-z0-9_])', '\\\1', 'g')
								 || ' = ?((?:[^\n]*)(?:\n\t[^\n]*)*)'))[1],
				   E'\n\t', E'\n')
$$;

COMMENT ON FUNCTION refinery.rules_value(text, text, text) IS
'The value of key in [section] of a rule set in the canonical text a run stores (refinery.runs.rules_text: every section once, one "key = value" a line, continuation lines indented by a tab), NULL when the section or key is absent. The text holds default.ini''s values too, so a key default.ini has is always found. Example: SELECT refinery.rules_value(rules_text, ''outcomes'', ''map'') FROM refinery.latest_run WHERE job = ''nightly''.';

CREATE FUNCTION refinery.rules_pairs(value text)
RETURNS TABLE (k text, v text)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT btrim(left(i, length(i) - position(':' IN reverse(i)))),
		   btrim(right(i, position(':' IN reverse(i)) - 1))
	FROM regexp_split_to_table(coalesce(value, ''), '[,\n]') AS i
	WHERE position(':' IN i) > 0
$$;

COMMENT ON FUNCTION refinery.rules_pairs(text) IS
'The pairs of a rules value written "a:b, c:d" ([outcomes] map, [cost] lead_price), one row each, split at the last colon of each item, blanks around both sides dropped; items without a colon are left out.';

/* ------------------------------------------------------------------------
 * outcome_meanings: each outcome with what it means
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.outcome_meanings AS
WITH vocabulary (name) AS (
	VALUES ('won'), ('lost'), ('no_answer'), ('busy'), ('callback'), ('refused'),
		   ('wrong_number'), ('not_relevant')
), maps AS (
	SELECT DISTINCT ON (r.job, lower(p.k)) r.job, lower(p.k) AS reported, lower(p.v) AS meaning
	FROM refinery.latest_run r
	CROSS JOIN LATERAL refinery.rules_pairs(refinery.rules_value(r.rules_text, 'outcomes', 'map')) p
	ORDER BY r.job, lower(p.k)
)
SELECT o.job, o.lead_id, o.rep_id, o.outcome, o.at, o.amount, o.region,
	   coalesce(v.name, (SELECT w.name FROM vocabulary w WHERE w.name = m.meaning)) AS meaning,
	   coalesce(v.name, m.meaning) IN ('won', 'lost', 'callback', 'refused', 'not_relevant')
	   AS answered
FROM refinery.outcomes o
LEFT JOIN vocabulary v ON v.name = lower(btrim(o.outcome))
LEFT JOIN maps m ON m.job = o.job AND m.reported = lower(btrim(o.outcome));

COMMENT ON VIEW refinery.outcome_meanings IS
'Every outcome (refinery.outcomes) with the engine''s outcome it means: its own name when it is one (won, lost, no_answer, busy, callback, refused, wrong_number, not_relevant; case and blanks ignored), else what the [outcomes] map of the job''s latest committed run says, else NULL (the next run of the job will refuse it). The feedback functions read outcomes through it. Typical use: SELECT outcome, count(*) FROM refinery.outcome_meanings WHERE job = ''nightly'' AND meaning IS NULL GROUP BY 1.';
COMMENT ON COLUMN refinery.outcome_meanings.job IS 'As refinery.outcomes.job.';
COMMENT ON COLUMN refinery.outcome_meanings.lead_id IS 'As refinery.outcomes.lead_id.';
COMMENT ON COLUMN refinery.outcome_meanings.rep_id IS 'As refinery.outcomes.rep_id.';
COMMENT ON COLUMN refinery.outcome_meanings.outcome IS 'The outcome as reported.';
COMMENT ON COLUMN refinery.outcome_meanings.at IS 'As refinery.outcomes.at.';
COMMENT ON COLUMN refinery.outcome_meanings.amount IS 'As refinery.outcomes.amount.';
COMMENT ON COLUMN refinery.outcome_meanings.region IS 'As refinery.outcomes.region.';
COMMENT ON COLUMN refinery.outcome_meanings.meaning IS 'The engine''s outcome: won, lost, no_answer, busy, callback, refused, wrong_number or not_relevant; NULL when neither the name nor the map knows the value.';
COMMENT ON COLUMN refinery.outcome_meanings.answered IS 'Whether someone answered the call: won, lost, callback, refused and not_relevant are answered; no_answer, busy and wrong_number (the lead was not reached) are not; NULL for an unknown outcome.';

/* ------------------------------------------------------------------------
 * wilson(k, n): a 95% interval for a rate of k in n
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.wilson(k bigint, n bigint, OUT low double precision,
								OUT high double precision)
LANGUAGE sql
IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN n > 0 THEN
				greatest(0, (p + z * z / (2 * n) - z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)))
							/ (1 + z * z / n)) END,
		   CASE WHEN n > 0 THEN
				least(1, (p + z * z / (2 * n) + z * sqrt(p * (1 - p) / n + z * z / (4.0 * n * n)))
						 / (1 + z * z / n)) END
	FROM (SELECT k::double precision / nullif(n, 0) AS p, 1.959963984540054::double precision AS z) c
$$;

COMMENT ON FUNCTION refinery.wilson(bigint, bigint) IS
'The Wilson score interval at 95% (z = 1.96) of a rate of k successes in n trials, as (low, high); NULLs when n is 0. Unlike p +- 1.96 sqrt(p(1-p)/n) it stays within 0..1 and is honest for small n and for rates near 0: 0 wins in 12 gives (0, 0.243). Example: SELECT * FROM refinery.wilson(3, 40).';

/* ------------------------------------------------------------------------
 * feedback(job, since, origin): conversion per group
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.feedback(job text, since timestamptz DEFAULT NULL,
								  origin regclass DEFAULT NULL)
RETURNS TABLE (dimension text, key text, leads bigint, worked bigint, outcomes bigint,
			   won bigint, actual_rate double precision, ci_low double precision,
			   ci_high double precision, expected_rate double precision,
			   target_rate double precision, note text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY EXECUTE format($q$
	WITH o AS (
		SELECT m.lead_id, m.rep_id, count(*) AS outcomes,
			   bool_or(m.meaning = 'won') AS won
		FROM refinery.outcome_meanings m
		WHERE m.job = $1 AND m.meaning IS NOT NULL AND ($2::timestamptz IS NULL OR m.at >= $2)
		GROUP BY m.lead_id, m.rep_id
	), targets AS (
		SELECT c.cohort, c.target_rate
		FROM refinery.run_cohorts c
		WHERE c.run_id = (SELECT l.run_id FROM refinery.latest_run l WHERE l.job = $1)
	), facts AS (
		/* one row per lead and rep that worked it (or holds it, when none did) */
		SELECT s.lead_id, coalesce(o.rep_id, s.rep_id) AS rep_id, s.source,
			   coalesce(s.persona, x.persona) AS persona, coalesce(s.cohort, lc.old_cohort) AS cohort,
			   %s AS campaign, s.p_close, t.target_rate, o.lead_id IS NOT NULL AS worked,
			   coalesce(o.outcomes, 0) AS outcomes, coalesce(o.won, false) AS won
		FROM refinery.lead_state s
		LEFT JOIN o ON o.lead_id = s.lead_id
		/* a lead that left the cohorts (won: customer; refused) counts in the one it had last */
		LEFT JOIN LATERAL (
			SELECT c.old_cohort FROM refinery.lead_changes c
			WHERE s.cohort IS NULL AND o.lead_id IS NOT NULL AND c.job = s.job
			  AND c.lead_id = s.lead_id AND c.old_cohort IS NOT NULL
			ORDER BY c.run_id DESC LIMIT 1) lc ON true
		LEFT JOIN targets t ON t.cohort = coalesce(s.cohort, lc.old_cohort)
		/* a job with snapshots keeps the persona in the latest run's results, not the state */
		LEFT JOIN refinery.lead_results x
			ON x.run_id = (SELECT l.run_id FROM refinery.latest_run l WHERE l.job = $1)
		   AND x.lead_id = s.lead_id
		%s
		WHERE s.job = $1
		  AND ((s.state = 'current' AND (s.verdict IN ('kept', 'customer') OR s.rep_id IS NOT NULL))
			   OR o.lead_id IS NOT NULL)
	), per_lead AS (
		SELECT f.lead_id, min(f.source) AS source, min(f.persona) AS persona,
			   min(f.cohort) AS cohort, min(f.campaign) AS campaign, min(f.p_close) AS p_close,
			   min(f.target_rate) AS target_rate, bool_or(f.worked) AS worked,
			   sum(f.outcomes) AS outcomes, bool_or(f.won) AS won
		FROM facts f
		GROUP BY f.lead_id
	), grouped AS (
		SELECT g.dimension, g.key, count(*) AS leads,
			   count(*) FILTER (WHERE g.worked) AS worked, sum(g.outcomes)::bigint AS outcomes,
			   count(*) FILTER (WHERE g.won) AS won, avg(g.p_close) AS expected_rate,
			   avg(g.target_rate) AS target_rate
		FROM (SELECT 1 AS ord, 'cohort' AS dimension, coalesce(p.cohort, '(none)') AS key, p.*
			  FROM per_lead p
			  UNION ALL
			  SELECT 2, 'rep', coalesce(f.rep_id::text, '(none)'), f.lead_id, f.source,
					 f.persona, f.cohort, f.campaign, f.p_close, f.target_rate, f.worked,
					 f.outcomes, f.won
			  FROM facts f
			  UNION ALL
			  SELECT 3, 'source', coalesce(p.source, '(none)'), p.* FROM per_lead p
			  UNION ALL
			  SELECT 4, 'campaign', coalesce(p.campaign, '(none)'), p.*
			  FROM per_lead p WHERE %s
			  UNION ALL
			  SELECT 5, 'persona', coalesce(p.persona, '(none)'), p.* FROM per_lead p) g
		GROUP BY g.ord, g.dimension, g.key
	)
	SELECT g.dimension, g.key, g.leads, g.worked, g.outcomes, g.won,
		   g.won::double precision / nullif(g.worked, 0), w.low, w.high, g.expected_rate,
		   g.target_rate,
		   CASE WHEN g.worked = 0 THEN 'no outcomes'
				WHEN g.worked < 30 THEN format('few outcomes (%%s)', g.worked) END
	FROM grouped g
	CROSS JOIN LATERAL refinery.wilson(g.won, g.worked) w
	ORDER BY array_position(ARRAY['cohort', 'rep', 'source', 'campaign', 'persona'], g.dimension),
			 g.key = '(none)', length(g.key), g.key
	$q$,
	CASE WHEN origin IS NULL THEN 'NULL::text' ELSE 'g.campaign::text' END,
	CASE WHEN origin IS NULL THEN ''
		 ELSE format('LEFT JOIN %s g ON g.lead_id::text = s.lead_id', origin) END,
	CASE WHEN origin IS NULL THEN 'false' ELSE 'true' END)
	USING feedback.job, feedback.since;
END
$$;

COMMENT ON FUNCTION refinery.feedback(text, timestamptz, regclass) IS
'Actual against target against expected conversion of a job, per cohort, rep, source, campaign and persona (dimension, key): the leads of the job''s state in the group (a lead that left the cohorts, won or refused, in the cohort it had last; current and kept or customer or held by a rep, or with an outcome), those worked (with at least one outcome the job''s [outcomes] map knows, at or after since when given), their outcomes, those won (an outcome won), actual_rate = won / worked with its 95% Wilson interval (ci_low, ci_high), expected_rate = the mean p_close the engine gave the group''s leads, target_rate = the mean [cohort.*] target_rate of their cohorts (the latest run''s), and a note: "no outcomes", or "few outcomes (N)" under 30 worked leads. A lead counts once per group; under rep, once per rep that worked it (else under the rep that holds it). Campaign rows only with origin: a relation with columns lead_id and campaign, e.g. a view on the source. Example: SELECT * FROM refinery.feedback(''nightly'', now() - interval ''30 days'').';

/* ------------------------------------------------------------------------
 * feedback_answers(job, since): answer rate by hour, weekday and region
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.feedback_answers(job text, since timestamptz DEFAULT NULL)
RETURNS TABLE (dimension text, key text, calls bigint, answered bigint,
			   answer_rate double precision, ci_low double precision,
			   ci_high double precision, note text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH c AS (
		SELECT m.at, m.answered,
			   coalesce(nullif(btrim(m.region), ''),
						/* the area code: +972 3..., +972 52..., +1 212... */
						CASE WHEN s.phone_norm LIKE '+972%'
							 THEN '0' || substr(s.phone_norm, 5,
												CASE WHEN substr(s.phone_norm, 5, 1) IN ('5', '7')
													 THEN 2 ELSE 1 END)
							 WHEN s.phone_norm LIKE '+1%' THEN '+1 ' || substr(s.phone_norm, 3, 3)
							 WHEN s.phone_norm LIKE '+%' THEN substr(s.phone_norm, 1, 4)
						END, '(unknown)') AS region
		FROM refinery.outcome_meanings m
		LEFT JOIN refinery.lead_state s ON s.job = m.job AND s.lead_id = m.lead_id
		WHERE m.job = feedback_answers.job AND m.meaning IS NOT NULL
		  AND (feedback_answers.since IS NULL OR m.at >= feedback_answers.since)
	), g AS (
		SELECT 1 AS ord, 'hour' AS dimension, to_char(c.at, 'HH24') AS key, c.answered FROM c
		UNION ALL
		SELECT 2, 'weekday', extract(dow FROM c.at)::int || ' ' || to_char(c.at, 'Dy'),
			   c.answered
		FROM c
		UNION ALL
		SELECT 3, 'region', c.region, c.answered FROM c
	)
	SELECT a.dimension, a.key, a.calls, a.answered,
		   a.answered::double precision / a.calls, w.low, w.high,
		   CASE WHEN a.calls < 30 THEN format('few outcomes (%s)', a.calls) END
	FROM (SELECT g.ord, g.dimension, g.key, count(*) AS calls,
				 count(*) FILTER (WHERE g.answered) AS answered
		  FROM g
		  GROUP BY g.ord, g.dimension, g.key) a
	CROSS JOIN LATERAL refinery.wilson(a.answered, a.calls) w
	ORDER BY a.ord, a.key
$$;

COMMENT ON FUNCTION refinery.feedback_answers(text, timestamptz) IS
'Answer rates of a job''s calls: every outcome the [outcomes] map knows is a call, answered when it is won, lost, callback, refused or not_relevant (not no_answer, busy or wrong_number). Per hour of day (key 00..23) and weekday (key "0 Sun" .. "6 Sat") of the outcome''s time in the session''s TimeZone ("refinery feedback" sets the job''s [source] timezone), and per region: the outcome''s region when reported, else the area code of the lead''s number (+972: 03, 052, ...; +1: "+1 212"; other countries: "+CC"), else (unknown). calls, answered, answer_rate with its 95% Wilson interval, and a note "few outcomes (N)" under 30 calls. Example: SELECT * FROM refinery.feedback_answers(''nightly'') WHERE dimension = ''hour''.';

/* ------------------------------------------------------------------------
 * feedback_money(job, since, origin): cost and revenue per source, campaign
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.feedback_money(job text, since timestamptz DEFAULT NULL,
										origin regclass DEFAULT NULL)
RETURNS TABLE (dimension text, key text, leads bigint, priced bigint, cost numeric, won bigint,
			   revenue numeric, profit numeric, cost_per_win numeric, revenue_per_lead numeric)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	RETURN QUERY EXECUTE format($q$
	WITH prices AS (
		SELECT DISTINCT ON (p.k) p.k AS source, p.v::numeric AS price
		FROM refinery.latest_run r
		CROSS JOIN LATERAL refinery.rules_pairs(refinery.rules_value(r.rules_text, 'cost',
																	  'lead_price')) p
		WHERE r.job = $1 AND p.v ~ '^[0-9]+(\.[0-9]+)?$'
		ORDER BY p.k
	), o AS (
		SELECT m.lead_id, bool_or(m.meaning = 'won') AS won,
			   sum(m.amount) FILTER (WHERE m.meaning = 'won') AS revenue
		FROM refinery.outcome_meanings m
		WHERE m.job = $1 AND m.meaning IS NOT NULL AND ($2::timestamptz IS NULL OR m.at >= $2)
		GROUP BY m.lead_id
	), facts AS (
		/* every lead of the job was bought, whatever its verdict */
		SELECT s.source, %s AS campaign, p.price, coalesce(o.won, false) AS won, o.revenue
		FROM refinery.lead_state s
		LEFT JOIN prices p ON p.source = s.source
		LEFT JOIN o ON o.lead_id = s.lead_id
		%s
		WHERE s.job = $1
	), g AS (
		SELECT 1 AS ord, 'source' AS dimension, coalesce(f.source, '(none)') AS key, f.*
		FROM facts f
		UNION ALL
		SELECT 2, 'campaign', coalesce(f.campaign, '(none)'), f.* FROM facts f WHERE %s
	)
	SELECT g.dimension, g.key, count(*), count(g.price), sum(g.price),
		   count(*) FILTER (WHERE g.won), coalesce(sum(g.revenue), 0),
		   coalesce(sum(g.revenue), 0) - sum(g.price),
		   round(sum(g.price) / nullif(count(*) FILTER (WHERE g.won), 0), 2),
		   round(coalesce(sum(g.revenue), 0) / count(*), 2)
	FROM g
	GROUP BY g.ord, g.dimension, g.key
	ORDER BY g.ord, g.key = '(none)', length(g.key), g.key
	$q$,
	CASE WHEN origin IS NULL THEN 'NULL::text' ELSE 'g.campaign::text' END,
	CASE WHEN origin IS NULL THEN ''
		 ELSE format('LEFT JOIN %s g ON g.lead_id::text = s.lead_id', origin) END,
	CASE WHEN origin IS NULL THEN 'false' ELSE 'true' END)
	USING feedback_money.job, feedback_money.since;
END
$$;

COMMENT ON FUNCTION refinery.feedback_money(text, timestamptz, regclass) IS
'Cost and revenue of a job''s leads per source (and per campaign with origin, a relation with columns lead_id and campaign): leads (every lead of the job''s state, whatever its verdict: each was bought), priced (those whose source has a price in [cost] lead_price of the job''s latest run), cost (the sum of those prices; NULL when none has one), won (leads with an outcome won, at or after since when given), revenue (the sum of the amounts of their won outcomes), profit = revenue - cost, cost_per_win and revenue_per_lead. Example: SELECT * FROM refinery.feedback_money(''nightly'').';

/* ------------------------------------------------------------------------
 * refund_claims(job, origin, supplier): leads to claim back
 * ------------------------------------------------------------------------ */
CREATE FUNCTION refinery.refund_claims(job text, origin regclass, supplier_name text)
RETURNS TABLE (lead_id text, supplier text, bought_at timestamptz, reason text, evidence text,
			   proven_at timestamptz, duplicate_of text, price numeric, claim_until timestamptz)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	rules		text;
	section		text;
	days		integer;
	cost		numeric;
	claimable	text[];
BEGIN
	SELECT l.rules_text INTO rules FROM refinery.latest_run l WHERE l.job = refund_claims.job;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'job "%" has no committed run', refund_claims.job
			USING ERRCODE = 'no_data_found';
	END IF;
	/* the supplier's section, its name compared without regard to case or blanks */
	SELECT m[1] INTO section
	FROM regexp_matches(rules, '(?:^|\n)\[(supplier\.[^]\n]+)\]', 'g') AS m
	WHERE lower(m[1]) = lower('supplier.' || btrim(refund_claims.supplier_name))
	LIMIT 1;
	section := coalesce(section, 'supplier.' || refund_claims.supplier_name);
	days := coalesce(nullif(refinery.rules_value(rules, section,
												 'claim_days'), ''),
					 refinery.rules_value(rules, 'supplier.*', 'claim_days'))::integer;
	cost := nullif(coalesce(nullif(refinery.rules_value(rules, section,
														 'price'), ''),
							refinery.rules_value(rules, 'supplier.*', 'price')), '')::numeric;
	SELECT array_agg(btrim(x)) INTO claimable
	FROM regexp_split_to_table(coalesce(nullif(refinery.rules_value(rules, section,
							   'claim_rules'), ''),
							   refinery.rules_value(rules, 'supplier.*', 'claim_rules'), ''),
							   '[,\n]') x
	WHERE btrim(x) <> '';

	RETURN QUERY EXECUTE format($q$
	WITH g AS (
		SELECT DISTINCT ON (g.lead_id::text) g.lead_id::text AS lead_id, g.supplier::text AS supplier,
			   g.bought_at::timestamptz AS bought_at
		FROM %s g
		ORDER BY g.lead_id::text
	), mine AS (
		SELECT s.lead_id, s.verdict, s.rule_id, s.reason, s.cluster_id, g.supplier, g.bought_at,
			   r.started_at AS decided_at
		FROM refinery.lead_state s
		JOIN g ON g.lead_id = s.lead_id
		JOIN refinery.runs r ON r.run_id = s.changed_run
		WHERE s.job = $1 AND lower(btrim(g.supplier)) = lower(btrim($2)) AND g.bought_at IS NOT NULL
	), evidence AS (
		/* a wrong or dead number, as a rep found it */
		SELECT m.lead_id, 'wrong_number' AS reason,
			   format('outcome "%%s" of rep %%s', min(o.outcome), min(o.rep_id)) AS evidence,
			   min(o.at) AS proven_at, NULL::text AS duplicate_of
		FROM mine m
		JOIN refinery.outcome_meanings o ON o.job = $1 AND o.lead_id = m.lead_id
		WHERE o.meaning = 'wrong_number'
		GROUP BY m.lead_id
		UNION ALL
		/* a black-list rule that proves the lead invalid or fake */
		SELECT m.lead_id, 'invalid', m.rule_id || coalesce(': ' || m.reason, ''), m.decided_at,
			   NULL
		FROM mine m
		WHERE m.verdict = 'blacklisted' AND m.rule_id = ANY ($3)
		UNION ALL
		/* the same person bought before, from anyone */
		(SELECT DISTINCT ON (m.lead_id) m.lead_id, 'duplicate',
			   format('same person as lead %%s (bought %%s)', e.lead_id,
					  to_char(e.bought_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')),
			   m.decided_at, e.lead_id
		FROM mine m
		JOIN refinery.lead_state x ON x.job = $1 AND x.cluster_id = m.cluster_id
								  AND x.lead_id <> m.lead_id
		JOIN g e ON e.lead_id = x.lead_id
		WHERE m.cluster_id IS NOT NULL AND m.verdict IN ('duplicate', 'kept', 'customer')
		  AND e.bought_at < m.bought_at
		ORDER BY m.lead_id, e.bought_at, e.lead_id)
	)
	SELECT DISTINCT ON (length(m.lead_id), m.lead_id) m.lead_id, m.supplier, m.bought_at,
		   e.reason, e.evidence, e.proven_at, e.duplicate_of, $4::numeric,
		   m.bought_at + make_interval(days => $5)
	FROM mine m
	JOIN evidence e ON e.lead_id = m.lead_id
	WHERE e.proven_at <= m.bought_at + make_interval(days => $5)
	ORDER BY length(m.lead_id), m.lead_id, e.proven_at,
			 array_position(ARRAY['wrong_number', 'invalid', 'duplicate'], e.reason)
	$q$, origin)
	USING refund_claims.job, refund_claims.supplier_name, coalesce(claimable, '{}'::text[]), cost, days;
END
$$;

COMMENT ON FUNCTION refinery.refund_claims(text, regclass, text) IS
'The leads of job bought from supplier supplier_name that proved invalid within the supplier''s claim window, one row per lead with its first proof: wrong_number (an outcome meaning wrong_number; proven when it happened), invalid (black-listed by one of the rules in [supplier.NAME] claim_rules, e.g. blacklist.fake_phone or blacklist.dead_number; proven by the run that last changed the lead), duplicate (the same person, by cluster, as a lead bought earlier from any supplier, named in duplicate_of; proven likewise). origin is a relation with columns lead_id, supplier and bought_at (a view on the source; "refinery export --claims" fills a temporary table from the run''s source with [columns] supplier and bought_at); suppliers match without regard to case or blanks. claim_days and price come from [supplier.NAME] of the job''s latest run (else [supplier.*]); the window ends claim_until = bought_at + claim_days days. Example: SELECT * FROM refinery.refund_claims(''nightly'', ''crm.lead_origin'', ''acme'').';
