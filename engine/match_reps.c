/*
 * match_reps.c
 *    The rep table: the reps and their history by source, each row checked
 *    as it is added, with an index by rep id.  sidedata.c reads the rows
 *    from the [match] queries or CSV files and hands them to
 *    match_side_row().  The table owns its strings (an arena).
 */
#include "config.h"

#include "match_int.h"

/* ============================================================= rep table */

/* Well-formed UTF-8 (so that the server cannot refuse the summaries' names and sources). */
static bool
utf8_valid(const char *s)
{
	return csvio_utf8_valid(s, strlen(s), NULL);
}

static inline uint32_t
hash_id(int64_t id)
{
	uint64_t x = (uint64_t) id + 0x9E3779B97F4A7C15ULL;

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return (uint32_t) (x ^ (x >> 31));
}

static bool
index_rebuild(struct rep_table *t, int cap)
{
	int32_t *ix = malloc(sizeof(int32_t) * cap);

	if (ix == NULL)
		return false;
	for (int i = 0; i < cap; i++)
		ix[i] = -1;
	for (int r = 0; r < t->nreps; r++)
	{
		uint32_t h = hash_id(t->reps[r].rep_id) & (cap - 1);

		while (ix[h] >= 0)
			h = (h + 1) & (cap - 1);
		ix[h] = r;
	}
	free(t->index);
	t->index = ix;
	t->index_cap = cap;
	return true;
}

int
rep_table_find(const struct rep_table *t, int64_t rep_id)
{
	uint32_t h;

	if (t == NULL || t->index_cap == 0)
		return -1;
	h = hash_id(rep_id) & (t->index_cap - 1);
	while (t->index[h] >= 0)
	{
		if (t->reps[t->index[h]].rep_id == rep_id)
			return t->index[h];
		h = (h + 1) & (t->index_cap - 1);
	}
	return -1;
}

struct rep_table *
rep_table_new(void)
{
	struct rep_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if ((t->arena = arena_new(0)) == NULL || !index_rebuild(t, 64))
	{
		rep_table_free(t);
		return NULL;
	}
	return t;
}

/* Drop what smoothing derived; the table is then as loaded. */
void
mt_smooth_clear(struct rep_table *t)
{
	free(t->order);
	free(t->sources);
	free(t->source_attempts);
	free(t->source_wins);
	free(t->source_rate);
	free(t->ratio);
	free(t->src_index);
	t->order = NULL;
	t->sources = NULL;
	t->source_attempts = t->source_wins = NULL;
	t->source_rate = t->ratio = NULL;
	t->src_index = NULL;
	t->nsources = 0;
	t->src_index_cap = 0;
	t->smoothed = false;
}

void
rep_table_free(struct rep_table *t)
{
	if (t == NULL)
		return;
	mt_smooth_clear(t);
	free(t->reps);
	free(t->stats);
	free(t->index);
	arena_free(t->arena);
	free(t);
}

bool
rep_table_add_rep(struct rep_table *t, int64_t rep_id, const char *name, bool active, int capacity,
                  struct error *err)
{
	struct rep *r;

	if (rep_id < 0)
		return error_set(err, EXIT_DATA, "rep id \"%" PRId64 "\" is negative", rep_id);
	if (capacity < 0 && capacity != REP_CAPACITY_UNLIMITED)
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": capacity \"%d\" is negative", rep_id,
		                 capacity);
	if (capacity > MAX_CAPACITY)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\": capacity \"%d\" is above %d "
		                 "leads a day",
		                 rep_id, capacity, MAX_CAPACITY);
	if (name != NULL && !utf8_valid(name))
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": name is not valid UTF-8", rep_id);
	if (rep_table_find(t, rep_id) >= 0)
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\" is listed twice", rep_id);
	if (t->nreps == t->reps_cap)
	{
		int ncap = t->reps_cap ? t->reps_cap * 2 : 64;
		struct rep *nr = realloc(t->reps, sizeof(*nr) * ncap);

		if (nr == NULL)
			return mt_oom(err);
		t->reps = nr;
		t->reps_cap = ncap;
	}
	r = &t->reps[t->nreps];
	memset(r, 0, sizeof(*r));
	r->rep_id = rep_id;
	r->active = active;
	r->capacity = capacity;
	r->first_stat = -1;
	if (name != NULL && (r->name = arena_strdup(t->arena, name)) == NULL)
		return mt_oom(err);
	t->nreps++;
	if (t->nreps * 2 > t->index_cap)
	{
		/* the rebuild indexes every rep, the new one too */
		if (!index_rebuild(t, t->index_cap * 2))
		{
			t->nreps--;
			return mt_oom(err);
		}
	}
	else
	{
		uint32_t h = hash_id(rep_id) & (t->index_cap - 1);

		while (t->index[h] >= 0)
			h = (h + 1) & (t->index_cap - 1);
		t->index[h] = t->nreps - 1;
	}
	mt_smooth_clear(t);
	return true;
}

