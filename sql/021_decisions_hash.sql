/*
 * 021_decisions_hash.sql
 *    The comments of the columns whose meaning changed when a job's state
 *    began to outlive rules that differ only in keys that decide nothing.
 *
 * A run compares its rules with the job's last committed run's.  Until
 * this version any difference in the merged rules (rules_sha256) made the
 * run rewrite every lead's state row and learn its dedupe model again, so
 * a longer keep_runs, another lock timeout or a new default of such a key
 * in an upgrade cost a nightly job one full write.  Now the rules count as
 * changed only when they differ in a key that decides: every key but
 * [source] lock_timeout_ms and pull_streams, [job] min_rows and
 * max_change_percent, and [output] keep_runs, lock_timeout_ms, analyze and
 * file_mode.  The engine takes that hash from the stored rules_text, so
 * no column is added; runs.rules_sha256 still names the exact rules.
 */
COMMENT ON COLUMN refinery.runs.full_write IS 'Whether the run rewrote every lead''s state row: a job''s first run, "run --full", or rules that decide otherwise than the previous run''s (a key other than [source] lock_timeout_ms and pull_streams, [job] min_rows and max_change_percent, [output] keep_runs, lock_timeout_ms, analyze and file_mode differs). NULL for runs made before the state existed and for CSV targets.';

COMMENT ON COLUMN refinery.jobs.dedupe_model IS 'The dedupe model the job''s last run used (the SHA-256 of the rules'' keys that decide, the prior, the participants it was learnt on, then per field and level m, u and u among namesakes as hexadecimal floats), which a nightly run of rules that decide alike uses instead of learning it from the few pairs it compares. NULL until a run learnt one.';
