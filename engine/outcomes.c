/*
 * outcomes.c
 *    Outcomes read back at the start of a run and what they change (see
 *    outcomes.h for the contract).
 *
 * The outcomes of a job are read with one query, oldest first per lead, so
 * each lead's latest outcome is the last one seen and the attempts of the
 * rep holding it are counted in the same pass.  Effects only set verdicts,
 * the opt-out flag and the holds of the batch, in row order: the same
 * outcomes give the same result whatever the thread count.
 */
#include "config.h"

#include <ctype.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "outcomes.h"
#include "pg.h"
#include "ruleset.h"
#include "state.h"
#include "strbuf.h"
#include "util.h"

/* stage counters keep the name they are given: one static name per outcome */
static const char *const read_names[OUTCOME__COUNT] = {NULL,
                                                       "read: won",
                                                       "read: lost",
                                                       "read: no_answer",
                                                       "read: busy",
                                                       "read: callback",
                                                       "read: refused",
                                                       "read: wrong_number",
                                                       "read: not_relevant"};

static const char *const names[OUTCOME__COUNT] = {NULL,        "won",          "lost",
                                                  "no_answer", "busy",         "callback",
                                                  "refused",   "wrong_number", "not_relevant"};

const char *
outcome_name(enum outcome o)
{
	return o > OUTCOME_NONE && o < OUTCOME__COUNT ? names[o] : NULL;
}

/* lower case, blanks around dropped, into buf */
static void
fold(const char *s, char *buf, size_t size)
{
	size_t n;

	while (*s && isspace((unsigned char) *s))
		s++;
	snprintf(buf, size, "%s", s);
	n = strlen(buf);
	while (n > 0 && isspace((unsigned char) buf[n - 1]))
		buf[--n] = '\0';
	for (char *p = buf; *p; p++)
		*p = (char) tolower((unsigned char) *p);
}

static enum outcome
by_name(const char *s)
{
	for (int o = 1; o < OUTCOME__COUNT; o++)
		if (strcmp(s, names[o]) == 0)
			return (enum outcome) o;
	return OUTCOME_NONE;
}

enum outcome
outcomes_map(const struct outcomes_config *c, const char *reported)
{
	char buf[256];
	enum outcome o;

	fold(reported, buf, sizeof(buf));
	if ((o = by_name(buf)) != OUTCOME_NONE)
		return o;
	for (int k = 0; c && k < c->n; k++)
		if (strcmp(c->reported[k], buf) == 0)
			return (enum outcome) c->outcome[k];
	return OUTCOME_NONE;
}

void
outcomes_config_free(struct outcomes_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->n; k++)
		free(c->reported[k]);
	free(c->reported);
	free(c->outcome);
	free(c->where);
	free(c->source_where);
	free(c);
}

/* [outcomes] keys read from a table; query, csv and map stay as code */
static const struct rules_param outcomes_params[] = {
    {"callback_hours", RULES_INT, 1, 8760, offsetof(struct outcomes_config, callback_hours), NULL},
    {"learn_rates", RULES_BOOL, 0, 0, offsetof(struct outcomes_config, learn_rates), NULL},
    {"rest_days", RULES_INT, 0, 3650, offsetof(struct outcomes_config, rest_days), NULL},
};

/* query or csv, not both; an empty value is none */
static bool
load_source(struct rules *r, struct outcomes_config *c, struct error *err)
{
	const char *q = rules_get(r, "outcomes", "query"), *f = rules_get(r, "outcomes", "csv");

	c->query = q && *q ? q : NULL;
	c->csv = f && *f ? f : NULL;
	if (c->query && c->csv)
	{
		error_set(err, EXIT_RULES, "%s: [outcomes] query and csv are both set",
		          rules_where(r, "outcomes", "csv"));
		return error_hint(err, "Read the outcomes either with a query or from a CSV file.");
	}
	if ((c->source_where = strdup(rules_where(r, "outcomes", c->query ? "query" : "csv"))) == NULL)
		return error_oom(err);
	return true;
}

