/*
 * state.c
 *    A job's lasting state: read before the stages, reconciled with what
 *    the run decided, written back with the run (see state.h for the
 *    contract and sql/006_state.sql for the tables).
 *
 * The state is read with two COPYs: for each lead only what the run
 * compares (verdict, rule, cluster, survivor, temperature, cohort, rep,
 * the times of the hold and of the due date, the fingerprint), about a
 * hundred bytes a lead.  Only the match stage and the outcomes need the
 * state before the run's end, and only for the leads a rep holds or has
 * taken or that have outcomes; so those rows are read first (by index, a
 * few thousand), and the rest of the job's rows stream in on the run's
 * otherwise idle connection, in a thread of their own, while the stages
 * compute.  Both COPYs run in the run's transaction, which holds the job's
 * lease, so no other run writes the state in between; the pull queue may,
 * and a row that gained a hold or a take between the two reads is left as
 * the queue made it (its version is not the one read).  Leads are found by
 * id in an open-addressing table.  What changed is written through a temporary table: the change
 * log is filled from it joined with the rows it replaces (so the old
 * values come from the server, not from what was read), then the rows are
 * upserted.  Every step runs in input order, so the same input and state
 * give the same ids and rows whatever the thread count.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "log.h"
#include "outcomes.h"
#include "pg.h"
#include "phone.h"
#include "pull.h"
#include "rules.h"
#include "state.h"
#include "state_int.h"
#include "strbuf.h"
#include "util.h"
#include "writeback.h"

uint64_t
state_fingerprint(const struct batch *b, size_t i)
{
	uint64_t h = UTIL_HASH64_BASIS;

	for (int c = 0; c < b->ncols; c++)
	{
		const char *v = batch_value(b, c, i);
		static const unsigned char null_mark = 0xFF, sep = 0;

		/* 0xFF never occurs in UTF-8, so NULL differs from every text; 0 ends each value */
		if (v == NULL)
			h = util_hash64_from(h, &null_mark, 1);
		else
			h = util_hash64_from(h, v, strlen(v));
		h = util_hash64_from(h, &sep, 1);
	}
	return h;
}

/* ------------------------------------------------------------ the table */

static size_t
find_slot(const struct job_state *st, const char *id)
{
	size_t mask = st->nslots - 1, k = util_hash64(id) & mask;

	while (st->slot[k] != 0 && strcmp(st->old[st->slot[k] - 1].lead_id, id) != 0)
		k = (k + 1) & mask;
	return k;
}

static bool
index_old(struct job_state *st, struct error *err)
{
	size_t n = 16;

	while (n < st->nold * 2)
		n <<= 1;
	st->nslots = n;
	if ((st->slot = calloc(n, sizeof(*st->slot))) == NULL)
		return error_oom(err);
	for (size_t k = 0; k < st->nold; k++)
	{
		size_t s = find_slot(st, st->old[k].lead_id);

		if (st->slot[s] != 0)
			return error_set(err, EXIT_INTERNAL, "lead \"%s\" twice in the state of job \"%s\"",
			                 st->old[k].lead_id, st->job);
		st->slot[s] = (uint32_t) k + 1;
	}
	return true;
}

/* ------------------------------------------------------------- reading */

static int64_t
parse_int_or(const char *s, int64_t none)
{
	return s ? strtoll(s, NULL, 10) : none;
}

static uint8_t
verdict_of(const char *s)
{
	for (int v = 0; v < VERDICT__COUNT; v++)
		if (s && strcmp(s, verdict_name(v)) == 0)
			return (uint8_t) v;
	return VERDICT__COUNT;
}

static uint8_t
temperature_of(const char *s)
{
	for (int t = TEMP_COLD; t <= TEMP_HOT; t++)
		if (s && strcmp(s, temperature_name(t)) == 0)
			return (uint8_t) t;
	return TEMP_NONE;
}

static const char *
keep(struct job_state *st, const char *s, bool *ok)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = arena_strdup(st->arena, s)) == NULL)
		*ok = false;
	return d;
}

/*
 * A rule id or a cohort: the rows share one copy of each of the first
 * SHARED_MAX values (a state of a million rows holds a few dozen); a value
 * past those gets a copy of its own in each row.
 */
#define SHARED_MAX   1024
#define SHARED_SLOTS (4 * SHARED_MAX) /* a power of two, at most a quarter full */

static const char *
keep_shared(struct job_state *st, const char *s, bool *ok)
{
	size_t h;

	if (s == NULL)
		return NULL;
	if (st->shared == NULL && (st->shared = calloc(SHARED_SLOTS, sizeof(*st->shared))) == NULL)
	{
		*ok = false;
		return NULL;
	}
	for (h = util_hash64(s) & (SHARED_SLOTS - 1); st->shared[h]; h = (h + 1) & (SHARED_SLOTS - 1))
		if (strcmp(st->shared[h], s) == 0)
			return st->shared[h];
	if (st->nshared == SHARED_MAX)
		return keep(st, s, ok);
	st->nshared++;
	return st->shared[h] = keep(st, s, ok);
}

/* o's hold and take, when it has one: into the state's work */
static bool
keep_work(struct job_state *st, struct old_lead *o, const struct old_work *w)
{
	if (w->rep_id < 0 && w->assigned_at == BATCH_NO_TIME && w->taken_by < 0 &&
	    w->taken_at == NULL && w->taken_by_col < 0)
	{
		o->work = NO_INDEX;
		return true;
	}
	if (st->nwork == st->capwork)
	{
		size_t cap = st->capwork ? st->capwork * 2 : 256;
		struct old_work *p = realloc(st->work, cap * sizeof(*p));

		if (p == NULL)
			return false;
		st->work = p;
		st->capwork = cap;
	}
	o->work = (uint32_t) st->nwork;
	st->work[st->nwork++] = *w;
	return true;
}

bool
state_add_old(struct job_state *st, char **f, struct error *err)
{
	struct old_lead *o;
	struct old_work w;
	bool ok = true;

	if (st->nold == st->capold)
	{
		size_t cap = st->capold ? st->capold * 2 : 1024;
		struct old_lead *p = realloc(st->old, cap * sizeof(*p));

		if (p == NULL)
			return error_oom(err);
		st->old = p;
		st->capold = cap;
	}
	if (st->nold >= NO_INDEX - 1)
		return error_set(err, EXIT_DATA, "the state of job \"%s\" holds too many leads", st->job);
	o = &st->old[st->nold];
	memset(o, 0, sizeof(*o));
	o->lead_id = keep(st, f[0], &ok);
	o->vanished = f[1] && f[1][0] == 't';
	o->has_fingerprint = f[2] != NULL;
	o->fingerprint = (uint64_t) parse_int_or(f[2], 0);
	o->verdict = verdict_of(f[3]);
	o->rule_id = keep_shared(st, f[4], &ok);
	o->cluster_id = parse_int_or(f[5], -1);
	o->survivor_id = keep(st, f[6], &ok);
	o->temperature = temperature_of(f[7]);
	o->cohort = keep_shared(st, f[8], &ok);
	w.rep_id = parse_int_or(f[9], -1);
	w.assigned_at = parse_int_or(f[10], BATCH_NO_TIME);
	o->sla_due_at = parse_int_or(f[11], BATCH_NO_TIME);
	o->version = parse_int_or(f[12], 1);
	w.taken_by = f[13] && f[13][0] == 't' ? parse_int_or(f[14], -1) : -1;
	w.taken_by_col = parse_int_or(f[14], -1);
	o->first_run = parse_int_or(f[15], 0);
	w.taken_at = keep(st, f[16], &ok);
	o->stale = f[17] && f[17][0] == 't';
	if (!ok || o->lead_id == NULL || !keep_work(st, o, &w))
		return error_oom(err);
	st->nold++;
	return true;
}

/*
 * The columns of state_add_old(), as one COPY's select list, for the job as
 * an SQL literal.  A time is cast to timestamp, which reads it in the
 * session's TimeZone with the zone's own rules, as the run writes it;
 * AT TIME ZONE with the zone's name as text would take a name that is also
 * an abbreviation (CET, EET, EST) as a fixed offset, an hour off in summer.
 * The last column says whether the row was last written before the job's
 * last full write, which then left it as the queue had changed it.
 */
