/*
 * 011_incremental.sql
 *    What a run reads of its job's state before the stages, found by index.
 *
 * A run reads its job's state in two parts: before the stages the rows that
 * frame them (leads a rep holds, leads a rep has taken through the pull
 * queue, leads with outcomes), while the stages compute every other row.
 * Held leads are found through lead_state_job_rep_idx (006); this index
 * finds the taken ones, so the first part reads a few thousand rows instead
 * of scanning the job's whole partition.
 */
CREATE INDEX lead_state_job_taken_idx ON refinery.lead_state (job, taken_at)
	WHERE taken_at IS NOT NULL;
COMMENT ON INDEX refinery.lead_state_job_taken_idx IS 'Leads taken through the pull queue (next_lead): the takes a run reads before its stages.';
