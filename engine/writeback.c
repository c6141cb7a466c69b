/*
 * writeback.c
 *    Writing a run's results, atomically.
 *
 * Database: everything happens in one transaction.  The leads go by COPY
 * into a fresh table of the run's own, which has no index while it is
 * filled (an index makes COPY several times slower); at the end it is
 * attached as the run's LIST partition of refinery.lead_results, which
 * builds the partition's part of the primary key in one pass and takes
 * only a SHARE UPDATE EXCLUSIVE lock on the parent, so readers of earlier
 * runs are never blocked.  Until COMMIT nothing of the run is visible; a
 * crash or a kill anywhere before it leaves the database as it was.
 * CSV: the same rows into files written as outfiles (engine/outfile.h): a
 * locked private temporary file, synced, given [output] file_mode and
 * renamed, so a reader never sees half a file.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cohort.h"
#include "csvio.h"
#include "match.h"
#include "normalize.h"
#include "phone.h"
#include "pg.h"
#include "progress.h"
#include "pull.h"
#include "writeback.h"
#include "state.h"
#include "suppress.h"

#include "fault.h"

#define COPY_CHUNK (1 << 20)

/*
 * The result columns, in COPY order, each with the function that formats
 * lead i's value as COPY text.  This list is the only place a column is
 * named: the COPY column list, the rows, the CSV header and the CSV sink's
 * arrays are all made from it.
 */
#define WRITEBACK_COLUMN_LIST(X)                                                                   \
	X(lead_id)                                                                                     \
	X(source)                                                                                      \
	X(verdict)                                                                                     \
	X(rule_id)                                                                                     \
	X(reason)                                                                                      \
	X(cluster_id)                                                                                  \
	X(survivor_id)                                                                                 \
	X(phone_norm)                                                                                  \
	X(phone_type)                                                                                  \
	X(phone_repair)                                                                                \
	X(email_norm)                                                                                  \
	X(name_norm)                                                                                   \
	X(status_norm)                                                                                 \
	X(score)                                                                                       \
	X(points)                                                                                      \
	X(temperature)                                                                                 \
	X(persona)                                                                                     \
	X(cohort)                                                                                      \
	X(rep_id)                                                                                      \
	X(call_order)                                                                                  \
	X(p_close)                                                                                     \
	X(channel_plan)                                                                                \
	X(sla_due_at)                                                                                  \
	X(golden)

enum
{
#define X(name) WRITEBACK_COL_##name,
	WRITEBACK_COLUMN_LIST(X)
#undef X
	    WRITEBACK_NCOLS
};

const char *const writeback_columns[] = {
#define X(name) #name,
    WRITEBACK_COLUMN_LIST(X)
#undef X
        NULL};

const int writeback_ncolumns = WRITEBACK_NCOLS;

_Static_assert(WRITEBACK_NCOLS <= 64, "writeback_row_masked takes a 64-bit mask of columns");

/* One column's value of lead i, as COPY text ("\N" for NULL). */
typedef void (*put_fn)(struct strbuf *sb, const struct ruleset *rs, const struct batch *b,
                       size_t i);

static void
put_null(struct strbuf *sb)
{
	sb_puts(sb, "\\N");
}

static bool
scored(const struct batch *b, size_t i)
{
	return (b->verdict[i] == VERDICT_KEPT || b->verdict[i] == VERDICT_NURTURE) && b->npoints > 0;
}

static void
put_lead_id(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, batch_value(b, FIELD_LEAD_ID, i));
}

static void
put_source(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, batch_value(b, FIELD_SOURCE, i));
}

static void
put_verdict(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_puts(sb, verdict_name(b->verdict[i]));
}

static void
put_rule_id(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->rule_id[i]);
}

static void
put_reason(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->reason[i]);
}

static void
put_cluster_id(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	if (b->cluster_id[i] >= 0)
		sb_printf(sb, "%" PRId64, b->cluster_id[i]);
	else
		put_null(sb);
}

static void
put_survivor_id(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->survivor[i] != BATCH_NO_ROW ? batch_value(b, FIELD_LEAD_ID, b->survivor[i])
	                                                : NULL);
}

static void
put_phone_norm(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	char num[64];

	if (b->phones[i][0] && phone_format(rs->normalize->plan, b->phones[i][0], num, sizeof(num)))
		sb_puts(sb, num);
	else
		put_null(sb);
}