static void
old_select(struct strbuf *sb, const char *table, const char *job)
{
	sb_printf(sb,
	          "SELECT lead_id, state = 'vanished', fingerprint, verdict, rule_id, cluster_id, "
	          "survivor_id, temperature, cohort, rep_id, "
	          "extract(epoch FROM assigned_at::timestamp)::bigint, "
	          "extract(epoch FROM sla_due_at::timestamp)::bigint, "
	          "version, taken_at > now() - make_interval(hours => (SELECT j.take_hours "
	          "FROM refinery.jobs j WHERE j.name = %s)), taken_by, first_run, taken_at, "
	          "changed_run < coalesce((SELECT max(x.run_id) FROM refinery.runs x "
	          "WHERE x.job = %s AND x.status = 'committed' AND x.full_write), 0) "
	          "FROM %s WHERE job = %s",
	          job, job, table, job);
}

/*
 * Send the COPY of the job's state rows; `framing`: only the rows that frame
 * the stages (a hold, a take, an outcome), else every row.  Times come as
 * naive local seconds of the session's TimeZone, as the run reads and
 * writes them.  The job's take_hours is a subquery on a constant, so the
 * server computes it once, not once a row.
 */
static bool
send_copy(PGconn *conn, const struct job_state *st, bool framing, const char *phase,
          struct error *err)
{
	char *lit = PQescapeLiteral(conn, st->job, strlen(st->job));
	struct strbuf sql;
	bool ok;

	if (lit == NULL)
		return pg_fail(conn, NULL, phase, err);
	sb_init(&sql);
	sb_puts(&sql, "COPY (");
	old_select(&sql, st->table, lit);
	if (framing)
	{
		/*
		 * Held (index lead_state_job_rep_idx), taken and standing (now() is
		 * the transaction's start: the second part judges a take alike;
		 * lead_state_job_taken_idx), or with outcomes (the primary key).
		 */
		sb_puts(&sql, " AND rep_id IS NOT NULL UNION ");
		old_select(&sql, st->table, lit);
		sb_printf(&sql,
		          " AND taken_at > now() - make_interval(hours => (SELECT j.take_hours "
		          "FROM refinery.jobs j WHERE j.name = %s)) UNION ",
		          lit);
		old_select(&sql, st->table, lit);
		sb_printf(&sql,
		          " AND lead_id IN (SELECT o.lead_id FROM refinery.outcomes o WHERE o.job = %s)",
		          lit);
	}
	sb_puts(&sql, ") TO STDOUT");
	PQfreemem(lit);
	if (sql.oom)
	{
		sb_free(&sql);
		return error_oom(err);
	}
	ok = PQsendQuery(conn, sql.data) == 1;
	sb_free(&sql);
	return ok || pg_fail(conn, NULL, phase, err);
}

/* Take the rows of the COPY sent on conn, each through add; read to the end on failure. */
static bool
copy_rows(PGconn *conn, struct job_state *st,
          bool (*add)(struct job_state *, char **, struct error *), const char *phase,
          struct error *err)
{
	PGresult *res = PQgetResult(conn);
	char *row;
	int rc;
	size_t nrow = 0;

	if (PQresultStatus(res) != PGRES_COPY_OUT)
	{
		pg_fail(conn, res, phase, err);
		PQclear(res);
		while ((res = PQgetResult(conn)) != NULL)
			PQclear(res);
		return false;
	}
	PQclear(res);
	while ((rc = PQgetCopyData(conn, &row, 0)) > 0)
	{
		char *f[OLD_COLUMNS];
		size_t len[OLD_COLUMNS];
		int nf = pull_split_copy_text(row, (size_t) rc, f, len, OLD_COLUMNS);
		bool added;

		nrow++;
		/* fields are decoded in place and not terminated; each ends before its tab */
		for (int k = 0; k < nf && k < OLD_COLUMNS; k++)
			if (f[k])
				f[k][len[k]] = '\0';
		added = nf == OLD_COLUMNS && add(st, f, err);

		PQfreemem(row);
		if (nf != OLD_COLUMNS)
			error_set(err, EXIT_INTERNAL, "state row %zu has %d fields, expected %d", nrow, nf,
			          OLD_COLUMNS);
		if (!added)
		{
			/* read to the end, so the connection can roll back */
			while (PQgetCopyData(conn, &row, 0) > 0)
				PQfreemem(row);
			while ((res = PQgetResult(conn)) != NULL)
				PQclear(res);
			return false;
		}
	}
	if (rc == -2)
		return pg_fail(conn, NULL, phase, err);
	return pg_copy_result(conn, phase, err);
}

/*
 * The job's partition of refinery.lead_state, qualified and quoted, into
 * out ("" when the job has none), found from the catalogue by its bound.
 * The run's statements name the partition, not the parent: a statement on
 * the parent locks it until the transaction ends, and another job's full
 * write, whose swap detaches a partition, would wait for that and copy its
 * state instead.
 */
bool
state_partition(PGconn *conn, const char *job, char *out, size_t size, struct error *err)
{
	const char *params[1] = {job};
	PGresult *res = pg_query(conn, "reading the job's state",
	                         "SELECT format('refinery.%I', c.relname) FROM pg_inherits i "
	                         "JOIN pg_class c ON c.oid = i.inhrelid "
	                         "WHERE i.inhparent = 'refinery.lead_state'::regclass "
	                         "AND pg_get_expr(c.relpartbound, c.oid) = "
	                         "format('FOR VALUES IN (%L)', $1::text)",
	                         1, params, err);

	if (res == NULL)
		return false;
	out[0] = '\0';
	if (PQntuples(res) == 1 && strlen(PQgetvalue(res, 0, 0)) < size)
		snprintf(out, size, "%s", PQgetvalue(res, 0, 0));
	else if (PQntuples(res) == 1)
	{
		PQclear(res);
		return error_set(err, EXIT_INTERNAL, "the name of job \"%s\"'s partition is too long", job);
	}
	PQclear(res);
	return true;
}

/* whether table holds a row */
static bool
has_rows(PGconn *conn, const char *table, bool *any, struct error *err)
{
	char sql[256];
	PGresult *res;

	snprintf(sql, sizeof(sql), "SELECT EXISTS (SELECT 1 FROM %s)", table);
	if ((res = pg_query(conn, "reading the job's state", sql, 0, NULL, err)) == NULL)
		return false;
	*any = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
	PQclear(res);
	return true;
}

/*
 * The job's last committed run, whether it decided by other rules, and
 * whether the job has state.  Rules that differ only in keys that decide
 * nothing (rules_decisions_sha256_hex) count as the same: the state and the
 * dedupe model stay.  A full write reverted since then (revert_run() puts
 * back only the rows it logged) makes this run a full write too, so that
 * no lead keeps the score, points or call order of the run undone.
 */
static bool
read_last_run(PGconn *conn, struct job_state *st, const char *sha, const char *decisions,
              struct error *err)
{
	const char *params[1] = {st->job};
	PGresult *res;

	if (!state_partition(conn, st->job, st->table, sizeof(st->table), err))
		return false;
	res = pg_query(
	    conn, "reading the job's last run",
	    "SELECT r.run_id, r.rules_sha256, NULL, (SELECT j.dedupe_model "
	    "FROM refinery.jobs j WHERE j.name = $1), r.rules_text, "
	    "(SELECT max(x.run_id) FROM refinery.runs x WHERE x.job = $1 "
	    "AND x.status = 'reverted' AND x.full_write AND x.run_id > coalesce(r.run_id, 0)), "
	    "(SELECT j.cluster_id_high FROM refinery.jobs j WHERE j.name = $1) "
	    "FROM (SELECT 1) one LEFT JOIN (SELECT run_id, rules_sha256, rules_text "
	    "FROM refinery.runs WHERE job = $1 AND status = 'committed' "
	    "ORDER BY run_id DESC LIMIT 1) r ON true",
	    1, params, err);

