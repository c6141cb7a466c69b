/*
 * 015_tenants.sql
 *    Tenants: one job's runs split by client company ([source]
 *    tenant_column, "refinery run --tenant ID"), and the per-tenant status
 *    of runs driven over many tenants (--tenants, a Slurm array).
 *
 * Leads never de-duplicate across tenants, so a tenant's run is a run of a
 * job of its own, named "<job>@<tenant>": its lease row in refinery.jobs,
 * its runs, its partition of lead_state, its retention, latest_run and every
 * view work exactly as for any job, and a single-tenant job (a name without
 * "@") is untouched.  This is the least disruptive keying by (job, tenant):
 * nothing that exists changes its key, and jobs.tenant and runs.tenant
 * (generated from the name) give the tenant apart, NULL for a single-tenant
 * job.  refinery.tenant_runs records one row per tenant per attempt, on the
 * database the command was given with -d (the catalogue), whatever server
 * the tenant's data is on.
 */

/* ------------------------------------------------------------------------
 * job names: "<job>@<tenant>"
 * ------------------------------------------------------------------------ */
ALTER TABLE refinery.jobs DROP CONSTRAINT jobs_name_check;
ALTER TABLE refinery.jobs ADD CONSTRAINT jobs_name_check
	CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}(@[A-Za-z0-9][A-Za-z0-9._-]{0,62})?$');
ALTER TABLE refinery.jobs
	ADD COLUMN tenant text GENERATED ALWAYS AS (nullif(split_part(name, '@', 2), '')) STORED;
ALTER TABLE refinery.runs
	ADD COLUMN tenant text GENERATED ALWAYS AS (nullif(split_part(job, '@', 2), '')) STORED;

COMMENT ON CONSTRAINT jobs_name_check ON refinery.jobs IS
'A job name (letters, digits, ".", "_" and "-", at most 63 characters, starting with a letter or digit), or a tenant''s job "<job>@<tenant>" whose two parts are such names.';
COMMENT ON COLUMN refinery.jobs.tenant IS 'The tenant of a tenant''s job "<job>@<tenant>" (run --tenant); NULL for a single-tenant job.';
COMMENT ON COLUMN refinery.runs.tenant IS 'The tenant the run refined (the part of job after "@"); NULL for a single-tenant job.';

/* ------------------------------------------------------------------------
 * tenant_runs: the per-tenant status
 * ------------------------------------------------------------------------ */
CREATE TABLE refinery.tenant_runs
(
	attempt		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	job			text NOT NULL,
	tenant		text NOT NULL,
	node		text,
	run_id		bigint,
	status		text NOT NULL DEFAULT 'running'
		CONSTRAINT tenant_runs_status_check
		CHECK (status IN ('running', 'committed', 'dry_run', 'locked', 'failed')),
	exit_code	integer,
	message		text,
	started_at	timestamptz NOT NULL DEFAULT now(),
	finished_at timestamptz,
	host		text,
	pid			integer
);

COMMENT ON TABLE refinery.tenant_runs IS
'One row per attempt to run one tenant of a job (refinery run --tenant or --tenants, one Slurm task per tenant), written on the database given with -d whichever server holds the tenant''s data: inserted as running before the tenant''s run starts, completed when it ends. A row left running belongs to a process that died (its tenant is unchanged: the run''s transaction never committed). Typical use: SELECT * FROM refinery.tenant_status WHERE job = ''nightly'' ORDER BY tenant.';
COMMENT ON COLUMN refinery.tenant_runs.attempt IS 'Numbers the attempts in the order they started.';
COMMENT ON COLUMN refinery.tenant_runs.job IS 'The job of the rules ([job] name), without the tenant.';
COMMENT ON COLUMN refinery.tenant_runs.tenant IS 'The tenant; its runs belong to job "<job>@<tenant>" on its node.';
COMMENT ON COLUMN refinery.tenant_runs.node IS 'Where the tenant''s data is: its [cluster] map entry (a service name or a conninfo without a password); NULL for the database of -d.';
COMMENT ON COLUMN refinery.tenant_runs.run_id IS 'The run the attempt committed (refinery.runs on the node, job "<job>@<tenant>"); NULL when it committed none.';
COMMENT ON COLUMN refinery.tenant_runs.status IS 'running (started, not finished: still going, or its process died), committed, dry_run, locked (another run of the tenant held its lease: exit status 6) or failed.';
COMMENT ON COLUMN refinery.tenant_runs.exit_code IS 'The exit status of the tenant''s run (0 committed; 2 usage, 3 rules, 4 connection, 5 data, 6 locked ...); NULL while running.';
COMMENT ON COLUMN refinery.tenant_runs.message IS 'The error of a failed attempt, as the engine printed it (no secrets); NULL otherwise.';
COMMENT ON COLUMN refinery.tenant_runs.started_at IS 'When the attempt started.';
COMMENT ON COLUMN refinery.tenant_runs.finished_at IS 'When it ended; NULL while running.';
COMMENT ON COLUMN refinery.tenant_runs.host IS 'Host name of the machine that ran the attempt.';
COMMENT ON COLUMN refinery.tenant_runs.pid IS 'Process id of the refinery program on that host.';