bool
outcomes_config_load(struct rules *r, struct outcomes_config **out, struct error *err)
{
	struct outcomes_config *c = calloc(1, sizeof(*c));
	const char *value = rules_get(r, "outcomes", "map");
	char **items = NULL;
	int n;

	*out = c;
	if (c == NULL || (c->where = strdup(rules_where(r, "outcomes", "map"))) == NULL)
		return error_oom(err);
	if (!rules_load_params(r, "outcomes", outcomes_params, RULES_PARAMS_N(outcomes_params), c,
	                       err) ||
	    !load_source(r, c, err))
		return false;
	if (value == NULL || *value == '\0')
		return true;
	if ((n = rules_split_list(value, &items)) < 0)
		return error_oom(err);
	c->reported = calloc((size_t) (n ? n : 1), sizeof(char *));
	c->outcome = calloc((size_t) (n ? n : 1), sizeof(uint8_t));
	if (!c->reported || !c->outcome)
	{
		rules_list_free(items);
		return error_oom(err);
	}
	for (int k = 0; k < n; k++)
	{
		char *colon = strrchr(items[k], ':'), buf[256];
		enum outcome o;

		if (colon == NULL || colon == items[k] || colon[1] == '\0')
		{
			error_set(err, EXIT_RULES, "%s: [outcomes] map: \"%s\" is not reported:outcome",
			          c->where, items[k]);
			rules_list_free(items);
			return false;
		}
		*colon = '\0';
		fold(colon + 1, buf, sizeof(buf));
		if ((o = by_name(buf)) == OUTCOME_NONE)
		{
			error_set(err, EXIT_RULES, "%s: [outcomes] map: \"%s\" is not an outcome", c->where,
			          colon + 1);
			error_hint(err, "Outcomes are won, lost, no_answer, busy, callback, refused, "
			                "wrong_number and not_relevant.");
			rules_list_free(items);
			return false;
		}
		fold(items[k], buf, sizeof(buf));
		for (int j = 0; j < c->n; j++)
			if (strcmp(c->reported[j], buf) == 0)
			{
				error_set(err, EXIT_RULES, "%s: [outcomes] map: \"%s\" is mapped twice", c->where,
				          items[k]);
				rules_list_free(items);
				return false;
			}
		if ((c->reported[c->n] = strdup(buf)) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
		c->outcome[c->n++] = (uint8_t) o;
	}
	rules_list_free(items);
	return true;
}

/* ------------------------------------------------------------ reading */

/* a (lead, rep) pair an outcome settled, for learning the reps' rates */
struct settled
{
	size_t row; /* the lead's batch row */
	int64_t rep;
	bool won;
};

struct lead_outcomes
{
	size_t n;          /* batch rows */
	uint8_t *last;     /* enum outcome of each row's latest outcome, OUTCOME_NONE none */
	int32_t *attempts; /* no_answer/busy of the holding rep since the hold began */
	/* set only for a row with an outcome (last): */
	int64_t *rep; /* its rep */
	int64_t *due; /* a callback's due time (naive local seconds), BATCH_NO_TIME */
	int64_t *at;  /* the latest outcome's time (naive local seconds) */
	size_t read;  /* outcomes read */
	size_t of[OUTCOME__COUNT];
	struct settled *settled; /* one per (row, rep), by row then rep */
	size_t nsettled;
};

void
outcomes_free(struct lead_outcomes *lo)
{
	if (lo == NULL)
		return;
	free(lo->last);
	free(lo->rep);
	free(lo->attempts);
	free(lo->due);
	free(lo->at);
	free(lo->settled);
	free(lo);
}

static bool
settles(enum outcome o)
{
	return o == OUTCOME_WON || o == OUTCOME_LOST || o == OUTCOME_REFUSED ||
	       o == OUTCOME_NOT_RELEVANT;
}

static int
cmp_settled(const void *a, const void *b)
{
	const struct settled *x = a, *y = b;

	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->rep < y->rep ? -1 : x->rep > y->rep;
}

/* one entry per (row, rep), won when any of its outcomes was */
static void
settled_unique(struct lead_outcomes *lo)
{
	size_t k = 0;

	qsort(lo->settled, lo->nsettled, sizeof(*lo->settled), cmp_settled);
	for (size_t j = 0; j < lo->nsettled; j++)
	{
		if (k > 0 && lo->settled[k - 1].row == lo->settled[j].row &&
		    lo->settled[k - 1].rep == lo->settled[j].rep)
			lo->settled[k - 1].won |= lo->settled[j].won;
		else
			lo->settled[k++] = lo->settled[j];
	}
	lo->nsettled = k;
}

bool
outcomes_read(PGconn *conn, const struct ruleset *rs, const struct job_state *st,
              const struct batch *b, struct lead_outcomes **out, struct error *err)
{
	struct lead_outcomes *lo = calloc(1, sizeof(*lo));
	const char *params[1] = {rs->job->name};
	PGresult *res;

	*out = lo;
	if (lo == NULL)
		return error_oom(err);
	lo->n = b->n;
	lo->last = calloc(b->n ? b->n : 1, sizeof(*lo->last));
	lo->rep = malloc(sizeof(*lo->rep) * (b->n ? b->n : 1));
	lo->attempts = calloc(b->n ? b->n : 1, sizeof(*lo->attempts));
	lo->due = malloc(sizeof(*lo->due) * (b->n ? b->n : 1));
	lo->at = malloc(sizeof(*lo->at) * (b->n ? b->n : 1));
	if (!lo->last || !lo->rep || !lo->attempts || !lo->due || !lo->at)
		return error_oom(err);
	/*
	 * rep, due and at are set only for the leads with an outcome (last not
	 * OUTCOME_NONE), and read only for those: the pages of the others,
	 * most leads, are never written, so they take no memory.
	 */
	/*
	 * Times as the run's naive local seconds, oldest first per lead.  The
	 * cast to timestamp reads a time in the session's TimeZone with the
	 * zone's own rules, as the run writes times; AT TIME ZONE with the
	 * zone's name as text would take a name that is also an abbreviation
	 * (CET, EET, EST) as a fixed offset, an hour off in summer.
	 */
	/*
	 * The unread ones (read_by_run NULL) are noted by the same statement,
	 * so in the same snapshot: what outcomes_mark_read() marks is what was
	 * read.  A dialer's transaction that commits an outcome after this
	 * statement began is not seen by it, whenever it began.
	 */
	if (!pg_exec(conn, "reading the job's outcomes",
	             "CREATE TEMPORARY TABLE refinery_outcomes_read (lead_id text, rep_id bigint, "
	             "outcome text, at timestamptz) ON COMMIT DROP",
	             err))
		return false;
	res = pg_query(conn, "reading the job's outcomes",
	               "WITH unread AS (INSERT INTO refinery_outcomes_read "
	               "SELECT lead_id, rep_id, outcome, at FROM refinery.outcomes "
	               "WHERE job = $1 AND read_by_run IS NULL) "
	               "SELECT lead_id, rep_id, outcome, "
	               "extract(epoch FROM at::timestamp)::bigint, "
	               "to_char(at, 'YYYY-MM-DD HH24:MI:SS'), "
	               "extract(epoch FROM callback_at::timestamp)::bigint "
	               "FROM refinery.outcomes WHERE job = $1 ORDER BY lead_id, at, rep_id, outcome",
	               1, params, err);
	if (res == NULL)
		return false;
	if ((lo->settled = malloc(sizeof(*lo->settled) * ((size_t) PQntuples(res) + 1))) == NULL)
	{
		PQclear(res);
		return error_oom(err);
	}
	for (int t = 0; t < PQntuples(res); t++)
	{
		const char *lead = PQgetvalue(res, t, 0), *value = PQgetvalue(res, t, 2);
		int64_t rep = strtoll(PQgetvalue(res, t, 1), NULL, 10);
		int64_t at = strtoll(PQgetvalue(res, t, 3), NULL, 10);
		enum outcome o = outcomes_map(rs->outcomes, value);
		size_t i;

		if (o == OUTCOME_NONE)
		{
			error_set(err, EXIT_DATA,
			          "outcome \"%s\" of lead \"%s\" (rep %" PRId64
			          ", %s) is not in [outcomes] map",
			          value, lead, rep, PQgetvalue(res, t, 4));
			error_hint(err, "Map it in the rules (%s), e.g. map = %s:lost.",
			           rs->outcomes ? rs->outcomes->where : "[outcomes] map", value);
			PQclear(res);
			return false;
		}
		lo->read++;
		lo->of[o]++;
		if ((i = state_batch_row(st, lead)) == SIZE_MAX)
			continue; /* a lead the source no longer has */
		lo->last[i] = (uint8_t) o;
		lo->rep[i] = rep;
		lo->at[i] = at;
		if ((o == OUTCOME_NO_ANSWER || o == OUTCOME_BUSY) && rep == b->held_rep[i] &&
		    (b->held_since[i] == BATCH_NO_TIME || at >= b->held_since[i]))
			lo->attempts[i]++;
		lo->due[i] = BATCH_NO_TIME;
		if (o == OUTCOME_CALLBACK)
			lo->due[i] = PQgetisnull(res, t, 5) ? at + (int64_t) rs->outcomes->callback_hours * 3600
			                                    : strtoll(PQgetvalue(res, t, 5), NULL, 10);
		if (settles(o))
			lo->settled[lo->nsettled++] =
			    (struct settled){.row = i, .rep = rep, .won = o == OUTCOME_WON};
	}
	PQclear(res);
	settled_unique(lo);
	return true;
}

bool
outcomes_mark_read(PGconn *conn, const char *job, int64_t run_id, struct error *err)
{
	char id[32];
	const char *params[2] = {id, job};
	PGresult *res;

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	res = pg_query(conn, "marking the outcomes read",
	               "UPDATE refinery.outcomes o SET read_by_run = $1 FROM refinery_outcomes_read r "
	               "WHERE o.job = $2 AND o.lead_id = r.lead_id AND o.rep_id = r.rep_id "
	               "AND o.outcome = r.outcome AND o.at = r.at AND o.read_by_run IS NULL",
	               2, params, err);
	if (res == NULL)
		return false;
	PQclear(res);
	return true;
}

/* ------------------------------------------------------------ effects */

void
outcomes_apply_before(const struct lead_outcomes *lo, struct batch *b, struct stage_stats *st)
{
	size_t refused = 0, won = 0;

	if (lo == NULL)
		return;
	stage_count(st, "outcomes read", lo->read);
	for (int o = 1; o < OUTCOME__COUNT; o++)
		if (lo->of[o])
			stage_count(st, read_names[o], lo->of[o]);
	for (size_t i = 0; i < b->n; i++)
	{
		if (lo->last[i] == OUTCOME_REFUSED)
		{
			/* person-level: the dedupe stage removes the person's other records too */
			b->optout[i] = 1;
			if (b->verdict[i] == VERDICT_KEPT)
				batch_mark(b, i, VERDICT_BLACKLISTED, "outcome.refused",
				           "refused when called (reported outcome)");
			refused++;
		}
		else if (lo->last[i] == OUTCOME_WON && b->verdict[i] == VERDICT_KEPT)
		{
			batch_mark(b, i, VERDICT_CUSTOMER, "outcome.won", "won: a customer now");
			won++;
		}
	}
	stage_count(st, "refused: opted out", refused);
	stage_count(st, "won: customer", won);
}

/*
 * A lead lost or not relevant lately rests: nurture, out of the call lists,
 * until [outcomes] rest_days after the outcome (0: offered again at once).
 */
static size_t
rest_lost(const struct lead_outcomes *lo, const struct ruleset *rs, struct batch *b, int64_t now)
{
	long days = rs->outcomes ? rs->outcomes->rest_days : 0;
	size_t rested = 0;

	for (size_t i = 0; i < b->n && days > 0; i++)
	{
		enum outcome o = (enum outcome) lo->last[i];
		int64_t until;
		struct strbuf reason;
		const char *r = NULL;

		/* at[i] is set only for a lead with an outcome */
		if (b->verdict[i] != VERDICT_KEPT || (o != OUTCOME_LOST && o != OUTCOME_NOT_RELEVANT) ||
		    now >= (until = lo->at[i] + (int64_t) days * 86400))
			continue;
		sb_init(&reason);
		sb_printf(&reason, "%s lately: rests until ", o == OUTCOME_LOST ? "lost" : "not relevant");
		sb_time(&reason, until); /* "YYYY-MM-DD HH:MM:SS": the day is what the reason says */
		if (!reason.oom && reason.len >= 9)
			r = batch_strndup(b, reason.data, reason.len - 9);
		sb_free(&reason);
		if (r == NULL)
			r = "lost or not relevant lately: rests";
		batch_mark(b, i, VERDICT_NURTURE, "outcome.rest", r);
		rested++;
	}
	return rested;
}

void
outcomes_apply_before_match(const struct lead_outcomes *lo, const struct ruleset *rs,
                            struct batch *b, int64_t now, struct stage_stats *st)
{
	uint64_t *dead = NULL;
	int64_t *won_clusters = NULL;
	size_t ndead = 0, nwon = 0, customers = 0, deadleads = 0, ended = 0, tried = 0, callbacks = 0;
	long max_attempts = rs->match ? rs->match->max_attempts : 0;

	if (lo == NULL)
		return;
	dead = malloc(sizeof(*dead) * (b->n ? b->n : 1));
	won_clusters = malloc(sizeof(*won_clusters) * (b->n ? b->n : 1));
	if (dead == NULL || won_clusters == NULL)
	{
		/* the effects are an addition: without memory for them the run goes on as before */
		free(dead);
		free(won_clusters);
		stage_count(st, "effects skipped: out of memory", 1);
		return;
	}
	for (size_t i = 0; i < b->n; i++)
	{
		if (lo->last[i] == OUTCOME_WRONG_NUMBER && b->phones[i][0] != 0)
			dead[ndead++] = b->phones[i][0];
		if (lo->last[i] == OUTCOME_WON && b->cluster_id[i] >= 0)
			won_clusters[nwon++] = b->cluster_id[i];
	}
	qsort(dead, ndead, sizeof(*dead), util_cmp_u64);
	qsort(won_clusters, nwon, sizeof(*won_clusters), util_cmp_i64);
	for (size_t i = 0; i < b->n; i++)
	{
		bool carries_dead = false;

		if (b->verdict[i] != VERDICT_KEPT)
			continue;
		if (nwon && b->cluster_id[i] >= 0 &&
		    bsearch(&b->cluster_id[i], won_clusters, nwon, sizeof(int64_t), util_cmp_i64))
		{
			batch_mark(b, i, VERDICT_CUSTOMER, "outcome.won",
			           "the person is a customer (another record was won)");
			customers++;
			continue;
		}
		for (int k = 0; k < BATCH_PHONES && ndead && !carries_dead; k++)
			carries_dead = b->phones[i][k] != 0 &&
			               bsearch(&b->phones[i][k], dead, ndead, sizeof(uint64_t), util_cmp_u64);
		if (carries_dead)
		{
			batch_mark(b, i, VERDICT_BLACKLISTED, "outcome.wrong_number",
			           "its number was reported wrong");
			deadleads++;
		}
	}
	/* the holds: what ends one, and attempts beyond [match] max_attempts */
	for (size_t i = 0; i < b->n; i++)
	{
		enum outcome o = (enum outcome) lo->last[i];

		if (o == OUTCOME_CALLBACK && lo->due[i] != BATCH_NO_TIME && b->verdict[i] == VERDICT_KEPT)
		{
			/* due when the person asked: the call order sees it */
			b->sla_due_at[i] = lo->due[i];
			callbacks++;
		}
		/* only an outcome since the hold began ends it: an older one was the last rep's */
		if (b->held_rep[i] < 0 || o == OUTCOME_NONE || o == OUTCOME_CALLBACK ||
		    (b->held_since[i] != BATCH_NO_TIME && lo->at[i] < b->held_since[i]))
			continue;
		if (o == OUTCOME_NO_ANSWER || o == OUTCOME_BUSY)
		{
			if (max_attempts > 0 && lo->attempts[i] >= max_attempts)
			{
				b->held_rep[i] = -1;
				b->pinned[i] = 0;
				tried++;
			}
			continue;
		}
		b->held_rep[i] = -1;
		b->pinned[i] = 0;
		ended++;
	}
	free(dead);
	free(won_clusters);
	stage_count(st, "lost or not relevant: resting", rest_lost(lo, rs, b, now));
	stage_count(st, "won: customer by cluster", customers);
	stage_count(st, "wrong number: black-listed", deadleads);
	stage_count(st, "holds ended by an outcome", ended);
	stage_count(st, "holds ended: max_attempts", tried);
	stage_count(st, "callbacks due", callbacks);
}

void
outcomes_apply_due(const struct lead_outcomes *lo, struct job_state *st, struct batch *b)
{
	if (lo == NULL)
		return;
	for (size_t i = 0; i < b->n; i++)
		if (lo->last[i] == OUTCOME_CALLBACK && lo->due[i] != BATCH_NO_TIME &&
		    b->verdict[i] == VERDICT_KEPT)
			state_set_due(st, b, i, lo->due[i]);
}

/* ------------------------------------------------------------ learning */

/* the settled pairs by rep, then source (byte order); no source last */
static const struct batch *sort_batch; /* qsort has no context argument */

static int
cmp_rep_source(const void *a, const void *b)
{
	const struct settled *x = a, *y = b;
	const char *sx = batch_value(sort_batch, FIELD_SOURCE, x->row);
	const char *sy = batch_value(sort_batch, FIELD_SOURCE, y->row);

	if (x->rep != y->rep)
		return x->rep < y->rep ? -1 : 1;
	if (sx == NULL || sy == NULL)
		return (sx == NULL) - (sy == NULL);
	return strcmp(sx, sy);
}

bool
outcomes_learn(const struct lead_outcomes *lo, const struct ruleset *rs, struct batch *b,
               struct stage_stats *st, struct error *err)
{
	struct settled *p;
	size_t used = 0, wins = 0;

	if (lo == NULL || b->reps == NULL || !rs->outcomes->learn_rates || lo->nsettled == 0)
		return true;
	if ((p = malloc(sizeof(*p) * lo->nsettled)) == NULL)
		return error_oom(err);
	memcpy(p, lo->settled, sizeof(*p) * lo->nsettled);
	sort_batch = b;
	qsort(p, lo->nsettled, sizeof(*p), cmp_rep_source);
	sort_batch = NULL;
	for (size_t j = 0; j < lo->nsettled;)
	{
		const char *source = batch_value(b, FIELD_SOURCE, p[j].row);
		long attempts = 0, won = 0;
		size_t k = j;

		for (; k < lo->nsettled && p[k].rep == p[j].rep; k++)
		{
			const char *sk = batch_value(b, FIELD_SOURCE, p[k].row);

			if ((sk == NULL) != (source == NULL) || (sk && strcmp(sk, source) != 0))
				break;
			attempts++;
			won += p[k].won;
		}
		j = k;
		if (source == NULL || rep_table_find(b->reps, p[k - 1].rep) < 0)
			continue; /* a lead without a source, or a rep no longer listed */
		if (!rep_table_add_history(b->reps, p[k - 1].rep, source, attempts, won, err))
		{
			free(p);
			return false;
		}
		used += (size_t) attempts;
		wins += (size_t) won;
	}
	free(p);
	stage_count(st, "learnt: attempts", used);
	stage_count(st, "learnt: wins", wins);
	return true;
}