	if (res == NULL)
		return false;
	st->last_run = -1;
	if (!PQgetisnull(res, 0, 0))
	{
		char old[65];

		st->last_run = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		st->c.rules_changed =
		    strcmp(PQgetvalue(res, 0, 1), sha) != 0 &&
		    (PQgetisnull(res, 0, 4) || !rules_decisions_sha256_hex(PQgetvalue(res, 0, 4), old) ||
		     strcmp(old, decisions) != 0);
	}
	st->c.reverted_full = PQgetisnull(res, 0, 5) ? -1 : strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	st->cluster_high = PQgetisnull(res, 0, 6) ? -1 : strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	if (st->table[0] && !has_rows(conn, st->table, &st->rows_elsewhere, err))
	{
		PQclear(res);
		return false;
	}
	if (st->c.reverted_full >= 0 && st->rows_elsewhere)
		log_info("run %" PRId64 " of job \"%s\", a full write, was reverted: this run rewrites "
		         "every lead",
		         st->c.reverted_full, st->job);
	/*
	 * The job's dedupe model, when it was learnt by rules that decide alike
	 * (state_dedupe.c); a model stored before the decisions' hash is keyed
	 * by the whole rules' hash.
	 */
	if (!PQgetisnull(res, 0, 3) &&
	    !dedupe_model_parse(PQgetvalue(res, 0, 3), decisions, &st->dd.model))
		(void) dedupe_model_parse(PQgetvalue(res, 0, 3), sha, &st->dd.model);
	PQclear(res);
	return true;
}

struct job_state *
state_new(const char *job, struct error *err)
{
	struct job_state *st = calloc(1, sizeof(*st));

	if (st == NULL || (st->job = strdup(job)) == NULL || (st->arena = arena_new(0)) == NULL)
	{
		state_free(st);
		error_oom(err);
		return NULL;
	}
	st->last_run = -1;
	st->cluster_high = -1;
	st->cluster_top = -1;
	st->c.reverted_full = -1;
	error_clear(&st->rest_err);
	return st;
}

/*
 * Find each lead of b among the state's rows: of_row, row_of and seen.  The
 * lookups run on the run's threads; the second loop, in row order, keeps
 * row_of as one thread would leave it.
 */
static void
map_rows(struct job_state *st, const struct batch *b)
{
	for (size_t k = 0; k < st->nold; k++)
		st->row_of[k] = NO_INDEX;
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < b->n; i++)
	{
		size_t s = st->nold == 0 ? 0 : find_slot(st, batch_lead_id(b, i));

		st->of_row[i] = st->nold == 0 || st->slot[s] == 0 ? NO_INDEX : st->slot[s] - 1;
	}
	for (size_t i = 0; i < b->n; i++)
		if (st->of_row[i] != NO_INDEX)
		{
			st->row_of[st->of_row[i]] = (uint32_t) i;
			st->old[st->of_row[i]].seen = true;
		}
}

bool
state_match_batch(struct job_state *st, struct batch *b, struct error *err)
{
	st->nrows = b->n;
	st->of_row = malloc(sizeof(*st->of_row) * (b->n ? b->n : 1));
	st->kind = calloc(b->n ? b->n : 1, sizeof(*st->kind));
	st->fp = malloc(sizeof(*st->fp) * (b->n ? b->n : 1));
	st->row_of = malloc(sizeof(*st->row_of) * (st->nold ? st->nold : 1));
	if (!st->of_row || !st->kind || !st->fp || !st->row_of || !index_old(st, err))
		return st->slot ? false : error_oom(err);
	st->npre = st->nold;
	st->c.had_state = st->nold > 0 || st->rows_elsewhere;
	b->has_state = st->c.had_state;
	map_rows(st, b);
#pragma omp parallel for schedule(static)
	for (size_t i = 0; i < b->n; i++)
		st->fp[i] = state_fingerprint(b, i);
	for (size_t i = 0; i < b->n; i++)
	{
		const struct old_lead *o;
		const struct old_work *w;

		if (st->of_row[i] == NO_INDEX)
			continue;
		o = &st->old[st->of_row[i]];
		w = old_work_of(st, o);
		if (!o->vanished && w->rep_id >= 0)
		{
			b->held_rep[i] = w->rep_id;
			b->held_since[i] = w->assigned_at;
		}
		/* a rep working the lead through the pull queue keeps it (match.c) */
		if (!o->vanished && w->taken_by >= 0)
		{
			b->held_rep[i] = w->taken_by;
			b->pinned[i] = 1;
		}
	}
	return true;
}

bool
state_add_rest(struct job_state *st, char **f, struct error *err)
{
	struct old_lead *o;

	if (st->npre > 0 && st->slot[find_slot(st, f[0])] != 0)
		return true; /* the first part has it: its row framed the run */
	if (!state_add_old(st, f, err))
		return false;
	st->nrest++;
	o = &st->old[st->nold - 1];
	/* a hold or a standing take the first part would have read: it came after, so leave it be */
	if (old_work_of(st, o)->rep_id >= 0 || old_work_of(st, o)->taken_by >= 0)
	{
		o->version = -1;
		st->nstale++;
	}
	return true;
}

bool
state_match_rest(struct job_state *st, const struct batch *b, struct error *err)
{
	uint32_t *row_of;

	if (st->nrows != b->n)
		return error_set(err, EXIT_INTERNAL, "the state was read for another batch");
	if ((row_of = realloc(st->row_of, sizeof(*row_of) * (st->nold ? st->nold : 1))) == NULL)
		return error_oom(err);
	st->row_of = row_of;
	free(st->slot);
	st->slot = NULL;
	if (!index_old(st, err))
		return st->slot ? false : error_oom(err);
	map_rows(st, b);
	return true;
}

bool
state_read(PGconn *conn, const char *job, const char *rules_sha256, const char *decisions_sha256,
           struct batch *b, struct job_state **out, struct error *err)
{
	const char *phase = "reading the job's state";
	struct job_state *st = *out = state_new(job, err);

	return st && read_last_run(conn, st, rules_sha256, decisions_sha256, err) &&
	       (!st->rows_elsewhere || (send_copy(conn, st, true, phase, err) &&
	                                copy_rows(conn, st, state_add_old, phase, err))) &&
	       state_match_batch(st, b, err);
}

/* The reader thread: the second part of the state, while the stages run. */
static void *
read_rest(void *arg)
{
	struct job_state *st = arg;

	FAULT("state_rest");
	st->rest_ok = copy_rows(st->conn, st, state_add_rest, "reading the job's state", &st->rest_err);
	__atomic_store_n(&st->rest_done, true, __ATOMIC_RELEASE);
	return NULL;
}

bool
state_read_start(PGconn *conn, struct job_state *st, struct error *err)
{
	if (!st->rows_elsewhere)
	{
		st->rest_ok = true; /* a job's first run: the first part found no row, nor is there one */
		return true;
	}
	if (!send_copy(conn, st, false, "reading the job's state", err))
		return false;
	st->conn = conn;
	if (pthread_create(&st->reader, NULL, read_rest, st) != 0)
	{
		/* read it here then */
		read_rest(st);
		return true;
	}
	st->reading = true;
	return true;
}

void
state_read_stop(struct job_state *st)
{
	PGcancel *cancel;
	char buf[256];

	if (st == NULL || !st->reading)
		return;
	/* a COPY still streaming is cancelled; a finished one leaves the connection idle */
	if (!__atomic_load_n(&st->rest_done, __ATOMIC_ACQUIRE) &&
	    (cancel = PQgetCancel(st->conn)) != NULL)
	{
		(void) PQcancel(cancel, buf, sizeof(buf));
		PQfreeCancel(cancel);
	}
	pthread_join(st->reader, NULL);
	st->reading = false;
}

bool
state_read_finish(struct job_state *st, const struct batch *b, struct error *err)
{
	if (st->reading)
	{
		pthread_join(st->reader, NULL);
		st->reading = false;
	}
	if (!st->rest_ok)
	{
		*err = st->rest_err;
		return false;
	}
	return state_match_rest(st, b, err);
}

size_t
state_rest_rows(const struct job_state *st, size_t *stale)
{
	*stale = st->nstale;
	return st->nrest;
}

/* ------------------------------------------------------------ reconcile */