static void
put_phone_type(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, phone_type_name(b->phone_types[i][0]));
}

static void
put_phone_repair(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->phone_repair[i]);
}

static void
put_email_norm(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->email_norm[i]);
}

static void
put_name_norm(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->name_norm[i]);
}

static void
put_status_norm(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->status_norm[i]);
}

static void
put_score(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	/* points and score are both rounded to hundredths and add up exactly */
	if (scored(b, i))
		sb_fixed2(sb, b->score[i]);
	else
		put_null(sb);
}

/* a name that JSON and COPY text both take as it is: no control character, quote or backslash */
static bool
plain_name(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s < 0x20 || *s == '"' || *s == '\\')
			return false;
	return true;
}

static void
put_points(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	if (!scored(b, i))
	{
		put_null(sb);
		return;
	}
	sb_putc(sb, '{');
	for (int k = 0; k < b->npoints; k++)
	{
		const char *name = b->point_names[k];

		if (k > 0)
			sb_putn(sb, ", ", 2);
		if (plain_name(name))
		{
			/* a plain parameter name needs neither JSON nor COPY escapes */
			sb_putc(sb, '"');
			sb_puts(sb, name);
			sb_putc(sb, '"');
		}
		else
		{
			struct strbuf key;

			sb_init(&key);
			sb_json_str(&key, name);
			if (key.data)
				sb_copy_text(sb, key.data);
			sb_free(&key);
		}
		sb_putn(sb, ": ", 2);
		sb_fixed2(sb, batch_points(b, i, k));
	}
	sb_putc(sb, '}');
}

static void
put_temperature(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, temperature_name(b->temperature[i]));
}

static void
put_persona(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->persona[i]);
}

static void
put_cohort(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->cohort_name[i]);
}

static void
put_rep_id(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	if (b->rep_id[i] >= 0)
		sb_printf(sb, "%" PRId64, b->rep_id[i]);
	else
		put_null(sb);
}

static void
put_call_order(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	if (b->call_order[i] >= 0)
		sb_printf(sb, "%d", b->call_order[i]);
	else
		put_null(sb);
}

static void
put_p_close(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	char num[64];

	if (b->p_close[i] >= 0)
	{
		snprintf(num, sizeof(num), "%.6f", b->p_close[i]);
		sb_puts(sb, num);
	}
	else
		put_null(sb);
}

static void
put_channel_plan(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->channel_plan[i]);
}

static void
put_sla_due_at(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	/* naive local time in [source] timezone, the session's TimeZone */
	if (b->sla_due_at[i] != BATCH_NO_TIME)
		sb_time(sb, b->sla_due_at[i]);
	else
		put_null(sb);
}

static void
put_golden(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	sb_copy_text(sb, b->golden[i]);
}

static const put_fn put_column[WRITEBACK_NCOLS] = {
#define X(name) put_##name,
    WRITEBACK_COLUMN_LIST(X)
#undef X
};

void
writeback_row_masked(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i,
                     uint64_t mask)
{
	for (int c = 0; c < WRITEBACK_NCOLS; c++)
	{
		if (c > 0)
			sb_putc(sb, '\t');
		if (mask & ((uint64_t) 1 << c))
			put_column[c](sb, rs, b, i);
		else
			put_null(sb);
	}
	sb_putc(sb, '\n');
}

uint64_t
writeback_decision_mask(void)
{
	return (uint64_t) 1 << WRITEBACK_COL_lead_id | (uint64_t) 1 << WRITEBACK_COL_source |
	       (uint64_t) 1 << WRITEBACK_COL_verdict | (uint64_t) 1 << WRITEBACK_COL_rule_id |
	       (uint64_t) 1 << WRITEBACK_COL_cluster_id | (uint64_t) 1 << WRITEBACK_COL_survivor_id |
	       (uint64_t) 1 << WRITEBACK_COL_temperature | (uint64_t) 1 << WRITEBACK_COL_cohort |
	       (uint64_t) 1 << WRITEBACK_COL_rep_id | (uint64_t) 1 << WRITEBACK_COL_call_order |
	       (uint64_t) 1 << WRITEBACK_COL_p_close | (uint64_t) 1 << WRITEBACK_COL_sla_due_at |
	       (uint64_t) 1 << WRITEBACK_COL_phone_norm;
}

