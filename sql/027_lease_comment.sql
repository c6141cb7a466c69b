/*
 * 027_lease_comment.sql
 *    refinery.jobs' comment tells the lease as runs now take it.
 *
 * A run records itself as the holder in a short transaction that locks the
 * job's row NOWAIT; its own transaction then locks the row FOR NO KEY
 * UPDATE, waiting (lock_timeout) for the moment another run that checks
 * the row holds it, so that of two runs of a job that start together one
 * goes ahead.  The comment 023 gave said the run's transaction locked the
 * row NOWAIT.
 */
COMMENT ON TABLE refinery.jobs IS
'One row per job ([job] name in the rules). The row is also the job''s run lease: a run records itself in holder_pid, holder_host and holder_started_at in a short transaction that locks the row FOR NO KEY UPDATE NOWAIT, then locks it FOR NO KEY UPDATE in its own transaction from start to commit, so a second run of the same job is refused at once while runs of other jobs go ahead, and dialers still record the job''s outcomes (a foreign key check takes only KEY SHARE). The lock has no expiry: it ends with the run''s transaction, or when the server notices the client is gone (the engine sets TCP keepalives).';
