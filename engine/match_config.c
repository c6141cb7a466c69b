/*
 * match_config.c
 *    The [match] rules: where the reps come from, the horizon, the
 *    overflow and the holds, the model of a lead's base probability p_lead
 *    (logistic, points or per cohort), the priors and the score band; and
 *    p_lead itself.
 */
#include "config.h"

#include "match_int.h"

static const char *const overflow_names[] = {"keep", "nurture", NULL};
static const char *const p_model_names[] = {"logistic", "points", "cohort", NULL};

static bool
bad(struct rules *r, const char *key, const char *value, const char *what, struct error *err)
{
	return error_set(err, EXIT_RULES, "%s: [match] %s: \"%s\" %s", rules_where(r, "match", key),
	                 key, value, what);
}

static bool
get_string(struct rules *r, const char *key, char **out, struct error *err)
{
	const char *v = rules_get(r, "match", key);

	*out = NULL;
	if (v == NULL || *v == '\0')
		return true;
	if ((*out = strdup(v)) == NULL)
		return mt_oom(err);
	return true;
}

/* "auto" (or absent) gives 0; else a positive number of expected wins. */
static bool
get_prior(struct rules *r, const char *key, double *out, struct error *err)
{
	const char *v = rules_get(r, "match", key);
	char *end;

	*out = 0;
	if (v == NULL || *v == '\0' || strcmp(v, "auto") == 0)
		return true;
	*out = strtod(v, &end);
	if (end == v || *end != '\0' || !isfinite(*out) || *out < 0.01 || *out > PRIOR_MAX)
		return bad(r, key, v, "is not \"auto\" or a number between 0.01 and 1000000", err);
	return true;
}

/* Split "a:b" at the last colon; false when there is none or a side is empty. */
static bool
split_pair(char *item, char **left, char **right)
{
	char *colon = strrchr(item, ':');

	if (colon == NULL || colon == item || colon[1] == '\0')
		return false;
	*colon = '\0';
	*left = item;
	*right = colon + 1;
	/* trim the spaces around the colon */
	for (char *e = colon - 1; e > item && (*e == ' ' || *e == '\t'); e--)
		*e = '\0';
	while (**right == ' ' || **right == '\t')
		(*right)++;
	return **left != '\0' && **right != '\0';
}

static bool
parse_number(const char *s, double *out)
{
	char *end;

	*out = strtod(s, &end);
	return end != s && *end == '\0' && isfinite(*out);
}

/* p_points = score:p, score:p, ... with ascending scores in 0..100 and p in 0..1 */
static bool
load_points(struct rules *r, struct match_config *c, struct error *err)
{
	const char *v = rules_get(r, "match", "p_points");
	char **items;
	int n;
	bool ok = true;

	if (v == NULL || *v == '\0')
		return true;
	if ((n = rules_split_list(v, &items)) < 0)
		return mt_oom(err);
	c->point_score = malloc(sizeof(double) * (n ? n : 1));
	c->point_p = malloc(sizeof(double) * (n ? n : 1));
	if (!c->point_score || !c->point_p)
	{
		rules_list_free(items);
		return mt_oom(err);
	}
	for (int i = 0; i < n && ok; i++)
	{
		char *a, *b;
		double x, p;

		if (!split_pair(items[i], &a, &b) || !parse_number(a, &x) || !parse_number(b, &p))
			ok = bad(r, "p_points", v, "is not a list of score:probability pairs", err);
		else if (x < 0 || x > 100 || p < 0 || p > 1)
			ok = bad(r, "p_points", v, "has a score outside 0..100 or a probability outside 0..1",
			         err);
		else if (i > 0 && x <= c->point_score[i - 1])
			ok = bad(r, "p_points", v, "does not list its scores in ascending order", err);
		else
		{
			c->point_score[i] = x;
			c->point_p[i] = p;
			c->npoints = i + 1;
		}
	}
	rules_list_free(items);
	return ok;
}