void
writeback_row(struct strbuf *sb, const struct ruleset *rs, const struct batch *b, size_t i)
{
	for (int c = 0; c < WRITEBACK_NCOLS; c++)
	{
		if (c > 0)
			sb_putc(sb, '\t');
		put_column[c](sb, rs, b, i);
	}
	sb_putc(sb, '\n');
}

static bool
copy_end(PGconn *conn, const char *phase, struct error *err)
{
	if (PQputCopyEnd(conn, NULL) != 1)
		return pg_fail(conn, NULL, phase, err);
	return pg_copy_result(conn, phase, err);
}

static bool
copy_begin(PGconn *conn, const char *sql, const char *phase, struct error *err)
{
	PGresult *res = PQexec(conn, sql);
	bool ok = PQresultStatus(res) == PGRES_COPY_IN;

	if (!ok)
		pg_fail(conn, res, phase, err);
	PQclear(res);
	return ok;
}

/*
 * The result COPY is bound by the server, which parses every row; the
 * engine's own work is formatting the rows.  A producer thread formats them
 * into a ring of chunk buffers while this thread sends the full ones, so
 * the two overlap instead of taking turns (the socket holds too little to
 * keep the server busy while one chunk is formatted).  The producer touches
 * no libpq state; memory stays at COPY_SLOTS chunks.
 */
#define COPY_SLOTS 4

struct copy_slot
{
	struct strbuf sb;
	size_t rows_end; /* rows formatted up to and including this chunk */
	bool full;
};

struct copy_pipe
{
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct copy_slot slot[COPY_SLOTS];
	bool done; /* the producer has formatted every row (or gave up) */
	bool stop; /* the sender failed: the producer must stop */
	bool oom;
	writeback_format_fn fmt;
	const void *ctx;
	const uint32_t *rows; /* the rows to send, NULL = 0 .. n-1 */
	size_t n;
};

static void *
copy_producer(void *arg)
{
	struct copy_pipe *p = arg;
	size_t x = 0;
	int k = 0;

	while (x < p->n)
	{
		struct copy_slot *s = &p->slot[k];
		bool stop;

		pthread_mutex_lock(&p->mu);
		while (s->full && !p->stop)
			pthread_cond_wait(&p->cv, &p->mu);
		stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		sb_reset(&s->sb);
		while (x < p->n && s->sb.len < COPY_CHUNK)
		{
			p->fmt(&s->sb, p->ctx, p->rows ? p->rows[x] : x);
			x++;
		}
		s->rows_end = x;
		pthread_mutex_lock(&p->mu);
		if (s->sb.oom)
			p->oom = true;
		else
			s->full = true;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (s->sb.oom)
			break;
		k = (k + 1) % COPY_SLOTS;
	}
	pthread_mutex_lock(&p->mu);
	p->done = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

bool
writeback_copy(PGconn *conn, const char *sql, const char *phase, writeback_format_fn fmt,
               const void *ctx, const uint32_t *rows, size_t n, const char *fault,
               struct error *err)
{
	struct copy_pipe p;
	pthread_t producer;
	bool ok = true, faulted = fault == NULL;
	int k = 0;

	if (!copy_begin(conn, sql, phase, err))
		return false;

	memset(&p, 0, sizeof(p));
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (int j = 0; j < COPY_SLOTS; j++)
		sb_init(&p.slot[j].sb);
	p.fmt = fmt;
	p.ctx = ctx;
	p.rows = rows;
	p.n = n;
	if (pthread_create(&producer, NULL, copy_producer, &p) != 0)
	{
		ok = error_set(err, EXIT_INTERNAL, "could not start a thread");
		goto cleanup;
	}
	for (;;)
	{
		struct copy_slot *s = &p.slot[k];
		bool have, oom;

		pthread_mutex_lock(&p.mu);
		while (!s->full && !p.done && !p.oom)
			pthread_cond_wait(&p.cv, &p.mu);
		have = s->full;
		oom = p.oom;
		pthread_mutex_unlock(&p.mu);
		if (oom)
		{
			ok = error_oom(err);
			break;
		}
		if (!have)
			break; /* done, and every full chunk was sent */
		if (PQputCopyData(conn, s->sb.data, (int) s->sb.len) != 1)
		{
			ok = pg_fail(conn, NULL, phase, err);
			break;
		}
		if (!faulted && s->rows_end > n / 2)
		{
			faulted = true;
			FAULT(fault);
		}
		pthread_mutex_lock(&p.mu);
		s->full = false;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.mu);
		k = (k + 1) % COPY_SLOTS;
	}
	pthread_mutex_lock(&p.mu);
	p.stop = true;
	pthread_cond_broadcast(&p.cv);
	pthread_mutex_unlock(&p.mu);
	pthread_join(producer, NULL);

cleanup:
	for (int j = 0; j < COPY_SLOTS; j++)
		sb_free(&p.slot[j].sb);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.mu);
	if (!ok)
	{
		PQputCopyEnd(conn, "aborted");
		return false;
	}
	return copy_end(conn, phase, err);
}