static bool
same_text(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static const char *
survivor_id(const struct batch *b, size_t i)
{
	return b->survivor[i] != BATCH_NO_ROW ? batch_lead_id(b, b->survivor[i]) : NULL;
}

/* whether the run decided lead i as the state had it (the logged decision) */
static bool
same_decision(const struct job_state *st, const struct old_lead *o, const struct batch *b, size_t i)
{
	return o->verdict == b->verdict[i] && same_text(o->rule_id, b->rule_id[i]) &&
	       o->cluster_id == b->cluster_id[i] && same_text(o->survivor_id, survivor_id(b, i)) &&
	       o->temperature == b->temperature[i] && same_text(o->cohort, b->cohort_name[i]) &&
	       old_work_of(st, o)->rep_id == b->rep_id[i];
}

void
state_set_due(struct job_state *st, struct batch *b, size_t i, int64_t due)
{
	const struct old_lead *o;

	b->sla_due_at[i] = due;
	if (st == NULL || st->kind == NULL || st->kind[i] != KIND_UNCHANGED)
		return;
	o = &st->old[st->of_row[i]];
	if (o->sla_due_at != due)
	{
		st->kind[i] = KIND_CHANGED;
		st->c.unchanged--;
		st->c.changed++;
	}
}

bool
state_reconcile(struct job_state *st, struct batch *b, bool full, struct error *err)
{
	struct state_counts *c = &st->c;

	if (st->nrows != b->n)
		return error_set(err, EXIT_INTERNAL, "the state was read for another batch");
	if (!state_stable_clusters(st, b, err))
		return false;
	c->full = !c->had_state || full || c->rules_changed || c->reverted_full >= 0;
	for (size_t i = 0; i < b->n; i++)
	{
		const struct old_lead *o;

		if (st->of_row[i] == NO_INDEX)
		{
			st->kind[i] = KIND_NEW;
			c->new_leads++;
			continue;
		}
		o = &st->old[st->of_row[i]];
		/* the first contact stays due when it was: same rep, same cohort */
		if (!o->vanished && old_work_of(st, o)->rep_id >= 0 &&
		    old_work_of(st, o)->rep_id == b->rep_id[i] && same_text(o->cohort, b->cohort_name[i]) &&
		    o->sla_due_at != BATCH_NO_TIME)
			b->sla_due_at[i] = o->sla_due_at;
		if (o->vanished)
		{
			st->kind[i] = KIND_RETURNED;
			c->returned++;
		}
		else if (!same_decision(st, o, b, i) || !o->has_fingerprint ||
		         o->fingerprint != st->fp[i] || o->stale)
		{
			st->kind[i] = KIND_CHANGED;
			c->changed++;
		}
		else
		{
			st->kind[i] = KIND_UNCHANGED;
			c->unchanged++;
		}
	}
	for (size_t k = 0; k < st->nold; k++)
		c->vanished += !st->old[k].seen && !st->old[k].vanished;
	return true;
}

/* --------------------------------------------------------------- write */

/* the state's columns after the result columns, in COPY order */
static const char *const state_extra_columns =
    "fingerprint, assigned_at, job, first_run, changed_run";

struct state_rows
{
	const struct job_state *st;
	const struct ruleset *rs;
	const struct batch *b;
	int64_t run_id;
	bool with_kind;
	uint64_t mask; /* the result columns written (writeback_row_masked) */
};

/* the state's columns of batch row i, without the line's end; first_run as given */
static void
put_state(struct strbuf *sb, const struct state_rows *r, size_t i, int64_t first_run)
{
	const struct batch *b = r->b;

	writeback_row_masked(sb, r->rs, b, i, r->mask);
	sb->len--; /* the row's newline: more columns follow */
	sb_printf(sb, "\t%" PRId64 "\t", (int64_t) r->st->fp[i]);
	if (b->rep_id[i] >= 0 && b->assigned_at[i] != BATCH_NO_TIME)
		sb_time(sb, b->assigned_at[i]);
	else
		sb_puts(sb, "\\N");
	sb_putc(sb, '\t');
	sb_copy_text(sb, r->st->job);
	sb_printf(sb, "\t%" PRId64 "\t%" PRId64, first_run, r->run_id);
}

static void
format_state(struct strbuf *sb, const void *ctx, size_t i)
{
	const struct state_rows *r = ctx;

	put_state(sb, r, i, r->run_id);
	if (r->with_kind)
		sb_printf(sb, "\t%s\t%" PRId64, kind_names[r->st->kind[i]],
		          r->st->of_row[i] == NO_INDEX ? (int64_t) 0
		                                       : r->st->old[r->st->of_row[i]].version);
	sb_putc(sb, '\n');
}

/*
 * A row of a full write's new table (sql/018_state_rebuild.sql): the
 * state's columns, then what the old row keeps: its first run, its version
 * plus one (a new lead's is 1), its take's time and rep.
 */
static void
format_rebuild(struct strbuf *sb, const void *ctx, size_t i)
{
	const struct state_rows *r = ctx;
	const struct job_state *st = r->st;
	const struct old_lead *o = st->of_row[i] == NO_INDEX ? NULL : &st->old[st->of_row[i]];

	put_state(sb, r, i, o && o->first_run > 0 ? o->first_run : r->run_id);
	sb_printf(sb, "\t%" PRId64 "\t", o ? o->version + 1 : 1);
	if (o && old_work_of(st, o)->taken_at)
		sb_copy_text(sb, old_work_of(st, o)->taken_at);
	else
		sb_puts(sb, "\\N");
	if (o && old_work_of(st, o)->taken_by_col >= 0)
		sb_printf(sb, "\t%" PRId64 "\n", old_work_of(st, o)->taken_by_col);
	else
		sb_puts(sb, "\t\\N\n");
}

/* a changed lead of a full write: its id and how it changed */
static void
format_kind(struct strbuf *sb, const void *ctx, size_t i)
{
	const struct state_rows *r = ctx;

	sb_copy_text(sb, batch_lead_id(r->b, i));
	sb_printf(sb, "\t%s\n", kind_names[r->st->kind[i]]);
}

static void
format_id(struct strbuf *sb, const void *ctx, size_t k)
{
	const struct job_state *st = ctx;

	sb_copy_text(sb, st->old[k].lead_id);
	sb_printf(sb, "\t%" PRId64 "\n", st->old[k].version);
}

static bool
copy_sql(struct strbuf *sql, const char *table, bool with_kind)
{
	sb_printf(sql, "COPY %s (", table);
	for (int k = 0; writeback_columns[k]; k++)
		sb_printf(sql, "%s, ", writeback_columns[k]);
	sb_printf(sql, "%s%s) FROM STDIN", state_extra_columns,
	          with_kind ? ", kind, version_read" : "");
	return !sql->oom;
}

/* run a statement with the run's id and the job as $1 and $2 */
static bool
exec2(PGconn *conn, const char *phase, const char *sql, int64_t run_id, const char *job,
      struct error *err)
{
	char id[32];
	const char *params[2] = {id, job};
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	if ((res = pg_query(conn, phase, sql, 2, params, err)) == NULL)
		return false;
	PQclear(res);
	return true;
}

/*
 * tmpl with {state} replaced by the job's partition (the parent while the
 * job has none) and {new} by the table a full write fills, into sb.
 */
static void
expand(struct strbuf *sb, const struct job_state *st, const char *tmpl)
{
	const char *state = st->table[0] ? st->table : "refinery.lead_state";

	for (const char *p = tmpl; *p;)
		if (strncmp(p, "{state}", 7) == 0)
		{
			sb_puts(sb, state);
			p += 7;
		}
		else if (strncmp(p, "{new}", 5) == 0)
		{
			sb_puts(sb, st->rebuild);
			p += 5;
		}
		else
			sb_putc(sb, *p++);
}

/*
 * Run the statement tmpl names (expand()): with the run's id and the job as
 * $1 and $2 (with_run), or the job alone as $1.
 */
static bool
exec_st(PGconn *conn, const struct job_state *st, bool with_run, const char *tmpl,
        struct error *err)
{
	const char *params[1] = {st->job};
	struct strbuf sql;
	PGresult *res;
	bool ok;

	sb_init(&sql);
	expand(&sql, st, tmpl);
	if (sql.oom)
		ok = error_oom(err);
	else if (with_run)
		ok = exec2(conn, "writing the job's state", sql.data, st->run_id, st->job, err);
	else if ((ok = (res = pg_query(conn, "writing the job's state", sql.data, 1, params, err)) !=
	               NULL))
		PQclear(res);
	sb_free(&sql);
	return ok;
}

/* the state's columns set from the row a change replaced or from the run */
#define STATE_SET_COLUMNS                                                                          \
	"state = 'current', fingerprint = EXCLUDED.fingerprint, changed_run = EXCLUDED.changed_run, "  \
	"version = s.version + 1, assigned_at = EXCLUDED.assigned_at, source = EXCLUDED.source, "      \
	"verdict = EXCLUDED.verdict, rule_id = EXCLUDED.rule_id, reason = EXCLUDED.reason, "           \
	"cluster_id = EXCLUDED.cluster_id, survivor_id = EXCLUDED.survivor_id, "                       \
	"phone_norm = EXCLUDED.phone_norm, phone_type = EXCLUDED.phone_type, "                         \
	"phone_repair = EXCLUDED.phone_repair, email_norm = EXCLUDED.email_norm, "                     \
	"name_norm = EXCLUDED.name_norm, status_norm = EXCLUDED.status_norm, "                         \
	"score = EXCLUDED.score, points = EXCLUDED.points, temperature = EXCLUDED.temperature, "       \
	"persona = EXCLUDED.persona, cohort = EXCLUDED.cohort, rep_id = EXCLUDED.rep_id, "             \
	"call_order = EXCLUDED.call_order, p_close = EXCLUDED.p_close, "                               \
	"channel_plan = EXCLUDED.channel_plan, sla_due_at = EXCLUDED.sla_due_at, "                     \
	"golden = EXCLUDED.golden"

/* a row of temporary table ALIAS the run may write: a new lead, or one locked unchanged */
#define WRITABLE(alias)                                                                            \
	"(" alias                                                                                      \
	".version_read = 0 OR EXISTS (SELECT 1 FROM refinery_state_ok k WHERE k.lead_id = " alias      \
	".lead_id))"

/*
 * What the job keeps besides its leads: [match] take_hours, which the pull
 * queue reads (sql/007_queue.sql), which of its outcomes a run has read
 * (those outcomes_read() read: outcomes_mark_read()), and the highest
 * cluster id its runs gave (jobs.cluster_id_high, state_stable_clusters()).
 */
static bool
record_job(PGconn *conn, const struct job_state *st, const struct ruleset *rs, int64_t run_id,
           struct error *err)
{
	char num[32];
	const char *params[2] = {num, st->job};
	PGresult *res;

	snprintf(num, sizeof(num), "%ld", rs->match->take_hours);
	res = pg_query(conn, "recording the job's take_hours",
	               "UPDATE refinery.jobs SET take_hours = $1 WHERE name = $2 "
	               "AND take_hours IS DISTINCT FROM $1::integer",
	               2, params, err);
	if (res == NULL)
		return false;
	PQclear(res);
	if (!outcomes_mark_read(conn, st->job, run_id, err))
		return false;
	if (st->cluster_top >= 0)
	{
		snprintf(num, sizeof(num), "%" PRId64, st->cluster_top);
		res = pg_query(conn, "recording the job's highest cluster id",
		               "UPDATE refinery.jobs SET cluster_id_high = $1 WHERE name = $2 "
		               "AND (cluster_id_high IS NULL OR cluster_id_high < $1::bigint)",
		               2, params, err);
		if (res == NULL)
			return false;
		PQclear(res);
	}
	return state_write_model(conn, st, rs, run_id, err);
}

/* the start of a statement writing the change log; its SELECT gives the columns in this order */
#define LOG_CHANGES                                                                                \
	"INSERT INTO refinery.lead_changes (run_id, job, lead_id, change, old_verdict, new_verdict, "  \
	"old_rule_id, new_rule_id, old_cluster_id, new_cluster_id, old_survivor_id, new_survivor_id, " \
	"old_temperature, new_temperature, old_cohort, new_cohort, old_rep_id, new_rep_id, "           \
	"previous) "

/*
 * Lock the state rows of job listed in the temporary table (lead_id,
 * version_read) whose version is still the one read, and note them in
 * refinery_state_ok; a row a take holds locked is skipped, not waited for.
 */
static bool
lock_unchanged(PGconn *conn, const struct job_state *st, const char *table, struct error *err)
{
	char tmpl[512];

	snprintf(tmpl, sizeof(tmpl),
	         "INSERT INTO refinery_state_ok SELECT s.lead_id FROM {state} s "
	         "JOIN %s t ON s.lead_id = t.lead_id WHERE s.job = $1 AND s.version = t.version_read "
	         "FOR UPDATE OF s SKIP LOCKED",
	         table);
	return exec_st(conn, st, false, tmpl, err);
}

/* the rows of table (alias t) that `where` selects and the run may not write */
static bool
count_skipped(PGconn *conn, const char *table, const char *where, size_t *n, struct error *err)
{
	char sql[512];
	PGresult *res;

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s t WHERE %sNOT " WRITABLE("t"), table,
	         where);
	if ((res = pg_query(conn, "writing the job's state", sql, 0, NULL, err)) == NULL)
		return false;
	*n = (size_t) strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return true;
}

