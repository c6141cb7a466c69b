/*
 * blacklist.c
 *    Black-list rules: dead statuses, do-not-call lists, opt-outs written in
 *    the notes, fake phones and test names ([004-1]).
 *
 * Each [blacklist.<id>] section becomes one struct blacklist_rule, kept in
 * file order in the config, which owns everything in it: compiled patterns
 * (regex.c) and the built-in checks' tables.  The do-not-call values are
 * the run's side data, held by the batch (b->dnc: open-addressing hash sets
 * of E.164 numbers and of e-mail keys, one pair per rule).  The stage only
 * reads the config and b->dnc, so all threads share them; each thread has its own
 * regex scratch.  Rows are split into fixed chunks and every row's verdict
 * depends on that row alone, so the result is the same for any number of
 * threads; counters are integer sums.  A pattern that hits a limit on a
 * lead's value sets that lead aside as an outlier (regex.h, R3); any other
 * match error stops the stage and names the first failing row (rows before
 * it are all examined, so which row is named does not depend on the
 * threads either).
 *
 * The rules are read in blacklist_config.c, the tools they use are in
 * blacklist_tools.c; blacklist_int.h is what the parts share.
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "blacklist.h"
#include "blacklist_int.h"
#include "email.h"
#include "suppress.h"
#include "phone.h"
#include "regex.h"
#include "ruleset.h"
#include "util.h"

/* A rule's field as resolved against this batch. */
struct resolved
{
	int col; /* FK_COLUMN: column index */
};

/* Length of s without leading and trailing spaces, and its start. */
static const char *
trimmed(const char *s, size_t *len)
{
	const char *z;

	while (*s && isspace((unsigned char) *s))
		s++;
	z = s + strlen(s);
	while (z > s && isspace((unsigned char) z[-1]))
		z--;
	*len = (size_t) (z - s);
	return s;
}

static bool
status_hit(const struct blacklist_rule *rl, const struct batch *b, size_t i)
{
	const char *s = b->status_norm[i] ? b->status_norm[i] : batch_value(b, FIELD_STATUS, i);
	size_t len;

	if (s == NULL)
		return false;
	s = trimmed(s, &len);
	for (int k = 0; k < rl->nstatuses; k++)
		if (strlen(rl->statuses[k]) == len && strncasecmp(rl->statuses[k], s, len) == 0)
			return true;
	return false;
}

static bool
dnc_hit(const struct blacklist_dnc_list *l, const struct batch *b, size_t i)
{
	char key[EMAIL_KEY_BUF + 16];
	const char *e;

	for (int k = 0; k < BATCH_PHONES; k++)
		if (bl_u64_set_has(&l->phones, b->phones[i][k]))
			return true;
	if (l->emails.n == 0)
		return false;
	if (b->email_key[i] && bl_str_set_has(&l->emails, b->email_key[i]))
		return true;
	e = b->email_norm[i] ? b->email_norm[i] : batch_value(b, FIELD_EMAIL, i);
	return email_loose_key(e, key, sizeof(key)) && bl_str_set_has(&l->emails, key);
}

/* The decimal digits of v into buf (room for 21), NUL-terminated; returns their count. */
static int
u64_digits(uint64_t v, char *buf)
{
	char tmp[21];
	int n = 0;

	do
	{
		tmp[n++] = (char) ('0' + v % 10);
		v /= 10;
	} while (v);
	for (int k = 0; k < n; k++)
		buf[k] = tmp[n - 1 - k];
	buf[n] = '\0';
	return n;
}

/*
 * 1 junk, 0 a real-looking number, -1 no digits (not a phone at all).  The
 * digits are read under the leads' numbering plan (phone.c), as dialled at
 * home, so a service number is one of the plan's (Israel: 1-800, 1-700,
 * 144, *6700; the UK: 0800) and the country code counts as the plan's own.
 */
static int
junk_number(const struct blacklist_rule *rl, const char *s, size_t len)
{
	char nat[PHONE_NATIONAL_BUF];
	enum phone_reach reach;

	if (phone_national_digits(rl->plan, s, len, nat, sizeof(nat), &reach) == 0)
		return -1;
	if (reach == PHONE_REACH_SERVICE)
		return rl->special_is_junk ? 1 : 0;
	if ((int) strlen(nat) < rl->min_digits || phone_fake_digits(rl->plan, nat, reach, rl->fake_run))
		return 1;
	for (int k = 0; k < rl->nfakes; k++)
		if (strcmp(nat, rl->fakes[k]) == 0)
			return 1;
	return 0;
}