/* a lead_results row: the run's id, then the result columns */
struct result_rows
{
	const struct ruleset *rs;
	const struct batch *b;
	int64_t run_id;
};

static void
format_result(struct strbuf *sb, const void *ctx, size_t i)
{
	const struct result_rows *r = ctx;

	sb_printf(sb, "%" PRId64 "\t", r->run_id);
	writeback_row(sb, r->rs, r->b, i);
}

static bool
write_leads(PGconn *conn, const struct ruleset *rs, const struct batch *b, int64_t run_id,
            struct error *err)
{
	char sql[1024];
	size_t len;
	struct result_rows r = {.rs = rs, .b = b, .run_id = run_id};

	len = (size_t) snprintf(sql, sizeof(sql), "COPY refinery.lead_results_%" PRId64 " (run_id",
	                        run_id);
	for (int c = 0; writeback_columns[c]; c++)
		len += (size_t) snprintf(sql + len, sizeof(sql) - len, ", %s", writeback_columns[c]);
	snprintf(sql + len, sizeof(sql) - len, ") FROM STDIN");
	return writeback_copy(conn, sql, "writing the lead results", format_result, &r, NULL, b->n,
	                      "write", err);
}

static bool
write_stages(PGconn *conn, const struct pipeline_result *pr, int64_t run_id, struct error *err)
{
	for (int k = 0; k < pr->nstages; k++)
	{
		const struct stage_stats *st = &pr->st[k];
		struct strbuf counters;
		char a[32], b[32], c[32], d[32], e[32];
		const char *params[7];
		PGresult *res;

		sb_init(&counters);
		sb_putc(&counters, '{');
		for (int j = 0; j < st->ncounters; j++)
		{
			sb_json_str(&counters, st->counters[j].name);
			sb_printf(&counters, ": %zu%s", st->counters[j].value,
			          j + 1 < st->ncounters ? ", " : "");
		}
		sb_putc(&counters, '}');
		if (counters.oom)
			return error_oom(err);
		snprintf(a, sizeof(a), "%" PRId64, run_id);
		snprintf(b, sizeof(b), "%d", k + 1);
		snprintf(c, sizeof(c), "%zu", st->rows_in);
		snprintf(d, sizeof(d), "%zu", st->rows_out);
		snprintf(e, sizeof(e), "%.6f", st->seconds);
		params[0] = a, params[1] = b, params[2] = st->name, params[3] = c, params[4] = d;
		params[5] = e, params[6] = counters.data;
		res = pg_query(conn, "writing the stage statistics",
		               "INSERT INTO refinery.run_stages (run_id, ord, stage, rows_in, rows_out, "
		               "seconds, counters) VALUES ($1, $2, $3, $4, $5, $6, $7)",
		               7, params, err);
		sb_free(&counters);
		if (res == NULL)
			return false;
		PQclear(res);
	}
	return true;
}

/*
 * The run's summary tables go by COPY, as the leads do: the stages fill
 * plain rows (cohort_summarise(), match_rep_summaries(),
 * match_source_summaries()) and only this file turns them into text for
 * the server, so no SQL is ever assembled from values.
 */
