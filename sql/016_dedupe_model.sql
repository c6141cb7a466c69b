/*
 * 016_dedupe_model.sql
 *    A job keeps the model its dedupe learnt, so that a nightly run compares
 *    only the pairs a change can affect (engine/dedupe_incr.c).
 *
 * u, the chance agreement, is measured again by every run on its whole
 * batch; m, the conditional u of fields with `given` and the prior are
 * learnt by EM over every compared pair, which a nightly run no longer
 * compares.  The text is tied to the rules' sha256: a model of other rules
 * is not used, and a run with other rules (or run --full) learns it again.
 */
ALTER TABLE refinery.jobs ADD COLUMN dedupe_model text;
COMMENT ON COLUMN refinery.jobs.dedupe_model IS 'The dedupe model the job''s last run used (m per field and level, u among namesakes, the prior; hexadecimal floats after the rules'' sha256), which a nightly run of the same rules uses instead of learning it from the few pairs it compares. NULL until a run learnt one.';