/* copy the rows the run writes (all of them when rows is NULL) into temporary refinery_state_in */
static bool
copy_in(PGconn *conn, const struct job_state *st, struct state_rows *r, const uint32_t *rows,
        size_t nrows, struct error *err)
{
	struct strbuf sql;
	bool ok;

	r->with_kind = true;
	sb_init(&sql);
	/* two statements: a simple query, with no parameters */
	expand(&sql, st,
	       "CREATE TEMPORARY TABLE refinery_state_in (LIKE {state} INCLUDING DEFAULTS) "
	       "ON COMMIT DROP; ALTER TABLE refinery_state_in ADD COLUMN kind text NOT NULL, "
	       "ADD COLUMN version_read bigint NOT NULL");
	ok = sql.oom ? error_oom(err) : pg_exec(conn, "writing the job's state", sql.data, err);
	if (!ok)
	{
		sb_free(&sql);
		return false;
	}
	sb_reset(&sql);
	if (!copy_sql(&sql, "refinery_state_in", true))
		ok = error_oom(err);
	else
		ok = writeback_copy(conn, sql.data, "writing the job's state", format_state, r, rows, nrows,
		                    "state", err);
	sb_free(&sql);
	return ok;
}

/* the change log of the rows of refinery_state_in the run may write */
static bool
log_changed(PGconn *conn, const struct job_state *st, struct error *err)
{
	return exec_st(conn, st, true,
	               LOG_CHANGES
	               "SELECT $1, $2, t.lead_id, t.kind, s.verdict, t.verdict, s.rule_id, t.rule_id, "
	               "s.cluster_id, t.cluster_id, s.survivor_id, t.survivor_id, s.temperature, "
	               "t.temperature, s.cohort, t.cohort, s.rep_id, t.rep_id, to_jsonb(s) "
	               "FROM refinery_state_in t LEFT JOIN {state} s "
	               "ON s.job = $2 AND s.lead_id = t.lead_id WHERE t.kind <> 'unchanged' "
	               "AND " WRITABLE("t"),
	               err);
}

/* the leads of the state this run did not pull and that are not yet vanished */
static uint32_t *
gone_leads(const struct job_state *st, size_t *ngone, struct error *err)
{
	uint32_t *gone = malloc(sizeof(*gone) * (st->nold ? st->nold : 1));

	*ngone = 0;
	if (gone == NULL)
	{
		error_oom(err);
		return NULL;
	}
	for (size_t k = 0; k < st->nold; k++)
		if (!st->old[k].seen && !st->old[k].vanished)
			gone[(*ngone)++] = (uint32_t) k;
	return gone;
}

/*
 * Write the rows of refinery_state_in (when have_rows) into the job's
 * partition row by row, and mark the leads the run did not pull vanished.
 * A row the queue changed after the run read it (a take, an outcome: its
 * version moved) is left as the queue left it; so is one a take holds
 * locked right now, which is skipped rather than waited for.  The rows the
 * run may write are locked until its commit.
 */