void
writeback_cohort_rows(struct strbuf *sb, int64_t run_id, const struct cohort_summary *rows, int n)
{
	for (int r = 0; r < n; r++)
	{
		const struct cohort_summary *o = &rows[r];

		sb_printf(sb, "%" PRId64 "\t", run_id);
		sb_copy_text(sb, o->name);
		sb_printf(sb, "\t%d\t%zu\t", o->ord, o->leads);
		if (o->leads > 0)
			sb_printf(sb, "%.2f\t%.2f\t%.17g\t", o->score_min, o->score_max, o->mean_score);
		else
			sb_puts(sb, "\\N\t\\N\t\\N\t");
		if (o->expected_conversions >= 0)
			sb_printf(sb, "%.17g\t", o->expected_conversions);
		else
			sb_puts(sb, "\\N\t");
		sb_printf(sb, "%.17g\t%ld\t", o->target_rate, o->sla_hours);
		sb_copy_text(sb, o->channel_plan);
		sb_putc(sb, '\n');
	}
}

void
writeback_rep_rows(struct strbuf *sb, int64_t run_id, const struct match_rep_summary *rows, int n)
{
	for (int k = 0; k < n; k++)
	{
		sb_printf(sb, "%" PRId64 "\t%" PRId64 "\t", run_id, rows[k].rep_id);
		sb_copy_text(sb, rows[k].name);
		sb_printf(sb, "\t%s\t", rows[k].active ? "true" : "false");
		if (rows[k].capacity < 0)
			sb_puts(sb, "\\N");
		else
			sb_printf(sb, "%ld", rows[k].capacity);
		sb_printf(sb, "\t%ld\t%.17g\t%.17g\n", rows[k].assigned, rows[k].expected_conversions,
		          rows[k].close_rate);
	}
}

void
writeback_rep_source_rows(struct strbuf *sb, int64_t run_id,
                          const struct match_source_summary *rows, int n)
{
	for (int k = 0; k < n; k++)
	{
		sb_printf(sb, "%" PRId64 "\t%" PRId64 "\t", run_id, rows[k].rep_id);
		sb_copy_text(sb, rows[k].source);
		sb_printf(sb, "\t%ld\t%ld\t%.17g\n", rows[k].attempts, rows[k].wins, rows[k].rate_smoothed);
	}
}

/* COPY the rows in sb (COPY text) with the statement sql. */
static bool
copy_rows(PGconn *conn, const char *sql, const struct strbuf *sb, const char *phase,
          struct error *err)
{
	if (sb->oom)
		return error_oom(err);
	if (!copy_begin(conn, sql, phase, err))
		return false;
	if (PQputCopyData(conn, sb->data, (int) sb->len) != 1)
	{
		pg_fail(conn, NULL, phase, err);
		PQputCopyEnd(conn, "aborted");
		return false;
	}
	return copy_end(conn, phase, err);
}

/* refinery.run_cohorts: one row per cohort, highest rank first; nothing without cohorts. */
static bool
write_cohorts(PGconn *conn, const struct ruleset *rs, const struct batch *b, int64_t run_id,
              struct error *err)
{
	int nc = cohort_count(rs->cohort);
	struct cohort_summary *sum;
	struct strbuf sb;
	bool ok;

	if (nc == 0)
		return true;
	if ((sum = calloc((size_t) nc, sizeof(*sum))) == NULL)
		return error_oom(err);
	cohort_summarise(b, rs, sum);
	sb_init(&sb);
	writeback_cohort_rows(&sb, run_id, sum, nc);
	ok = copy_rows(conn,
	               "COPY refinery.run_cohorts (run_id, cohort, ord, leads, score_min, score_max, "
	               "mean_score, expected_conversions, target_rate, sla_hours, channel_plan) "
	               "FROM STDIN",
	               &sb, "writing the cohort summaries", err);
	sb_free(&sb);
	free(sum);
	return ok;
}

/*
 * refinery.run_reps (every rep, by id) and refinery.run_rep_sources (each
 * rep's history, by rep and source); nothing when the run has no reps.
 */
static bool
write_reps(PGconn *conn, const struct ruleset *rs, const struct batch *b, int64_t run_id,
           struct error *err)
{
	const char *phase = "writing the rep summaries";
	const struct rep_table *t = b->reps;
	struct match_rep_summary *rsum;
	struct match_source_summary *ssum;
	struct strbuf sb;
	int nr, ns;
	bool ok;