/*
 * The lead has at least one phone and every one of them is fake.  Raw
 * values are split into the numbers they hold ("052-1234567 / 03-5551234");
 * the normalised numbers are judged too, so that a fake the normaliser
 * accepted and a fake only the raw text shows are both seen, while one
 * real-looking number anywhere keeps the lead.
 */
static bool
junk_phone_hit(const struct blacklist_rule *rl, const struct batch *b, size_t i)
{
	static const enum field fields[] = {FIELD_PHONE, FIELD_PHONE2, FIELD_MOBILE};
	int seen = 0, junk = 0;

	for (int f = 0; f < 3; f++)
	{
		const char *s = batch_value(b, fields[f], i);

		while (s && *s)
		{
			size_t len = strcspn(s, "/,;|\\\n");
			int j = junk_number(rl, s, len);

			if (j >= 0)
			{
				seen++;
				junk += j;
			}
			s += len;
			if (*s)
				s++;
		}
	}
	for (int k = 0; k < BATCH_PHONES; k++)
	{
		char d[24];
		size_t len;

		if (b->phones[i][k] == 0)
			continue;
		if (b->phone_types[i][k] == PHONE_SPECIAL)
		{
			/* 1-800 / 1-700 / *6700: the normaliser knows them as service numbers */
			seen++;
			junk += rl->special_is_junk;
			continue;
		}
		len = phone_format(rl->plan, b->phones[i][k], d, sizeof(d));
		seen++;
		junk += junk_number(rl, d, len) > 0;
	}
	return seen > 0 && junk == seen;
}

/*
 * Match every value of the rule's field; see enum field_kind.  1 hit, 0 not,
 * -1 error.  *matched is set when the pattern was run on a value.
 */
static int
pattern_hit(const struct blacklist_rule *rl, const struct resolved *rv, const struct batch *b,
            size_t i, struct regex_scratch *s, int *code, bool *matched)
{
	const char *vals[BATCH_PHONES > 3 ? BATCH_PHONES : 3];
	char digits[BATCH_PHONES][24];
	int nv = 0, hits = 0;

	switch (rl->fkind)
	{
		case FK_COLUMN: vals[nv++] = batch_value(b, rv->col, i); break;
		case FK_PHONES:
			vals[nv++] = batch_value(b, FIELD_PHONE, i);
			vals[nv++] = batch_value(b, FIELD_PHONE2, i);
			vals[nv++] = batch_value(b, FIELD_MOBILE, i);
			break;
		case FK_PHONE_NORM:
			for (int k = 0; k < BATCH_PHONES; k++)
				if (b->phones[i][k])
				{
					u64_digits(b->phones[i][k], digits[k]);
					vals[nv++] = digits[k];
				}
			break;
		case FK_NAME_NORM: vals[nv++] = b->name_norm[i]; break;
		case FK_EMAIL_NORM: vals[nv++] = b->email_norm[i]; break;
		case FK_EMAIL_KEY: vals[nv++] = b->email_key[i]; break;
		case FK_STATUS_NORM: vals[nv++] = b->status_norm[i]; break;
	}

	/* a missing value never hits, inverted or not; several values must all hit */
	{
		int given = 0;

		for (int k = 0; k < nv; k++)
		{
			enum regex_result m;

			if (vals[k] == NULL || (rl->fkind == FK_PHONES && bl_blank(vals[k])))
				continue;
			given++;
			*matched = true;
			m = regex_match(rl->re, s, vals[k], strlen(vals[k]), code);
			if (m == REGEX_ERROR)
				return -1;
			hits += (m == REGEX_MATCH) != rl->invert;
		}
		return given > 0 && hits == given;
	}
}

static int
rule_hit(const struct blacklist_rule *rl, const struct blacklist_dnc_list *l,
         const struct resolved *rv, const struct batch *b, size_t i, struct regex_scratch *s,
         int *code, bool *matched)
{
	/* the cheap tests first; all the tests a rule states must hold */
	if (rl->nstatuses > 0 && !status_hit(rl, b, i))
		return 0;
	if (rl->dnc && (l == NULL || !dnc_hit(l, b, i)))
		return 0;
	if (rl->junk_phone && !junk_phone_hit(rl, b, i))
		return 0;
	if (rl->mash &&
	    (batch_value(b, FIELD_NAME, i) == NULL || !bl_mash_name(rl, batch_value(b, FIELD_NAME, i))))
		return 0;
	if (rl->re)
		return pattern_hit(rl, rv, b, i, s, code, matched);
	return 1;
}

