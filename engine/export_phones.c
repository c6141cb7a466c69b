/*
 * export_phones.c
 *    The callable numbers of a run's lead at export time, for the dialer
 *    file (one row per number) and the sheet (every number in one cell).
 *
 * The run keeps one number per lead (refinery.results.phone_norm, the
 * first valid one); the others are read again from the source's phone
 * columns as entered ([columns] phone, phone2, mobile, joined by the
 * caller) and normalised with the numbering plan of the rules the run
 * stored (refinery.runs.rules_text), as the normaliser did: valid numbers
 * of the plan (mobile, landline, voip) in column order, a number given
 * twice counted once, at most BATCH_PHONES per lead with the primary one.
 * A number is left out, the primary one included, when a do-not-call list
 * of those rules holds it (files and queries read now, so a number added
 * to a list after the run is not called; a relative list path is read
 * from the working directory) or when it is dead: the number of a lead of
 * the run whose last outcome (refinery.outcomes, mapped by [outcomes] map)
 * is wrong_number, as the outcomes stage reads it; or when its person was
 * erased (refinery.suppressed, `refinery forget`) since.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blacklist.h"
#include "cmd.h"
#include "normalize.h"
#include "outcomes.h"
#include "ruleset.h"
#include "sidedata.h"
#include "suppress.h"
#include "util.h"

struct export_phones
{
	struct rules *rules;
	struct normalize_config *nc;
	struct blacklist_config *bl;
	struct blacklist_dnc *dnc;
	struct suppress_set *forgotten;
	uint64_t *dead; /* sorted */
	size_t ndead;
};

/* "+972521234567" -> 972521234567; 0 when it is not that shape */
static uint64_t
e164_value(const char *s)
{
	uint64_t v = 0;
	int n = 0;

	if (s == NULL || *s++ != '+')
		return 0;
	for (; *s >= '0' && *s <= '9' && n < 16; s++, n++)
		v = v * 10 + (uint64_t) (*s - '0');
	return *s == '\0' && n >= 8 && n <= 15 ? v : 0;
}

/* the numbers of leads of the run whose last outcome is wrong_number */
static bool
read_dead(PGconn *conn, int64_t run_id, struct export_phones *x, struct error *err)
{
	struct outcomes_config *oc = NULL;
	char run[32];
	const char *p[1] = {run};
	PGresult *res;
	bool ok = true;

	if (!outcomes_config_load(x->rules, &oc, err))
		return false;
	snprintf(run, sizeof(run), "%" PRId64, run_id);
	res = pg_query(conn, "reading the wrong numbers",
	               "SELECT DISTINCT ON (o.lead_id) o.outcome, r.phone_norm "
	               "FROM refinery.runs u JOIN refinery.outcomes o ON o.job = u.job "
	               "JOIN refinery.results r ON r.run_id = u.run_id AND r.lead_id = o.lead_id "
	               "WHERE u.run_id = $1 AND r.phone_norm IS NOT NULL "
	               "ORDER BY o.lead_id, o.at DESC, o.rep_id DESC, o.outcome DESC",
	               1, p, err);
	if (res == NULL)
	{
		outcomes_config_free(oc);
		return false;
	}
	x->dead = malloc(sizeof(*x->dead) * ((size_t) PQntuples(res) + 1));
	if (x->dead == NULL)
		ok = error_oom(err);
	for (int t = 0; ok && t < PQntuples(res); t++)
		if (outcomes_map(oc, PQgetvalue(res, t, 0)) == OUTCOME_WRONG_NUMBER &&
		    e164_value(PQgetvalue(res, t, 1)) != 0)
			x->dead[x->ndead++] = e164_value(PQgetvalue(res, t, 1));
	if (ok)
		qsort(x->dead, x->ndead, sizeof(*x->dead), util_cmp_u64);
	PQclear(res);
	outcomes_config_free(oc);
	return ok;
}

bool
export_phones_open(PGconn *conn, int64_t run_id, struct export_phones **out, struct error *err)
{
	struct export_phones *x = calloc(1, sizeof(*x));
	struct ruleset rs;

	*out = x;
	if (x == NULL)
		return error_oom(err);
	if (!cmd_run_rules(conn, run_id, &x->rules, err) ||
	    !normalize_config_load(x->rules, &x->nc, err) ||
	    !blacklist_config_load(x->rules, x->nc->plan, &x->bl, err))
		return error_detail(err,
		                    "The dialer file needs the numbering plan and do-not-call "
		                    "lists of the rules run %" PRId64 " used.",
		                    run_id);
	memset(&rs, 0, sizeof(rs));
	rs.blacklist = x->bl;
	return sidedata_load_dnc(conn, &rs, &x->dnc, err) && read_dead(conn, run_id, x, err) &&
	       suppress_load(conn, &x->forgotten, err);
}

void
export_phones_free(struct export_phones *x)
{
	if (x == NULL)
		return;
	blacklist_dnc_free(x->dnc);
	suppress_free(x->forgotten);
	blacklist_config_free(x->bl);
	normalize_config_free(x->nc);
	rules_free(x->rules);
	free(x->dead);
	free(x);
}

static bool
callable(const struct export_phones *x, uint64_t v)
{
	return v != 0 && !blacklist_dnc_has_phone(x->dnc, v) && !suppress_has_phone(x->forgotten, v) &&
	       (x->ndead == 0 || bsearch(&v, x->dead, x->ndead, sizeof(v), util_cmp_u64) == NULL);
}

int
export_phones_list(const struct export_phones *x, const char *primary, const char *city,
                   const char *const entered[EXPORT_PHONE_COLUMNS],
                   char out[BATCH_PHONES][EXPORT_PHONE_BUF])
{
	uint64_t seen[BATCH_PHONES];
	int nseen = 0, n = 0;
	uint64_t v = e164_value(primary);
	enum phone_type t = v != 0 ? phone_classify(x->nc->plan, v) : PHONE_NONE;
	/* the run's number, when a dialer can call it (not a service or star number) */
	bool first = t == PHONE_MOBILE || t == PHONE_LANDLINE || t == PHONE_VOIP;

	/* the run's number first, then the others in column order, whatever the first was */
	if (first)
		seen[nseen++] = v;
	for (int f = 0; f < EXPORT_PHONE_COLUMNS && nseen < BATCH_PHONES; f++)
	{
		struct phone_number got[PHONE_FIELD_MAX];
		int k, m;

		if (entered[f] == NULL)
			continue;
		m = phone_parse_field(entered[f], x->nc->plan, x->nc->phone_from_city ? city : NULL, got,
		                      PHONE_FIELD_MAX);
		for (k = 0; k < m && k < PHONE_FIELD_MAX && nseen < BATCH_PHONES; k++)
		{
			bool dup = false;

			if (got[k].type != PHONE_MOBILE && got[k].type != PHONE_LANDLINE &&
			    got[k].type != PHONE_VOIP)
				continue;
			for (int j = 0; j < nseen && !dup; j++)
				dup = seen[j] == got[k].e164;
			if (!dup)
				seen[nseen++] = got[k].e164;
		}
	}
	for (int k = 0; k < nseen; k++)
	{
		if (!callable(x, seen[k]))
			continue;
		if (k == 0 && first)
			snprintf(out[n], EXPORT_PHONE_BUF, "%s", primary);
		else if (phone_format(x->nc->plan, seen[k], out[n], EXPORT_PHONE_BUF) == 0 ||
		         e164_value(out[n]) != seen[k])
			continue;
		n++;
	}
	return n;
}