/* p_cohort = name:rate, ... */
static bool
load_cohorts(struct rules *r, struct match_config *c, struct error *err)
{
	const char *v = rules_get(r, "match", "p_cohort");
	char **items;
	int n;
	bool ok = true;

	if (v == NULL || *v == '\0')
		return true;
	if ((c->cohort_where = strdup(rules_where(r, "match", "p_cohort"))) == NULL)
		return mt_oom(err);
	if ((n = rules_split_list(v, &items)) < 0)
		return mt_oom(err);
	c->cohort_name = calloc(n ? n : 1, sizeof(char *));
	c->cohort_p = malloc(sizeof(double) * (n ? n : 1));
	if (!c->cohort_name || !c->cohort_p)
	{
		rules_list_free(items);
		return mt_oom(err);
	}
	for (int i = 0; i < n && ok; i++)
	{
		char *a, *b;
		double p;

		if (!split_pair(items[i], &a, &b) || !parse_number(b, &p))
			ok = bad(r, "p_cohort", v, "is not a list of cohort:probability pairs", err);
		else if (p < 0 || p > 1)
			ok = bad(r, "p_cohort", v, "has a probability outside 0..1", err);
		else
		{
			for (int j = 0; j < c->ncohorts && ok; j++)
				if (strcmp(c->cohort_name[j], a) == 0)
					ok = bad(r, "p_cohort", v, "names a cohort twice", err);
			if (ok && (c->cohort_name[i] = strdup(a)) == NULL)
				ok = mt_oom(err);
			if (ok)
			{
				c->cohort_p[i] = p;
				c->ncohorts = i + 1;
			}
		}
	}
	rules_list_free(items);
	return ok;
}

static bool
exclusive(struct rules *r, const char *a, const char *b, const char *va, const char *vb,
          struct error *err)
{
	if (va == NULL || vb == NULL)
		return true;
	error_set(err, EXIT_RULES, "%s: [match] %s and %s are both set", rules_where(r, "match", b), a,
	          b);
	return error_hint(err, "Give the reps (or their statistics) either as a query or as a CSV "
	                       "file, not both.");
}

/* RULES_ENUM stores an int */
_Static_assert(sizeof(enum match_overflow) == sizeof(int), "enum match_overflow is an int");
_Static_assert(sizeof(enum match_p_model) == sizeof(int), "enum match_p_model is an int");

/*
 * [match].  Code stays for the reps and stats sources (one of two each),
 * p_points and p_cohort (lists), the priors (optional) and score_band (a
 * multiple of 0.01), read after this table as before.
 */
static const struct rules_param match_params[] = {
    {"horizon_days", RULES_INT, 1, MAX_HORIZON, offsetof(struct match_config, horizon_days), NULL},
    {"overflow", RULES_ENUM, 0, 0, offsetof(struct match_config, overflow), overflow_names},
    {"hold_days", RULES_INT, 0, MAX_HOLD_DAYS, offsetof(struct match_config, hold_days), NULL},
    {"take_hours", RULES_INT, 1, 8760, offsetof(struct match_config, take_hours), NULL},
    {"max_attempts", RULES_INT, 0, 1000, offsetof(struct match_config, max_attempts), NULL},
    {"seed_from_last_rep", RULES_BOOL, 0, 0, offsetof(struct match_config, seed_from_last_rep),
     NULL},
    {"p_model", RULES_ENUM, 0, 0, offsetof(struct match_config, p_model), p_model_names},
    {"p_intercept", RULES_DOUBLE, -50, 50, offsetof(struct match_config, p_intercept), NULL},
    {"p_slope", RULES_DOUBLE, -5, 5, offsetof(struct match_config, p_slope), NULL},
};

