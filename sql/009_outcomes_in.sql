/*
 * 009_outcomes_in.sql
 *    Outcomes read from a CRM's query or CSV file ([outcomes] query / csv)
 *    carry more than the pull queue's: how long the call took, what the
 *    sale was worth, where the person is, and when to call back.
 *
 * Each run of a job reads its [outcomes] source at the start and adds what
 * is new to refinery.outcomes (one row per job, lead, rep, outcome and
 * second, so reading the same file again adds nothing); the columns below
 * are NULL when the source does not give them, and for outcomes recorded
 * with refinery.record_outcome().
 */
ALTER TABLE refinery.outcomes
	ADD COLUMN duration_s integer CONSTRAINT outcomes_duration_check CHECK (duration_s >= 0),
	ADD COLUMN amount numeric,
	ADD COLUMN region text,
	ADD COLUMN callback_at timestamptz;

COMMENT ON COLUMN refinery.outcomes.duration_s IS 'Length of the call in seconds, when the source gives it ([outcomes] query or csv, column duration).';
COMMENT ON COLUMN refinery.outcomes.amount IS 'What a won sale was worth, in the source''s currency, when the source gives it (column amount).';
COMMENT ON COLUMN refinery.outcomes.region IS 'Where the person was reached (area code or city), when the source gives it (column region).';
COMMENT ON COLUMN refinery.outcomes.callback_at IS 'For a callback: when the person asked to be called (column callback_at); NULL = the rule [outcomes] callback_hours after the outcome.';