bool
rep_table_add_stat(struct rep_table *t, int64_t rep_id, const char *source, long attempts,
                   long wins, struct error *err)
{
	int r = rep_table_find(t, rep_id);
	int last = -1;
	struct rep_stat *s;

	if (r < 0)
	{
		error_set(err, EXIT_DATA, "rep statistics name unknown rep \"%" PRId64 "\"", rep_id);
		return error_hint(err, "Every rep_id of the statistics must be in the reps list.");
	}
	if (source == NULL)
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": statistics row without a source",
		                 rep_id);
	if (!utf8_valid(source))
		return error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": source is not valid UTF-8", rep_id);
	if (attempts < 0 || wins < 0)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\" source \"%s\": negative count "
		                 "(attempts \"%ld\", wins \"%ld\")",
		                 rep_id, source, attempts, wins);
	if (wins > attempts)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\" source \"%s\": wins \"%ld\" exceed "
		                 "attempts \"%ld\"",
		                 rep_id, source, wins, attempts);
	if (attempts > INT32_MAX)
		return error_set(err, EXIT_DATA,
		                 "rep \"%" PRId64 "\" source \"%s\": attempts \"%ld\" "
		                 "exceed %d",
		                 rep_id, source, attempts, INT32_MAX);
	for (int k = t->reps[r].first_stat; k >= 0; k = t->stats[k].next)
	{
		if (strcmp(t->stats[k].source, source) == 0)
		{
			error_set(err, EXIT_DATA,
			          "rep \"%" PRId64 "\" source \"%s\" is listed twice in the "
			          "rep statistics",
			          rep_id, source);
			return error_hint(err, "Sum the rows of one rep and source (GROUP BY rep_id, "
			                       "source).");
		}
		last = k;
	}
	if (t->nstats == t->stats_cap)
	{
		int ncap = t->stats_cap ? t->stats_cap * 2 : 256;
		struct rep_stat *ns = realloc(t->stats, sizeof(*ns) * ncap);

		if (ns == NULL)
			return mt_oom(err);
		t->stats = ns;
		t->stats_cap = ncap;
	}
	s = &t->stats[t->nstats];
	memset(s, 0, sizeof(*s));
	s->rep = r;
	s->next = -1;
	s->attempts = attempts;
	s->wins = wins;
	if ((s->source = arena_strdup(t->arena, source)) == NULL)
		return mt_oom(err);
	if (last < 0)
		t->reps[r].first_stat = t->nstats;
	else
		t->stats[last].next = t->nstats;
	t->nstats++;
	mt_smooth_clear(t);
	return true;
}

bool
rep_table_add_history(struct rep_table *t, int64_t rep_id, const char *source, long attempts,
                      long wins, struct error *err)
{
	int r = rep_table_find(t, rep_id);

	if (r >= 0 && source != NULL)
		for (int k = t->reps[r].first_stat; k >= 0; k = t->stats[k].next)
			if (strcmp(t->stats[k].source, source) == 0)
			{
				struct rep_stat *st = &t->stats[k];

				if (attempts < 0 || wins < 0 || wins > attempts ||
				    attempts > INT32_MAX - st->attempts)
					return error_set(err, EXIT_DATA,
					                 "rep \"%" PRId64 "\" source \"%s\": %ld attempts and %ld "
					                 "wins cannot be added to its history",
					                 rep_id, source, attempts, wins);
				st->attempts += attempts;
				st->wins += wins;
				mt_smooth_clear(t);
				return true;
			}
	return rep_table_add_stat(t, rep_id, source, attempts, wins, err);
}

/* =============================================================== loading */

/*
 * The reps and their history arrive as rows of named columns, from a
 * query's result or a CSV file; both are turned into calls of
 * rep_table_add_rep() / _add_stat(), which validate and name the rep.
 */
static const char *const side_columns[2][4] = {{"rep_id", "name", "active", "capacity"},
                                               {"rep_id", "source", "attempts", "wins"}};

const char *
match_side_column(enum match_side_kind kind, int k)
{
	return side_columns[kind][k];
}

static bool
parse_int64(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

bool
match_side_row(struct rep_table *t, enum match_side_kind kind, const char *const *v,
               const char *place, struct error *err)
{
	int64_t id, x, y;
	bool ok;

	if (!parse_int64(v[0], &id))
		ok = error_set(err, EXIT_DATA, "rep_id \"%s\" is not an integer", v[0] ? v[0] : "NULL");
	else if (kind == MATCH_SIDE_REPS)
	{
		int active = util_parse_bool(v[2]);

		if (active < 0)
			ok = error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": active \"%s\" is not a boolean",
			               id, v[2] ? v[2] : "NULL");
		else if (v[3] != NULL && *v[3] != '\0' &&
		         (!parse_int64(v[3], &x) || x < INT32_MIN || x > INT32_MAX))
			ok = error_set(err, EXIT_DATA,
			               "rep \"%" PRId64 "\": capacity \"%s\" is not an "
			               "integer",
			               id, v[3]);
		else if (v[3] != NULL && *v[3] != '\0' && x < 0)
			/* unlimited is an empty capacity only: -1 is as negative as -5 */
			ok = error_set(err, EXIT_DATA, "rep \"%" PRId64 "\": capacity \"%s\" is negative", id,
			               v[3]);
		else
			ok = rep_table_add_rep(t, id, v[1], active == 1,
			                       v[3] == NULL || *v[3] == '\0' ? REP_CAPACITY_UNLIMITED : (int) x,
			                       err);
	}
	else if (!parse_int64(v[2], &x) || !parse_int64(v[3], &y) || x > LONG_MAX || y > LONG_MAX)
		ok = error_set(err, EXIT_DATA,
		               "rep \"%" PRId64 "\" source \"%s\": attempts \"%s\" and "
		               "wins \"%s\" must be integers",
		               id, v[1] ? v[1] : "NULL", v[2] ? v[2] : "NULL", v[3] ? v[3] : "NULL");
	else
		ok = rep_table_add_stat(t, id, v[1], (long) x, (long) y, err);
	if (!ok && err->code != EXIT_INTERNAL)
		error_detail(err, "In %s.", place);
	return ok;
}

bool
match_needs_db(const struct match_config *c)
{
	return c != NULL && (c->reps_query != NULL || c->stats_query != NULL);
}
