/*
 * 016_dedupe_model.sql
 *    A job keeps the model its dedupe learnt, so that a nightly run compares
 *    only the pairs a change can affect (engine/dedupe_incr.c).
 *
 * m, the conditional u of fields with `given` and the prior are learnt by
 * EM over every compared pair, which a nightly run no longer compares; u is
 * measured on random pairs of the whole batch, which a nightly run skips.
 * The text is tied to the rules' sha256 and to the number of participants:
 * a model of other rules is not used, and a run with other rules, one whose
 * participants moved more than 5% from the model's, or run --full learns it
 * again.
 */
ALTER TABLE refinery.jobs ADD COLUMN dedupe_model text;
COMMENT ON COLUMN refinery.jobs.dedupe_model IS 'The dedupe model the job''s last run used (the rules'' sha256, the prior, the participants it was learnt on, then per field and level m, u and u among namesakes as hexadecimal floats), which a nightly run of the same rules uses instead of learning it from the few pairs it compares. NULL until a run learnt one.';
