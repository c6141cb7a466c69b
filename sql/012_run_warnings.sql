/*
 * 012_run_warnings.sql
 *    The warnings of a run, kept with it: what its own rule files name that
 *    no lead of the source showed (engine/vocab.c), for `refinery report`.
 */
ALTER TABLE refinery.runs ADD COLUMN warnings text[];

COMMENT ON COLUMN refinery.runs.warnings IS 'The run''s warnings, each "file:line: [section] key: ..." (a [status_map] status no lead has, a category of a map parameter no lead''s value falls in, a black-list rule that hit no lead; only keys of the run''s own rule files, not the shipped defaults); empty when none; NULL for runs made before this column existed. They do not change the exit status; refinery report shows them.';
