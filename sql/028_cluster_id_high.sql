/*
 * 028_cluster_id_high.sql
 *    A job remembers the highest cluster id its runs gave.
 *
 * A run gives a new cluster an id above every id of the job's state, so
 * that an id some rows held and no row holds any more (a person erased by
 * refinery forget, the larger id of a merge) goes to no other cluster.  But
 * when the rows holding the state's highest id went, that id could be given
 * again.  jobs.cluster_id_high keeps the highest id given; a run's new
 * clusters are numbered above it, and the run raises it (revert_run()
 * leaves it: an id once given stays given).
 */
ALTER TABLE refinery.jobs ADD COLUMN cluster_id_high bigint;

COMMENT ON COLUMN refinery.jobs.cluster_id_high IS
'The highest cluster id the job''s runs have given (NULL before any): a run numbers new clusters above it, so an id no row holds any more (a person erased by refinery forget, the larger id of a merge) is never given to another cluster. Each run raises it; revert_run() leaves it.';

UPDATE refinery.jobs j
   SET cluster_id_high = (SELECT max(s.cluster_id) FROM refinery.lead_state s WHERE s.job = j.name);