/*
 * The value that made rule rl hit row i, for its reason: the field a
 * pattern reads (its first value), the status, the number or e-mail on a
 * do-not-call list, the phone, or the name; NULL when there is none.
 */
static const char *
trigger_value(const struct blacklist_rule *rl, const struct resolved *rv, const struct batch *b,
              size_t i, char *buf, size_t size)
{
	static const enum field phones[] = {FIELD_PHONE, FIELD_PHONE2, FIELD_MOBILE};

	if (rl->re)
		switch (rl->fkind)
		{
			case FK_COLUMN: return batch_value(b, rv->col, i);
			case FK_NAME_NORM: return b->name_norm[i];
			case FK_EMAIL_NORM: return b->email_norm[i];
			case FK_EMAIL_KEY: return b->email_key[i];
			case FK_STATUS_NORM: return b->status_norm[i];
			case FK_PHONES:
			case FK_PHONE_NORM: break;
		}
	if (rl->nstatuses > 0 && !rl->re)
		return batch_value(b, FIELD_STATUS, i) ? batch_value(b, FIELD_STATUS, i)
		                                       : b->status_norm[i];
	if (rl->mash)
		return batch_value(b, FIELD_NAME, i);
	if (rl->dnc && !b->phones[i][0] && b->email_norm[i])
		return b->email_norm[i];
	if (rl->dnc || (rl->re && rl->fkind == FK_PHONE_NORM))
	{
		if (!b->phones[i][0])
			return NULL;
		snprintf(buf, size, "+%llu", (unsigned long long) b->phones[i][0]);
		return buf;
	}
	for (int k = 0; k < 3; k++)
		if (!bl_blank(batch_value(b, phones[k], i)))
			return batch_value(b, phones[k], i);
	return NULL;
}

/*
 * The reason with the value that triggered the rule, as the schema
 * promises: 'opt-out written in the notes: "please do not call"'.  The
 * value is cut at 60 bytes (on a character boundary, then "...") and
 * control characters become spaces.  NULL on out of memory.
 */
static const char *
reason_with_value(struct batch *b, const char *reason, const char *v)
{
	char out[256];
	size_t o, n = strlen(v);
	bool cut = n > 60;

	o = (size_t) snprintf(out, sizeof(out), "%s: \"", reason ? reason : "");
	if (o > sizeof(out) - 80)
		o = sizeof(out) - 80;
	if (cut)
	{
		n = 60;
		while (n > 0 && ((unsigned char) v[n] & 0xC0) == 0x80)
			n--;
	}
	for (size_t k = 0; k < n; k++)
		out[o++] = (unsigned char) v[k] < 0x20 ? ' ' : v[k];
	memcpy(out + o, cut ? "...\"" : "\"", cut ? 5 : 2);
	return batch_strdup(b, out);
}