static bool
write_in_place(PGconn *conn, struct job_state *st, bool have_rows, struct error *err)
{
	const char *phase = "writing the job's state";
	struct strbuf sql;
	uint32_t *gone;
	size_t ngone;
	bool ok = false;

	if ((gone = gone_leads(st, &ngone, err)) == NULL)
		return false;
	sb_init(&sql);
	if (!pg_exec(conn, phase,
	             "CREATE TEMPORARY TABLE refinery_state_ok (lead_id text PRIMARY KEY) "
	             "ON COMMIT DROP",
	             err))
		goto out;
	if (have_rows)
	{
		if (!lock_unchanged(conn, st, "refinery_state_in", err) ||
		    !count_skipped(conn, "refinery_state_in", "t.kind <> 'unchanged' AND ", &st->c.skipped,
		                   err))
			goto out;
		/* the log first, while the rows it replaces are still there */
		if (!log_changed(conn, st, err))
			goto out;
		expand(&sql, st, "INSERT INTO {state} AS s (");
		for (int k = 0; writeback_columns[k]; k++)
			sb_printf(&sql, "%s, ", writeback_columns[k]);
		sb_printf(&sql, "%s) SELECT ", state_extra_columns);
		for (int k = 0; writeback_columns[k]; k++)
			sb_printf(&sql, "t.%s, ", writeback_columns[k]);
		sb_puts(&sql, "t.fingerprint, t.assigned_at, t.job, t.first_run, t.changed_run "
		              "FROM refinery_state_in t WHERE " WRITABLE(
		                  "t") " "
		                       "ON CONFLICT (job, lead_id) DO UPDATE SET " STATE_SET_COLUMNS);
		if (sql.oom)
		{
			error_oom(err);
			goto out;
		}
		if (!pg_exec(conn, phase, sql.data, err) ||
		    !pg_exec(conn, phase, "DROP TABLE refinery_state_in", err))
			goto out;
	}
	if (ngone > 0)
	{
		size_t skipped = 0;

		if (!pg_exec(conn, phase,
		             "CREATE TEMPORARY TABLE refinery_state_gone (lead_id text NOT NULL, "
		             "version_read bigint NOT NULL) ON COMMIT DROP",
		             err) ||
		    !writeback_copy(conn, "COPY refinery_state_gone (lead_id, version_read) FROM STDIN",
		                    phase, format_id, st, gone, ngone, NULL, err) ||
		    !lock_unchanged(conn, st, "refinery_state_gone", err) ||
		    !count_skipped(conn, "refinery_state_gone", "", &skipped, err) ||
		    !exec_st(conn, st, true,
		             LOG_CHANGES
		             "SELECT $1, $2, s.lead_id, 'vanished', s.verdict, s.verdict, s.rule_id, "
		             "s.rule_id, s.cluster_id, s.cluster_id, s.survivor_id, s.survivor_id, "
		             "s.temperature, s.temperature, s.cohort, s.cohort, s.rep_id, NULL, "
		             "to_jsonb(s) FROM {state} s JOIN refinery_state_ok k "
		             "ON s.job = $2 AND s.lead_id = k.lead_id "
		             "JOIN refinery_state_gone g ON g.lead_id = k.lead_id",
		             err) ||
		    !exec_st(conn, st, true,
		             "UPDATE {state} s SET state = 'vanished', rep_id = NULL, "
		             "call_order = NULL, assigned_at = NULL, taken_at = NULL, changed_run = $1, "
		             "version = s.version + 1 FROM refinery_state_gone g "
		             "JOIN refinery_state_ok k ON k.lead_id = g.lead_id "
		             "WHERE s.job = $2 AND s.lead_id = g.lead_id",
		             err) ||
		    !pg_exec(conn, phase, "DROP TABLE refinery_state_gone", err))
			goto out;
		st->c.skipped_vanished = skipped;
	}
	ok = pg_exec(conn, phase, "DROP TABLE refinery_state_ok", err);
out:
	sb_free(&sql);
	free(gone);
	return ok;
}

/*
 * Let what follows in the run's transaction sort and hash in memory: index
 * builds (a partition's, a run's snapshot) and a full write's joins of the
 * job's state with the run's rows.  A server set higher keeps its setting.
 */
static bool
raise_work_memory(PGconn *conn, struct error *err)
{
	return pg_exec(conn, "writing the job's state",
	               "SELECT set_config(name, '262144kB', true) FROM pg_settings "
	               "WHERE name IN ('maintenance_work_mem', 'work_mem') "
	               "AND setting::bigint < 262144",
	               err);
}

/*
 * A full write of a job that has state, first part: every lead into a
 * new table (sql/018_state_rebuild.sql), which gets the partition's
 * indexes once it is full.  Each pulled lead's row is the run's, with the
 * first run, the version and the take of its old row as the state read
 * them; a lead the run did not pull keeps its row, marked vanished if it
 * was current.  The leads that changed, and how, go to a temporary table
 * for the change log.  What the queue changed since the run read the
 * state is brought in by rebuild_finish(), under a lock.
 */
