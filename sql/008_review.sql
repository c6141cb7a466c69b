/*
 * 008_review.sql
 *    The verdict review: a kept lead whose only link to a person who opted
 *    out is too weak to merge them (a name, with or without the city, or a
 *    match probability between [dedupe] optout_probability and
 *    min_probability) is held out of every call list until a person
 *    confirms, rather than called (the worst error) or suppressed (a lost
 *    person).  The dedupe stage writes it with rule dedupe.optout_review and
 *    a reason naming the opt-out lead and the evidence; review_leads puts
 *    the two records side by side (refinery export --verdict review).
 */

ALTER TABLE refinery.lead_results DROP CONSTRAINT lead_results_verdict_check;
ALTER TABLE refinery.lead_results ADD CONSTRAINT lead_results_verdict_check
	CHECK (verdict IN ('kept', 'blacklisted', 'duplicate', 'partial', 'outlier', 'nurture',
					   'customer', 'review'));
COMMENT ON COLUMN refinery.lead_results.verdict IS 'kept (goes to a rep), blacklisted (dead or opted out), duplicate (merged into its survivor), partial (no usable contact or required field missing), outlier (impossible values), nurture (kept out of the call lists, e.g. too low a score, or no contact with [partial] require_contact = no), customer (the job won the person: an outcome won on this or another record of the person), review (maybe a person who opted out: a link too weak to merge, e.g. the name alone; out of the call lists until a person confirms).';

/* run_funnel: review is step 8, after customer, so the steps dashboards know keep their numbers */
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
								  'kept', 'customer', 'review'], l.verdict) AS step,
			 l.verdict,
			 l.rule_id,
			 count(*) AS leads,
			 round(100.0 * count(*) / sum(count(*)) OVER (PARTITION BY l.run_id), 2)
			 AS pct_of_pulled,
			 min(l.reason) AS example_reason
	  FROM refinery.results l
	  GROUP BY l.run_id, l.verdict, l.rule_id) f
JOIN refinery.runs r ON r.run_id = f.run_id;
COMMENT ON COLUMN refinery.run_funnel.step IS 'Sort key in pipeline order: 0 pulled, 1 blacklisted, 2 duplicate, 3 partial, 4 outlier, 5 nurture, 6 kept, 7 customer, 8 review.';

/* ------------------------------------------------------------------------
 * review_leads: a lead held for review beside the opt-out it may be
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.review_leads AS
SELECT v.run_id, v.lead_id, v.source, v.name_norm, v.phone_norm, v.email_norm,
	   v.optout_lead_id, o.name_norm AS optout_name_norm, o.phone_norm AS optout_phone_norm,
	   o.email_norm AS optout_email_norm, o.rule_id AS optout_rule_id,
	   o.reason AS optout_reason, v.match_probability, v.reason, r.job
FROM (SELECT l.*,
			 substring(l.reason FROM 'opted out on lead (.*?): ') AS optout_lead_id,
			 substring(l.reason FROM 'match probability ([0-9.]+)$')::double precision
			 AS match_probability
	  FROM refinery.results l
	  WHERE l.verdict = 'review') v
JOIN refinery.runs r ON r.run_id = v.run_id
LEFT JOIN refinery.results o ON o.run_id = v.run_id AND o.lead_id = v.optout_lead_id;
COMMENT ON VIEW refinery.review_leads IS
'Leads with the verdict review, each beside the opt-out record it may belong to, for a person to confirm or clear. Typical use: SELECT * FROM refinery.review_leads WHERE run_id = (SELECT run_id FROM refinery.latest_run) ORDER BY match_probability DESC; refinery export --verdict review writes it.';
COMMENT ON COLUMN refinery.review_leads.run_id IS 'The run.';
COMMENT ON COLUMN refinery.review_leads.lead_id IS 'The lead held for review.';
COMMENT ON COLUMN refinery.review_leads.source IS 'The lead''s source.';
COMMENT ON COLUMN refinery.review_leads.name_norm IS 'The lead''s normalised name.';
COMMENT ON COLUMN refinery.review_leads.phone_norm IS 'The lead''s normalised phone.';
COMMENT ON COLUMN refinery.review_leads.email_norm IS 'The lead''s normalised e-mail.';
COMMENT ON COLUMN refinery.review_leads.optout_lead_id IS 'The opt-out lead it may be (from the reason).';
COMMENT ON COLUMN refinery.review_leads.optout_name_norm IS 'The opt-out lead''s normalised name.';
COMMENT ON COLUMN refinery.review_leads.optout_phone_norm IS 'The opt-out lead''s normalised phone.';
COMMENT ON COLUMN refinery.review_leads.optout_email_norm IS 'The opt-out lead''s normalised e-mail.';
COMMENT ON COLUMN refinery.review_leads.optout_rule_id IS 'The rule that black-listed the opt-out lead (e.g. blacklist.optout_notes).';
COMMENT ON COLUMN refinery.review_leads.optout_reason IS 'Why the opt-out lead was black-listed.';
COMMENT ON COLUMN refinery.review_leads.match_probability IS 'The model''s probability that the two are one person (below [dedupe] min_probability, or the lead would have merged).';
COMMENT ON COLUMN refinery.review_leads.reason IS 'The lead''s reason: the opt-out lead and the evidence linking them (agreeing and disagreeing fields).';
COMMENT ON COLUMN refinery.review_leads.job IS 'The run''s job.';

COMMENT ON COLUMN refinery.runs.counts IS 'Leads per verdict, as a JSON object with every verdict as a key, e.g. {"kept": 5, "blacklisted": 3, "duplicate": 1, "partial": 1, "outlier": 1, "nurture": 1, "customer": 0, "review": 1}; the values add up to rows_pulled.';