	if (t == NULL || t->nreps == 0)
		return true;
	rsum = malloc(sizeof(*rsum) * t->nreps);
	ssum = malloc(sizeof(*ssum) * (t->nstats ? t->nstats : 1));
	if (!rsum || !ssum)
	{
		free(rsum);
		free(ssum);
		return error_oom(err);
	}
	nr = match_rep_summaries(t, rs->match, rsum);
	ns = match_source_summaries(t, ssum);
	if (nr < 0 || ns < 0)
	{
		free(rsum);
		free(ssum);
		return error_set(err, EXIT_INTERNAL, "rep summaries requested before the match stage");
	}
	sb_init(&sb);
	writeback_rep_rows(&sb, run_id, rsum, nr);
	ok = copy_rows(conn,
	               "COPY refinery.run_reps (run_id, rep_id, rep_name, active, capacity, assigned, "
	               "expected_conversions, close_rate) FROM STDIN",
	               &sb, phase, err);
	if (ok && ns > 0)
	{
		sb_reset(&sb);
		writeback_rep_source_rows(&sb, run_id, ssum, ns);
		ok = copy_rows(conn,
		               "COPY refinery.run_rep_sources (run_id, rep_id, source, attempts, wins, "
		               "rate_smoothed) FROM STDIN",
		               &sb, phase, err);
	}
	sb_free(&sb);
	free(rsum);
	free(ssum);
	return ok;
}

bool
writeback_database(PGconn *conn, const struct ruleset *rs, const struct batch *b,
                   struct pipeline_result *pr, const struct run_meta *meta, int64_t *run_id,
                   struct error *err)
{
	char sql[1024], started[32], threads[16], pulled[32], kept[32], secs[32], host[256];
	struct strbuf counts;
	const char *params[12];
	PGresult *res;
	bool snapshot = rs->output->snapshot || meta->state == NULL;
	bool ok = false;
	struct stage_stats *st = pipeline_add(pr, "write");
	double t0 = pipeline_clock();

	progress_rows(b->n);
	*run_id = -1;
	/* the run may have begun it already, to hold the job's lease */
	if (PQtransactionStatus(conn) != PQTRANS_INTRANS &&
	    !pg_exec(conn, "starting the write transaction", RUN_BEGIN, err))
		return false;
	snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = %ld", rs->output->lock_timeout_ms);
	if (!pg_exec(conn, "starting the write transaction", sql, err) ||
	    !suppress_unchanged(conn, b->suppress, err))
		goto out;