static bool
rebuild_fill(PGconn *conn, struct job_state *st, struct state_rows *r, struct error *err)
{
	const char *phase = "writing the job's state";
	const char *params[1] = {st->job};
	const struct batch *b = r->b;
	struct strbuf sql;
	PGresult *res;
	uint32_t *changed = NULL;
	size_t nchanged = 0;
	char count[256];
	bool ok = false;

	if (!raise_work_memory(conn, err))
		return false;
	res = pg_query(conn, phase, "SELECT refinery.rebuild_state_table($1)", 1, params, err);
	if (res == NULL)
		return false;
	snprintf(st->rebuild, sizeof(st->rebuild), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);

	/*
	 * FREEZE (the table is this transaction's own): a snapshot older than
	 * the commit then sees the swapped-in state, not an empty partition, and
	 * no later read or VACUUM sets hint bits or freezes its rows.
	 */
	sb_init(&sql);
	sb_printf(&sql, "COPY %s (", st->rebuild);
	for (int k = 0; writeback_columns[k]; k++)
		sb_printf(&sql, "%s, ", writeback_columns[k]);
	sb_printf(&sql, "%s, version, taken_at, taken_by) FROM STDIN WITH (FREEZE)",
	          state_extra_columns);
	if (sql.oom)
	{
		error_oom(err);
		goto out;
	}
	if (!writeback_copy(conn, sql.data, phase, format_rebuild, r, NULL, b->n, "state", err))
		goto out;
	if ((changed = malloc(sizeof(*changed) * (b->n ? b->n : 1))) == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		if (st->kind[i] != KIND_UNCHANGED)
			changed[nchanged++] = (uint32_t) i;
	if (!pg_exec(conn, phase,
	             "CREATE TEMPORARY TABLE refinery_state_kinds (lead_id text NOT NULL, "
	             "kind text NOT NULL) ON COMMIT DROP",
	             err) ||
	    !writeback_copy(conn, "COPY refinery_state_kinds (lead_id, kind) FROM STDIN", phase,
	                    format_kind, r, changed, nchanged, NULL, err) ||
	    !pg_exec(conn, phase, "ANALYZE refinery_state_kinds", err))
		goto out;
	/*
	 * The rows of leads the run read but did not pull, by id (only a run of
	 * the job, which holds its lease, adds rows): a current one becomes
	 * vanished as it is copied, unless the queue changed it since the run
	 * read it (a take, an outcome), which leaves it as the queue left it,
	 * as the row-by-row write does.
	 */
	nchanged = 0;
	for (size_t k = 0; k < st->nold; k++)
		if (!st->old[k].seen)
			changed[nchanged++] = (uint32_t) k;
	if (!pg_exec(conn, phase,
	             "CREATE TEMPORARY TABLE refinery_state_unpulled (lead_id text NOT NULL, "
	             "version bigint NOT NULL) ON COMMIT DROP",
	             err) ||
	    !writeback_copy(conn, "COPY refinery_state_unpulled (lead_id, version) FROM STDIN", phase,
	                    format_id, st, changed, nchanged, NULL, err) ||
	    !pg_exec(conn, phase, "ANALYZE refinery_state_unpulled", err) ||
	    !exec_st(conn, st, true,
	             "INSERT INTO {new} SELECT v.* FROM {state} s "
	             "JOIN refinery_state_unpulled u ON u.lead_id = s.lead_id "
	             "CROSS JOIN LATERAL jsonb_populate_record(s, CASE WHEN s.state = 'current' "
	             "AND s.version = u.version "
	             "THEN jsonb_build_object('state', 'vanished', 'rep_id', NULL, "
	             "'call_order', NULL, 'assigned_at', NULL, 'taken_at', NULL, "
	             "'changed_run', $1::bigint, 'version', s.version + 1) "
	             "ELSE '{}'::jsonb END) v WHERE s.job = $2",
	             err))
		goto out;
	/* those left current were changed by the queue since the run read them */
	snprintf(count, sizeof(count),
	         "SELECT count(*) FROM %s n JOIN refinery_state_unpulled u ON u.lead_id = n.lead_id "
	         "WHERE n.state = 'current'",
	         st->rebuild);
	if ((res = pg_query(conn, phase, count, 0, NULL, err)) == NULL)
		goto out;
	st->c.skipped_vanished = (size_t) strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	if (r->rs->output->analyze)
	{
		char analyze[160];

		snprintf(analyze, sizeof(analyze), "ANALYZE %s", st->rebuild);
		if (!pg_exec(conn, phase, analyze, err))
			goto out;
	}
	res = pg_query(conn, phase, "SELECT refinery.index_state_rebuild($1)", 1, params, err);
	if (res == NULL)
		goto out;
	PQclear(res);
	st->rebuild_pending = true;
	ok = true;
out:
	sb_free(&sql);
	free(changed);
	return ok;
}

/*
 * Run sql as the savepoint `name`.  False with *busy set when it failed but
 * the transaction goes on (rolled back to the savepoint): for a lock wait
 * (err's SQLSTATE 55P03) or for another error of the statement (a view a
 * user made on the job's partition keeps it from being dropped); a lost
 * session or an interrupt is a failure.
 */
static bool
try_locked(PGconn *conn, const char *name, const char *sql, const char *job, bool *busy,
           struct error *err)
{
	const char *phase = "writing the job's state";
	const char *params[1] = {job};
	char stmt[128];
	PGresult *res;

	*busy = false;
	snprintf(stmt, sizeof(stmt), "SAVEPOINT %s", name);
	if (!pg_exec(conn, phase, stmt, err))
		return false;
	if ((res = pg_query(conn, phase, sql, 1, params, err)) != NULL)
	{
		PQclear(res);
		snprintf(stmt, sizeof(stmt), "RELEASE SAVEPOINT %s", name);
		return pg_exec(conn, phase, stmt, err);
	}
	if (err->code == EXIT_CONNECTION || err->code == EXIT_INTERRUPTED)
		return false;
	snprintf(stmt, sizeof(stmt), "ROLLBACK TO SAVEPOINT %s", name);
	if (PQstatus(conn) != CONNECTION_OK)
		return false;
	{
		struct error why = *err;

		if (!pg_exec(conn, phase, stmt, err))
			return false;
		*err = why; /* what failed, for the caller's message */
	}
	*busy = true;
	return false;
}

/*
 * Under the partition's lock: the rows the queue changed since the run read
 * them (their version is not the one their new row was made from) go to
 * refinery_state_moved, and the new table takes them as the queue left
 * them.  Versions only grow and only a run of the job adds rows, so when
 * the partition's row count and version sum are those the run read, no row
 * moved and the join of the two tables is spared.
 */
static bool
state_moved(PGconn *conn, struct job_state *st, struct error *err)
{
	const char *phase = "writing the job's state";
	const char *params[1] = {st->job};
	char want[64];
	int64_t sum = 0;
	struct strbuf sql;
	PGresult *res;
	bool same;

	for (size_t k = 0; k < st->nold; k++)
		sum += st->old[k].version;
	snprintf(want, sizeof(want), "%zu %" PRId64, st->nold, sum);
	sb_init(&sql);
	expand(&sql, st,
	       "SELECT count(*) || ' ' || coalesce(sum(version), 0) FROM {state} WHERE job = $1");
	res = sql.oom ? NULL : pg_query(conn, phase, sql.data, 1, params, err);
	if (sql.oom)
		error_oom(err);
	sb_free(&sql);
	if (res == NULL)
		return false;
	same = strcmp(PQgetvalue(res, 0, 0), want) == 0;
	PQclear(res);
	if (same)
	{
		st->c.skipped = 0;
		return pg_exec(conn, phase,
		               "CREATE TEMPORARY TABLE refinery_state_moved (lead_id text NOT NULL, "
		               "vanishing boolean NOT NULL) ON COMMIT DROP",
		               err);
	}
	if (!exec_st(conn, st, true,
	             "CREATE TEMPORARY TABLE refinery_state_moved ON COMMIT DROP AS "
	             "SELECT s.lead_id, s.state = 'current' AND n.state = 'vanished' AS vanishing "
	             "FROM {state} s JOIN {new} n ON n.lead_id = s.lead_id "
	             "WHERE s.job = $2 AND s.version <> n.version - (n.changed_run = $1)::int",
	             err))
		return false;
	res = pg_query(conn, phase,
	               "SELECT count(k.lead_id), count(*) FILTER (WHERE m.vanishing) "
	               "FROM refinery_state_moved m "
	               "LEFT JOIN refinery_state_kinds k ON k.lead_id = m.lead_id",
	               0, NULL, err);
	if (res == NULL)
		return false;
	st->c.skipped = (size_t) strtoull(PQgetvalue(res, 0, 0), NULL, 10);
	/* added to those the copy of the unpulled rows left (rebuild_fill) */
	st->c.skipped_vanished += (size_t) strtoull(PQgetvalue(res, 0, 1), NULL, 10);
	PQclear(res);
	return exec_st(conn, st, false,
	               "DELETE FROM {new} n USING refinery_state_moved m "
	               "WHERE n.lead_id = m.lead_id AND n.job = $1",
	               err) &&
	       exec_st(conn, st, false,
	               "INSERT INTO {new} SELECT s.* FROM {state} s "
	               "JOIN refinery_state_moved m ON m.lead_id = s.lead_id WHERE s.job = $1",
	               err);
}

/*
 * A full write, second part: hold the job's partition against writers,
 * give the new table the rows the queue changed since the run read them
 * (as the queue left them: counted skipped) and log what changed; the swap
 * follows (rebuild_swap).  When the job's queue holds its partition for
 * long, the rows are written in place instead (the new table dropped, no
 * swap).
 */
static bool
rebuild_finish(PGconn *conn, struct job_state *st, struct error *err)
{
	const char *phase = "writing the job's state";
	bool busy;
	char drop[160];

	st->rebuild_pending = false;
	if (!try_locked(conn, "refinery_lock", "SELECT refinery.lock_state_table($1)", st->job, &busy,
	                err))
	{
		if (!busy)
			return false;
		if (strcmp(err->sqlstate, "55P03") == 0)
			log_info("the job's queue holds its state: rows are rewritten in place");
		else
			log_info("the job's partition could not be locked (%s): rows are rewritten in place",
			         err->msg);
		error_clear(err);
		snprintf(drop, sizeof(drop), "DROP TABLE %s", st->rebuild);
		/* the pulled leads' new rows, as the row-by-row write takes them */
		return exec_st(conn, st, true,
		               "CREATE TEMPORARY TABLE refinery_state_in ON COMMIT DROP AS "
		               "SELECT n.*, coalesce(k.kind, 'unchanged') AS kind, "
		               "n.version - 1 AS version_read FROM {new} n "
		               "LEFT JOIN refinery_state_kinds k ON k.lead_id = n.lead_id "
		               "WHERE n.changed_run = $1 AND n.state = 'current' AND n.job = $2",
		               err) &&
		       pg_exec(conn, phase, drop, err) && write_in_place(conn, st, true, err);
	}
	FAULT("state_swap");
	if (!state_moved(conn, st, err))
		return false;
	if (!exec_st(conn, st, true,
	             LOG_CHANGES
	             "SELECT $1, $2, k.lead_id, k.kind, s.verdict, n.verdict, s.rule_id, "
	             "n.rule_id, s.cluster_id, n.cluster_id, s.survivor_id, n.survivor_id, "
	             "s.temperature, n.temperature, s.cohort, n.cohort, s.rep_id, n.rep_id, "
	             "to_jsonb(s) FROM refinery_state_kinds k JOIN {new} n "
	             "ON n.job = $2 AND n.lead_id = k.lead_id "
	             "LEFT JOIN {state} s ON s.job = $2 AND s.lead_id = k.lead_id "
	             "WHERE NOT EXISTS (SELECT 1 FROM refinery_state_moved m "
	             "WHERE m.lead_id = k.lead_id)",
	             err) ||
	    !exec_st(conn, st, true,
	             LOG_CHANGES
	             "SELECT $1, $2, s.lead_id, 'vanished', s.verdict, s.verdict, s.rule_id, "
	             "s.rule_id, s.cluster_id, s.cluster_id, s.survivor_id, s.survivor_id, "
	             "s.temperature, s.temperature, s.cohort, s.cohort, s.rep_id, NULL, "
	             "to_jsonb(s) FROM refinery_state_unpulled u "
	             "JOIN {state} s ON s.job = $2 AND s.lead_id = u.lead_id "
	             "JOIN {new} n ON n.job = $2 AND n.lead_id = u.lead_id "
	             "WHERE s.state = 'current' AND n.state = 'vanished' AND n.changed_run = $1",
	             err))
		return false;
	st->swap_pending = true;
	return true;
}

/*
 * A full write, last part, last before the COMMIT: swap the new table in,
 * which locks the shared parent until the transaction ends; when that lock
 * cannot be had, copy the new table into the job's partition instead.
 */
static bool
rebuild_swap(PGconn *conn, struct job_state *st, struct error *err)
{
	bool busy;
	char drop[160];

	st->swap_pending = false;
	/* the swap waits a quarter second at most for the shared parent: a few tries */
	for (int attempt = 0; attempt < 4; attempt++)
	{
		if (try_locked(conn, "refinery_swap", "SELECT refinery.swap_state_table($1)", st->job,
		               &busy, err))
			return true;
		if (!busy)
			return false;
		if (strcmp(err->sqlstate, "55P03") != 0)
			break; /* not a wait: trying again would fail the same way */
	}
	snprintf(drop, sizeof(drop), "DROP TABLE %s", st->rebuild);
	if (strcmp(err->sqlstate, "55P03") == 0)
		log_info("another session holds refinery.lead_state: the job's rebuilt state is copied "
		         "into its partition");
	else
		log_info("the job's partition could not be swapped (%s): the rebuilt state is copied "
		         "into it",
		         err->msg);
	error_clear(err);
	return exec_st(conn, st, false, "DELETE FROM {state} WHERE job = $1", err) &&
	       exec_st(conn, st, false, "INSERT INTO {state} SELECT * FROM {new} WHERE job = $1",
	               err) &&
	       pg_exec(conn, "writing the job's state", drop, err);
}

bool
state_attach_prepare(PGconn *conn, struct job_state *st, struct error *err)
{
	return !st->rebuild_pending || rebuild_finish(conn, st, err);
}

bool
state_attach(PGconn *conn, struct job_state *st, struct error *err)
{
	const char *params[1] = {st->job};
	PGresult *res;

	if (st->rebuild_pending && !rebuild_finish(conn, st, err))
		return false;
	if (st->swap_pending)
		return rebuild_swap(conn, st, err);
	if (!st->attach_pending)
		return true;
	if (!raise_work_memory(conn, err))
		return false;
	res = pg_query(conn, "attaching the job's state", "SELECT refinery.attach_state_table($1)", 1,
	               params, err);
	if (res == NULL)
		return false;
	PQclear(res);
	st->attach_pending = false;
	return true;
}

bool
state_write(PGconn *conn, struct job_state *st, const struct ruleset *rs, const struct batch *b,
            int64_t run_id, struct error *err)
{
	const char *phase = "writing the job's state";
	/* with a snapshot in lead_results the state keeps the decision only: a third of the write */
	struct state_rows r = {.st = st,
	                       .rs = rs,
	                       .b = b,
	                       .run_id = run_id,
	                       .mask =
	                           rs->output->snapshot ? writeback_decision_mask() : ~(uint64_t) 0};
	struct strbuf sql;
	uint32_t *rows = NULL;
	size_t nrows = 0;
	bool ok = false;

	st->run_id = run_id;
	for (size_t i = 0; i < b->n; i++)
		if (b->cluster_id[i] > st->cluster_top)
			st->cluster_top = b->cluster_id[i];
	sb_init(&sql);
	if (!st->c.had_state)
	{
		/*
		 * A job's first run: every lead into the state, nothing to log.  The
		 * job's partition is made, filled with no index to keep up, indexed
		 * in one pass (several times faster than COPY into the indexed
		 * table), then attached, which adopts the indexes: the shared
		 * parent is locked only from then to the commit.  A job that has its
		 * partition but no rows (its first run reverted) fills it in place.
		 */
		const char *params[1] = {st->job};
		PGresult *res =
		    pg_query(conn, phase, "SELECT refinery.new_state_table($1)", 1, params, err);
		char table[256];
		bool fresh;

		if (res == NULL)
			goto out;
		fresh = !PQgetisnull(res, 0, 0);
		/* a partition with no rows (its first run reverted) is filled in place */
		snprintf(table, sizeof(table), "%s",
		         fresh          ? PQgetvalue(res, 0, 0)
		         : st->table[0] ? st->table
		                        : "refinery.lead_state");
		PQclear(res);
		if (!copy_sql(&sql, table, false))
		{
			error_oom(err);
			goto out;
		}
		ok = writeback_copy(conn, sql.data, phase, format_state, &r, NULL, b->n, "state", err);
		if (ok && fresh && rs->output->analyze)
		{
			sb_reset(&sql);
			sb_printf(&sql, "ANALYZE %s", table);
			ok = !sql.oom && pg_exec(conn, phase, sql.data, err);
		}
		/* its indexes now, while the table is the run's own: the attach only adopts them */
		if (ok && fresh)
		{
			const char *p[1] = {st->job};

			res = NULL;
			ok = raise_work_memory(conn, err) &&
			     (res = pg_query(conn, phase, "SELECT refinery.index_state_table($1)", 1, p,
			                     err)) != NULL;
			PQclear(res);
		}
		st->attach_pending = ok && fresh;
		ok = ok && record_job(conn, st, rs, run_id, err);
		goto out;
	}
	if (st->c.full)
	{
		/* every row is rewritten: a new table indexed once beats an update of each row */
		ok = rebuild_fill(conn, st, &r, err) && record_job(conn, st, rs, run_id, err);
		goto out;
	}

	rows = malloc(sizeof(*rows) * (b->n ? b->n : 1));
	if (rows == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (size_t i = 0; i < b->n; i++)
		if (st->kind[i] != KIND_UNCHANGED)
			rows[nrows++] = (uint32_t) i;
	ok = (nrows == 0 || copy_in(conn, st, &r, rows, nrows, err)) &&
	     write_in_place(conn, st, nrows > 0, err) && record_job(conn, st, rs, run_id, err);
out:
	sb_free(&sql);
	free(rows);
	return ok;
}

const struct state_counts *
state_counts(const struct job_state *st)
{
	return &st->c;
}

size_t
state_batch_row(const struct job_state *st, const char *lead_id)
{
	size_t s;

	if (st->nold == 0 || st->slot == NULL)
		return SIZE_MAX;
	s = find_slot(st, lead_id);
	if (st->slot[s] == 0 || st->row_of[st->slot[s] - 1] == NO_INDEX)
		return SIZE_MAX;
	return st->row_of[st->slot[s] - 1];
}

int64_t
state_last_run(const struct job_state *st)
{
	return st->last_run;
}

void
state_free(struct job_state *st)
{
	if (st == NULL)
		return;
	state_read_stop(st);
	free(st->job);
	arena_free(st->arena);
	free(st->old);
	free(st->work);
	free(st->shared);
	free(st->slot);
	free(st->of_row);
	free(st->row_of);
	free(st->kind);
	free(st->fp);
	state_dedupe_free(st);
	free(st);
}