bool
blacklist_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                struct error *err)
{
	const struct blacklist_config *c = rs->blacklist;
	const struct blacklist_dnc *d = b->dnc;
	struct resolved *rv;
	size_t *hits, *applied;
	size_t optouts = 0;
	int nr;
	size_t n = b->n;
	struct regex_fail_log fails = {0};
	bool ok = false;

	/* error state shared by the threads: the lowest failing row wins */
	struct util_row_fail fail;
	bool oom = false;
	size_t forgotten = suppress_apply(b->suppress, b, stage_threads(st));

	if (forgotten == SIZE_MAX)
		return error_oom(err);
	if (forgotten)
		stage_count(st, SUPPRESS_RULE, forgotten);
	if (c == NULL || c->nrules <= 0)
		return true;
	nr = c->nrules;
	util_row_fail_init(&fail);
	if (d && d->c != c)
		return error_set(err, EXIT_INTERNAL, "the do-not-call lists belong to other rules");
	for (int k = 0; k < nr; k++)
		if (c->rules[k].query && (d == NULL || !d->lists[k].query_done))
			return error_set(err, EXIT_INTERNAL, "the do-not-call query of rule [%s] was not run",
			                 c->rules[k].id);
		else if ((c->rules[k].file[0] && (d == NULL || !d->lists[k].file_done[0])) ||
		         (c->rules[k].file[1] && (d == NULL || !d->lists[k].file_done[1])))
			return error_set(err, EXIT_INTERNAL, "the do-not-call file of rule [%s] was not read",
			                 c->rules[k].id);
	rv = calloc((size_t) nr, sizeof(*rv));
	hits = calloc((size_t) nr, sizeof(*hits));
	applied = calloc((size_t) nr, sizeof(*applied));
	if (rv == NULL || hits == NULL || applied == NULL)
	{
		error_oom(err);
		goto out;
	}
	for (int k = 0; k < nr; k++)
	{
		const struct blacklist_rule *rl = &c->rules[k];

		if (rl->re && rl->fkind == FK_COLUMN && (rv[k].col = util_column(b, rs, rl->field)) < 0)
		{
			error_set(err, EXIT_RULES, "%s: [%s] field: no column \"%s\" in the source",
			          rl->field_where, rl->id, rl->field);
			error_hint(err, "Name a [columns] key (full_name, phone, notes, ...), a "
			                "column listed in [columns] extra, or one of phones, "
			                "phone_norm, name_norm, email_norm, email_key, status_norm.");
			goto out;
		}
	}

#pragma omp parallel num_threads(stage_threads(st)) reduction(+ : optouts)
	{
		struct regex_scratch *s = regex_scratch_new(&c->lim);
		struct regex_fail_log mine = {0};

		if (s == NULL)
		{
#pragma omp atomic write
			oom = true;
		}

#pragma omp for schedule(static, BL_CHUNK) reduction(+ : hits[:nr], applied[:nr])
		for (size_t i = 0; i < n; i++)
		{
			bool kept = b->verdict[i] == VERDICT_KEPT;
			int first = -1;

			if (s == NULL || util_row_fail_past(&fail, i) || stage_stopped(st))
				continue;
			for (int k = 0; k < nr; k++)
			{
				const struct blacklist_rule *rl = &c->rules[k];
				bool person = rl->level == BLACKLIST_PERSON;
				bool matched = false;
				int code = 0, h;

				/*
				 * Once the verdict is decided only person-level rules still
				 * matter (for the opt-out), and once the opt-out is set
				 * nothing does.  A lead already removed (e.g. unparsable) is
				 * still checked for an opt-out: the person behind it must not
				 * be called through another record.
				 */
				if ((first >= 0 || !kept) && (!person || b->optout[i]))
					continue;
				h = rule_hit(rl, d ? &d->lists[k] : NULL, &rv[k], b, i, s, &code, &matched);
				applied[k] += matched;
				if (h < 0 && regex_is_limit(code))
				{
					/*
					 * A limit on this lead's value: the lead is set aside as
					 * an outlier, unless its verdict is decided already, and
					 * the other rules go on as for any decided lead.
					 */
					bool decides = kept && first < 0;

					regex_fail_add(&mine, i, k, rl->re, rl->field, code, decides);
					if (decides)
					{
						first = k;
						batch_mark(b, i, VERDICT_OUTLIER, REGEX_LIMIT_RULE_ID, NULL);
					}
					continue;
				}
				if (h < 0)
				{
					util_row_fail_note(&fail, i, k, code, NULL);
					break;
				}
				if (h == 0)
					continue;
				if (person && !b->optout[i])
				{
					b->optout[i] = 1;
					optouts++;
				}
				if (kept && first < 0)
				{
					first = k;
					hits[k]++;
					batch_mark(b, i, VERDICT_BLACKLISTED, rl->id, rl->reason);
				}
				if ((first >= 0 || !kept) && b->optout[i])
					break;
			}
		}
		regex_scratch_free(s);
#pragma omp critical(blacklist_fails)
		regex_fail_merge(&fails, &mine);
	}

	if (oom || fails.oom)
	{
		error_oom(err);
		goto out;
	}
	if (stage_stopped(st))
	{
		stage_interrupted(st, err);
		goto out;
	}
	if (util_row_fail_any(&fail))
	{
		const struct blacklist_rule *rl = &c->rules[fail.what];

		regex_match_error(rl->re, fail.code, batch_lead_id(b, fail.row), rl->field, err);
		goto out;
	}
	if (!regex_fail_finish(&fails, b, applied, nr, st, err))
		goto out;
	/* serially (the batch's arena is not shared): each reason gets its value */
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < nr && b->verdict[i] == VERDICT_BLACKLISTED; k++)
			if (b->rule_id[i] == c->rules[k].id)
			{
				char buf[32];
				const char *v = trigger_value(&c->rules[k], &rv[k], b, i, buf, sizeof(buf)), *why;

				if (v == NULL || bl_blank(v))
					break;
				if ((why = reason_with_value(b, b->reason[i], v)) == NULL)
				{
					error_oom(err);
					goto out;
				}
				b->reason[i] = why;
				break;
			}
	for (int k = 0; k < nr; k++)
		stage_count(st, c->rules[k].id, hits[k]);
	stage_count(st, "optout", optouts);
	ok = true;
out:
	regex_fail_log_free(&fails);
	free(rv);
	free(hits);
	free(applied);
	return ok;
}
