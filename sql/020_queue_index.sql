/*
 * 020_queue_index.sql
 *    The pull queue's index of unheld leads without the job column.
 *
 * lead_state is partitioned by job, so in each partition the job column of
 * 009's lead_state_unheld_idx holds one value: it told no two entries
 * apart, yet every comparison of the index's build began with it (a text
 * compared in the database's collation, where the p_close that follows
 * sorts by a cheap abbreviated key).  The index is built whole by a job's
 * first run (attaching its partition) and by every full write (the new
 * table's indexes).  Over the state of one million generated leads, 650,000
 * of them unheld, building it took 1.7-2.0 s with the job column and
 * 0.9-1.0 s without, on a 2-core machine, and the index is 31 MB instead of
 * 37 MB.  next_lead() names the job, which picks the job's partition, and
 * reads this index in the same order as before.
 */
DROP INDEX refinery.lead_state_unheld_idx;

CREATE INDEX lead_state_unheld_idx ON refinery.lead_state
	(p_close DESC NULLS LAST, sla_due_at NULLS LAST, call_order NULLS LAST, lead_id)
	WHERE rep_id IS NULL AND state = 'current' AND verdict = 'kept';

COMMENT ON INDEX refinery.lead_state_unheld_idx IS 'The kept leads nobody holds, in the pull queue''s order (each partition holds one job): next_lead() reads the best one no other session has locked.';