	snprintf(started, sizeof(started), "%.6f", meta->started_at);
	snprintf(threads, sizeof(threads), "%d", meta->threads);
	snprintf(pulled, sizeof(pulled), "%zu", b->n);
	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	params[0] = started;
	params[1] = "running";
	params[2] = rs->sha256;
	params[3] = rs->text;
	params[4] = rules_files(rs->rules);
	params[5] = meta->source_desc;
	params[6] = PACKAGE_VERSION;
	params[7] = host;
	params[8] = threads;
	params[9] = pulled;
	params[10] = meta->job;
	params[11] = snapshot ? "true" : "false";
	res = pg_query(conn, "recording the run",
	               "INSERT INTO refinery.runs (started_at, status, rules_sha256, rules_text, "
	               "rules_files, source_desc, engine_version, host, threads, rows_pulled, job, "
	               "snapshot) "
	               "VALUES (to_timestamp($1), $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
	               "RETURNING run_id",
	               12, params, err);
	if (res == NULL)
		goto out;
	*run_id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);

	/* the snapshot: the run's own table, with no index while it fills; see sql/003_functions.sql */
	if (snapshot)
	{
		snprintf(sql, sizeof(sql), "SELECT refinery.new_results_table(%" PRId64 ")", *run_id);
		if (!pg_exec(conn, "creating the run's result table", sql, err) ||
		    !write_leads(conn, rs, b, *run_id, err))
			goto out;
		if (rs->output->analyze)
		{
			snprintf(sql, sizeof(sql), "ANALYZE refinery.lead_results_%" PRId64, *run_id);
			if (!pg_exec(conn, "analyzing the run's results", sql, err))
				goto out;
		}
		/* its primary key now, while the table is the run's own: the attach only adopts it */
		snprintf(sql, sizeof(sql), "SELECT refinery.index_results_table(%" PRId64 ")", *run_id);
		if (!pg_exec(conn, "indexing the run's results", sql, err))
			goto out;
	}
	if (meta->state && !state_write(conn, meta->state, rs, b, *run_id, err))
		goto out;
	if (pg_interrupted())
	{
		error_set(err, EXIT_INTERRUPTED, "interrupted while writing the results");
		goto out;
	}
	if (!write_cohorts(conn, rs, b, *run_id, err) || !write_reps(conn, rs, b, *run_id, err))
		goto out;

	/*
	 * Last, the attaches: each locks a shared parent (lead_results,
	 * lead_state) SHARE UPDATE EXCLUSIVE until the transaction ends, which
	 * would make another job's run wait to attach its own; so only the
	 * short statements recording the run follow them before the COMMIT.
	 * A full write's change log, the long part, comes before any of them;
	 * the state's attach or swap, which may lock its parent ACCESS
	 * EXCLUSIVE, comes last, so that it waits for no other lock.
	 */
	if (meta->state && !state_attach_prepare(conn, meta->state, err))
		goto out;
	if (snapshot)
	{
		snprintf(sql, sizeof(sql), "SELECT refinery.attach_results_table(%" PRId64 ")", *run_id);
		if (!pg_exec(conn, "attaching the run's results", sql, err))
			goto out;
	}
	if (meta->state && !state_attach(conn, meta->state, err))
		goto out;
	if (st)
	{
		st->rows_in = st->rows_out = b->n;
		st->seconds = pipeline_clock() - t0;
	}
	if (!write_stages(conn, pr, *run_id, err))
		goto out;
	sb_init(&counts);
	sb_putc(&counts, '{');
	for (int v = 0; v < VERDICT__COUNT; v++)
		sb_printf(&counts, "\"%s\": %zu%s", verdict_name(v), pr->verdicts[v],
		          v + 1 < VERDICT__COUNT ? ", " : "");
	sb_putc(&counts, '}');
	snprintf(kept, sizeof(kept), "%zu", pr->verdicts[VERDICT_KEPT]);
	{
		struct timeval tv;

		gettimeofday(&tv, NULL);
		snprintf(secs, sizeof(secs), "%.3f",
		         (double) tv.tv_sec + (double) tv.tv_usec / 1e6 - meta->started_at);
	}
	{
		char id[32], nnew[32], nchanged[32], nvanished[32];
		const char *p[10];
		struct strbuf warn;
		const struct state_counts *c = meta->state ? state_counts(meta->state) : NULL;

		snprintf(id, sizeof(id), "%" PRId64, *run_id);
		p[0] = meta->dry_run ? "dry_run" : "committed";
		p[1] = kept;
		p[2] = counts.data ? counts.data : "{}";
		p[3] = secs;
		p[4] = id;
		p[5] = p[6] = p[7] = p[8] = NULL;
		if (c)
		{
			snprintf(nnew, sizeof(nnew), "%zu", c->new_leads);
			/* what was written: rows the queue changed since they were read were not */
			snprintf(nchanged, sizeof(nchanged), "%zu", c->changed + c->returned - c->skipped);
			snprintf(nvanished, sizeof(nvanished), "%zu", c->vanished - c->skipped_vanished);
			p[5] = c->full ? "true" : "false";
			p[6] = nnew;
			p[7] = nchanged;
			p[8] = nvanished;
		}
		/* the warnings as an array literal: each element quoted, " and \ escaped */
		sb_init(&warn);
		sb_putc(&warn, '{');
		for (int k = 0; k < meta->nwarnings; k++)
		{
			sb_puts(&warn, k ? ",\"" : "\"");
			for (const char *q = meta->warnings[k]; *q; q++)
			{
				if (*q == '"' || *q == '\\')
					sb_putc(&warn, '\\');
				sb_putc(&warn, *q);
			}
			sb_putc(&warn, '"');
		}
		sb_putc(&warn, '}');
		p[9] = warn.data;
		res = counts.oom || warn.oom
		          ? NULL
		          : pg_query(conn, "recording the run",
		                     "UPDATE refinery.runs SET status = $1, finished_at = "
		                     "clock_timestamp(), rows_kept = $2, counts = $3, "
		                     "seconds_total = $4, full_write = $6, leads_new = $7, "
		                     "leads_changed = $8, leads_vanished = $9, warnings = $10 "
		                     "WHERE run_id = $5",
		                     10, p, err);
		if (res == NULL && (counts.oom || warn.oom))
			error_oom(err);
		sb_free(&warn);
	}
	sb_free(&counts);
	if (res == NULL)
		goto out;
	PQclear(res);

	if (meta->dry_run)
	{
		ok = pg_exec(conn, "rolling back the dry run", "ROLLBACK", err);
		return ok;
	}
	/*
	 * A signal that came while no statement ran found nothing to cancel (the
	 * server drops a cancel request for an idle session): honour it here,
	 * the last moment the run can still be rolled back.
	 */
	if (pg_interrupted())
	{
		error_set(err, EXIT_INTERRUPTED, "interrupted before commit");
		goto out;
	}