CREATE INDEX tenant_runs_job_tenant_idx ON refinery.tenant_runs (job, tenant, attempt);
COMMENT ON INDEX refinery.tenant_runs_job_tenant_idx IS 'A tenant''s attempts in order: tenant_status reads the last.';

/* ------------------------------------------------------------------------
 * tenant_status: the cross-tenant report
 * ------------------------------------------------------------------------ */
CREATE VIEW refinery.tenant_status AS
SELECT DISTINCT ON (t.job, t.tenant)
	   t.job,
	   t.tenant,
	   t.status,
	   t.exit_code,
	   t.run_id,
	   t.node,
	   t.message,
	   t.started_at,
	   t.finished_at,
	   extract(epoch FROM t.finished_at - t.started_at)::double precision AS seconds,
	   (SELECT max(c.run_id) FROM refinery.tenant_runs c
		WHERE c.job = t.job AND c.tenant = t.tenant AND c.status = 'committed') AS last_committed_run,
	   (SELECT count(*) FROM refinery.tenant_runs a
		WHERE a.job = t.job AND a.tenant = t.tenant) AS attempts
FROM refinery.tenant_runs t
WHERE t.status <> 'locked'
   OR NOT EXISTS (SELECT 1 FROM refinery.tenant_runs o
				  WHERE o.job = t.job AND o.tenant = t.tenant AND o.status <> 'locked')
ORDER BY t.job, t.tenant, t.attempt DESC;

COMMENT ON VIEW refinery.tenant_status IS
'One row per job and tenant: its newest attempt that was not refused for a held lease (a tenant submitted twice runs once; the refused copy says nothing about the tenant), else its newest attempt. What the cross-tenant report reads. Typical use: SELECT tenant, status, exit_code, seconds FROM refinery.tenant_status WHERE job = ''nightly'' ORDER BY tenant.';
COMMENT ON COLUMN refinery.tenant_status.job IS 'The job of the rules, without the tenant.';
COMMENT ON COLUMN refinery.tenant_status.tenant IS 'The tenant.';
COMMENT ON COLUMN refinery.tenant_status.status IS 'That attempt''s status (tenant_runs.status).';
COMMENT ON COLUMN refinery.tenant_status.exit_code IS 'That attempt''s exit status; NULL while running.';
COMMENT ON COLUMN refinery.tenant_status.run_id IS 'The run it committed, on the tenant''s node.';
COMMENT ON COLUMN refinery.tenant_status.node IS 'Where the tenant''s data is (NULL: the database of -d).';
COMMENT ON COLUMN refinery.tenant_status.message IS 'Its error, when it failed.';
COMMENT ON COLUMN refinery.tenant_status.started_at IS 'When it started.';
COMMENT ON COLUMN refinery.tenant_status.finished_at IS 'When it ended.';
COMMENT ON COLUMN refinery.tenant_status.seconds IS 'How long it took (NULL while running).';
COMMENT ON COLUMN refinery.tenant_status.last_committed_run IS 'The tenant''s newest committed run of any attempt (its results as they stand).';
COMMENT ON COLUMN refinery.tenant_status.attempts IS 'How many attempts the tenant has had, refused ones included.';