bool
match_config_load(struct rules *r, struct match_config **out, struct error *err)
{
	struct match_config *c = calloc(1, sizeof(*c));
	double band;

	*out = NULL;
	if (c == NULL)
		return mt_oom(err);
	if (!get_string(r, "reps_query", &c->reps_query, err) ||
	    !rules_get_path(r, "match", "reps_csv", &c->reps_csv, err) ||
	    !get_string(r, "stats_query", &c->stats_query, err) ||
	    !rules_get_path(r, "match", "stats_csv", &c->stats_csv, err) ||
	    !exclusive(r, "reps_query", "reps_csv", c->reps_query, c->reps_csv, err) ||
	    !exclusive(r, "stats_query", "stats_csv", c->stats_query, c->stats_csv, err))
		goto fail;
	if ((c->stats_query || c->stats_csv) && !c->reps_query && !c->reps_csv)
	{
		error_set(err, EXIT_RULES, "%s: [match] %s is set but neither reps_query nor reps_csv",
		          rules_where(r, "match", c->stats_query ? "stats_query" : "stats_csv"),
		          c->stats_query ? "stats_query" : "stats_csv");
		goto fail;
	}
	if ((c->reps_where =
	         strdup(rules_where(r, "match", c->reps_query ? "reps_query" : "reps_csv"))) == NULL ||
	    (c->stats_where =
	         strdup(rules_where(r, "match", c->stats_query ? "stats_query" : "stats_csv"))) == NULL)
	{
		mt_oom(err);
		goto fail;
	}
	if (!rules_load_params(r, "match", match_params, RULES_PARAMS_N(match_params), c, err) ||
	    !load_points(r, c, err) || !load_cohorts(r, c, err) ||
	    !get_prior(r, "prior_rep", &c->prior_rep, err) ||
	    !get_prior(r, "prior_source", &c->prior_source, err) ||
	    !rules_get_double(r, "match", "score_band", 0.01, 100, &band, err))
		goto fail;
	c->band_hundredths = (int) llround(band * 100);
	if (fabs(band * 100 - c->band_hundredths) > 1e-6)
	{
		bad(r, "score_band", rules_get(r, "match", "score_band"), "is not a multiple of 0.01", err);
		goto fail;
	}
	if (c->p_model == MATCH_P_POINTS && c->npoints == 0)
	{
		error_set(err, EXIT_RULES, "%s: [match] p_model is \"points\" but p_points is not set",
		          rules_where(r, "match", "p_model"));
		goto fail;
	}
	if (c->p_model == MATCH_P_COHORT && c->ncohorts == 0)
	{
		error_set(err, EXIT_RULES, "%s: [match] p_model is \"cohort\" but p_cohort is not set",
		          rules_where(r, "match", "p_model"));
		goto fail;
	}
	*out = c;
	return true;

fail:
	match_config_free(c);
	return false;
}

void
match_config_free(struct match_config *c)
{
	if (c == NULL)
		return;
	free(c->reps_query);
	free(c->reps_csv);
	free(c->stats_query);
	free(c->stats_csv);
	free(c->reps_where);
	free(c->stats_where);
	free(c->point_score);
	free(c->point_p);
	for (int i = 0; i < c->ncohorts; i++)
		free(c->cohort_name[i]);
	free(c->cohort_name);
	free(c->cohort_p);
	free(c->cohort_where);
	free(c);
}

double
match_p_lead(const struct match_config *c, double score, const char *cohort)
{
	switch (c->p_model)
	{
		case MATCH_P_LOGISTIC: return 1.0 / (1.0 + exp(-(c->p_intercept + c->p_slope * score)));
		case MATCH_P_POINTS:
			if (score <= c->point_score[0])
				return c->point_p[0];
			for (int i = 1; i < c->npoints; i++)
				if (score <= c->point_score[i])
				{
					double f = (score - c->point_score[i - 1]) /
					           (c->point_score[i] - c->point_score[i - 1]);

					return c->point_p[i - 1] + f * (c->point_p[i] - c->point_p[i - 1]);
				}
			return c->point_p[c->npoints - 1];
		case MATCH_P_COHORT:
			if (cohort != NULL)
				for (int i = 0; i < c->ncohorts; i++)
					if (strcmp(c->cohort_name[i], cohort) == 0)
						return c->cohort_p[i];
			return -1;
	}
	return -1;
}