#ifdef ENABLE_FAULT_HOOKS
	if (getenv("REFINERY_FAULT") && strcmp(getenv("REFINERY_FAULT"), "commit") == 0)
	{
		/* the COMMIT is on its way; the engine dies before it hears back */
		PQsendQuery(conn, "COMMIT");
		PQflush(conn);
		usleep(200000);
		raise(SIGKILL);
	}
#endif
	ok = pg_exec(conn, "committing the run", "COMMIT", err);
	if (!ok && err->code == EXIT_CONNECTION)
		error_hint(err,
		           "The connection was lost during COMMIT, so whether run %" PRId64
		           " was committed is unknown: look for it in refinery.runs before running "
		           "again.",
		           *run_id);
	return ok;

out:
	/* on a live connection roll back; on a dead one the server already has */
	if (PQstatus(conn) == CONNECTION_OK)
	{
		res = PQexec(conn, "ROLLBACK");
		PQclear(res);
	}
	return false;
}

bool
writeback_csv(const struct ruleset *rs, const struct batch *b, const struct pipeline_result *pr,
              const struct run_meta *meta, struct error *err)
{
	char path[4096];
	struct csv_writer_opts o;
	struct csv_writer *w;
	int ncols = WRITEBACK_NCOLS;
	const char *fields[WRITEBACK_NCOLS];
	size_t lens[WRITEBACK_NCOLS];
	bool nulls[WRITEBACK_NCOLS];
	struct strbuf sb;
	bool ok = true;

	(void) pr;
	(void) meta;
	progress_stage("write"); /* no stage_stats: the CSV write is not in the run's timings */
	progress_rows(b->n);
	snprintf(path, sizeof(path), "%s/lead_results.csv", rs->output->csv_dir);
	csvio_writer_opts_init(&o);
	o.formula_guard = rs->output->csv_formula_guard;
	o.crlf = rs->output->csv_crlf;
	o.file_mode = rs->output->file_mode;
	if ((w = csvio_writer_open(path, &o, err)) == NULL)
		return false;
	for (int k = 0; k < ncols; k++)
	{
		fields[k] = writeback_columns[k];
		lens[k] = strlen(fields[k]);
		nulls[k] = false;
	}
	ok = csvio_writer_row(w, fields, lens, nulls, ncols, err);
	sb_init(&sb);
	for (size_t i = 0; i < b->n && ok; i++)
	{
		char *tmp[WRITEBACK_NCOLS];
		size_t tl[WRITEBACK_NCOLS];
		int nf;

		sb_reset(&sb);
		writeback_row(&sb, rs, b, i);
		if (sb.oom)
		{
			ok = error_oom(err);
			break;
		}
		if (i % 4096 == 0 && pg_interrupted())
		{
			ok = error_set(err, EXIT_INTERRUPTED, "interrupted while writing \"%s\"", path);
			break;
		}
		/* reuse the COPY text row: split it back into fields */
		nf = pull_split_copy_text(sb.data, sb.len, tmp, tl, ncols);
		if (nf != ncols)
		{
			ok = error_set(err, EXIT_INTERNAL, "result row %zu has %d fields, expected %d", i + 1,
			               nf, ncols);
			break;
		}
		for (int k = 0; k < ncols; k++)
		{
			fields[k] = tmp[k] ? tmp[k] : "";
			lens[k] = tl[k];
			nulls[k] = tmp[k] == NULL;
		}
		ok = csvio_writer_row(w, fields, lens, nulls, ncols, err);
	}
	sb_free(&sb);
	if (!ok)
	{
		csvio_writer_abort(w);
		return false;
	}
	return csvio_writer_commit(w, err);
}
