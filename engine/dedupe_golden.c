/*
 * dedupe_golden.c
 *    Text the stage writes: the reason on a duplicate (the evidence of its
 *    match) and the golden record of each cluster.
 */
#include "config.h"

#include "dedupe_int.h"
#include "phone.h"

/* ------------------------------------------------------------------ */
/* Text output: reasons and the golden record                          */
/* ------------------------------------------------------------------ */

static void
sb_put(struct sbuf *s, const char *x, size_t len)
{
	if (s->oom)
		return;
	if (s->n + len + 1 > s->cap)
	{
		size_t ncap = s->cap ? s->cap : 256;
		char *q;

		while (ncap < s->n + len + 1)
			ncap *= 2;
		if ((q = realloc(s->p, ncap)) == NULL)
		{
			s->oom = true;
			return;
		}
		s->p = q;
		s->cap = ncap;
	}
	memcpy(s->p + s->n, x, len);
	s->n += len;
	s->p[s->n] = '\0';
}

static void
sb_puts(struct sbuf *s, const char *x)
{
	sb_put(s, x, strlen(x));
}

void
dd_sb_printf(struct sbuf *s, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_put(s, buf, (size_t) n < sizeof(buf) ? (size_t) n : sizeof(buf) - 1);
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid. */
static int
utf8_len(const unsigned char *p)
{
	int n = p[0] < 0x80           ? 1
	        : (p[0] >> 5) == 0x6  ? 2
	        : (p[0] >> 4) == 0xE  ? 3
	        : (p[0] >> 3) == 0x1E ? 4
	                              : 0;

	if (n == 0 || (n == 2 && p[0] < 0xC2))
		return 0;
	for (int k = 1; k < n; k++)
		if ((p[k] & 0xC0) != 0x80)
			return 0;
	return n;
}

/*
 * A JSON string literal, at most `max` bytes of the value (0 = all), cut on
 * a character boundary with "…" added.  Control characters are escaped and
 * invalid UTF-8 becomes U+FFFD, so the output is valid JSON whatever came in.
 */
static void
sb_json_str(struct sbuf *s, const char *x, size_t max)
{
	const unsigned char *p = (const unsigned char *) x;
	size_t used = 0;

	sb_put(s, "\"", 1);
	while (*p)
	{
		int n = utf8_len(p);

		if (max > 0 && used + (size_t) (n ? n : 1) > max)
		{
			sb_puts(s, "\xE2\x80\xA6");
			break;
		}
		if (n == 0)
		{
			sb_puts(s, "\\ufffd");
			p++;
			used++;
			continue;
		}
		used += (size_t) n;
		if (n > 1)
		{
			sb_put(s, (const char *) p, (size_t) n);
			p += n;
			continue;
		}
		switch (*p)
		{
			case '"': sb_puts(s, "\\\""); break;
			case '\\': sb_puts(s, "\\\\"); break;
			case '\n': sb_puts(s, "\\n"); break;
			case '\r': sb_puts(s, "\\r"); break;
			case '\t': sb_puts(s, "\\t"); break;
			default:
				if (*p < 0x20 || *p == 0x7F)
					dd_sb_printf(s, "\\u%04x", *p);
				else
					sb_put(s, (const char *) p, 1);
				break;
		}
		p++;
	}
	sb_put(s, "\"", 1);
}

/* "field":{"value":<json string>,"from":"<lead id>"} */
static void
sb_json_field(struct sbuf *s, const struct batch *b, const char *key, const char *value,
              size_t from, size_t max)
{
	dd_sb_printf(s, ",\"%s\":{\"value\":", key);
	sb_json_str(s, value, max);
	sb_puts(s, ",\"from\":");
	sb_json_str(s, batch_lead_id(b, from), 0);
	sb_puts(s, "}");
}

/*
 * A phone as the rest of the program writes it: phone_format() under the
 * run's plan ("+972521234567", "*6700"); without a plan, "+" and the
 * digits.
 */
static void
phone_text(const struct run *r, uint64_t e164, char *buf, size_t size)
{
	if (r->plan)
		(void) phone_format(r->plan, e164, buf, size);
	else
		snprintf(buf, size, "+%llu", (unsigned long long) e164);
}

/* A field's value of participant p as a reason shows it, or "" (names, phones, e-mails: elsewhere). */
static void
value_text(const struct run *r, int f, uint32_t p, char *buf, size_t size)
{
	const struct dedupe_field *fc = &r->c->field[f];
	const struct fdata *d = &r->fd[f];
	int y, m, dd;

	buf[0] = '\0';
	switch (fc->cmp)
	{
		case DEDUPE_CMP_DATE:
			if (d->s[p])
				snprintf(buf, size, "%.4s-%.2s-%.2s", d->s[p], d->s[p] + 4, d->s[p] + 6);
			else if (!isnan(d->x[p]))
			{
				dd_days_to_ymd((int64_t) d->x[p], &y, &m, &dd);
				snprintf(buf, size, "%04d-%02d-%02d", y, m, dd);
			}
			break;
		case DEDUPE_CMP_NUMBER:
			if (!isnan(d->x[p]))
				snprintf(buf, size, "%g", d->x[p]);
			break;
		case DEDUPE_CMP_TEXT:
		case DEDUPE_CMP_EXACT:
			/* whole values only: cutting one could split a character */
			if (d->s[p] && strlen(d->s[p]) < size)
				snprintf(buf, size, "%s", d->s[p]);
			break;
		default: break;
	}
}

/*
 * The field that counts most against a pair (at least one bit), as
 * "but dob differs (1980-02-03 / 2017-05-06)"; nothing when none does.
 */
static void
describe_against(const struct run *r, uint32_t a, uint32_t b, bool first, struct sbuf *s)
{
	double tf = 0.0, worst = AGAINST_BITS;
	uint32_t pat = dd_compare_pair(r, a, b, &tf);
	int wf = -1;

	for (int f = 0; f < r->c->nfields; f++)
	{
		double w;

		if (!field_weight(r, pat, f, &w))
			continue;
		if (w < worst)
			worst = w, wf = f;
	}
	if (wf >= 0)
	{
		char va[48], vb[48];

		value_text(r, wf, a, va, sizeof(va));
		value_text(r, wf, b, vb, sizeof(vb));
		if (va[0] && vb[0])
			dd_sb_printf(s, "%sbut %s differs (%s / %s)", first ? "" : "; ", r->c->field[wf].name,
			             va, vb);
		else
			dd_sb_printf(s, "%sbut %s differs", first ? "" : "; ", r->c->field[wf].name);
	}
}

/*
 * The evidence a duplicate is merged on, e.g. "same phone +972521234567;
 * name 0.93", and the field that counts most against it ("but dob differs").
 */
void
dd_describe_match(const struct run *r, uint32_t a, uint32_t b, struct sbuf *s)
{
	const struct dedupe_config *c = r->c;
	bool first = true;

	for (int f = 0; f < c->nfields; f++)
	{
		const struct dedupe_field *fc = &c->field[f];
		struct evidence ev = {0};
		double tf = 0.0;
		unsigned l = dd_compare_field(r, f, a, b, &tf, &ev);
		char buf[160];

		buf[0] = '\0';
		if (l == LEVEL_MISSING)
			continue;
		switch (fc->cmp)
		{
			case DEDUPE_CMP_PHONE:
				if (l == 0)
				{
					char ph[24]; /* "+" and up to 20 digits, or a star number */

					phone_text(r, ev.phone, ph, sizeof(ph));
					snprintf(buf, sizeof(buf), "same phone %s", ph);
				}
				break;
			case DEDUPE_CMP_EMAIL:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same e-mail");
				else if (l == 1)
					snprintf(buf, sizeof(buf), "same e-mail but for dots");
				else if (l == 2)
					snprintf(buf, sizeof(buf), "same e-mail once normalised");
				else if (l == 3)
					snprintf(buf, sizeof(buf), "e-mail one typo apart");
				break;
			case DEDUPE_CMP_NAME:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				else if (!(fc->veto & (1u << l)) && l != STRSIM_DISAGREE)
					snprintf(buf, sizeof(buf), "%s %.2f", fc->name, ev.sim);
				break;
			case DEDUPE_CMP_TEXT:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				else if (l < 3)
					snprintf(buf, sizeof(buf), "%s %.2f", fc->name, ev.sim);
				break;
			case DEDUPE_CMP_EXACT:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				break;
			case DEDUPE_CMP_DATE:
			case DEDUPE_CMP_NUMBER:
				if (l == 0)
					snprintf(buf, sizeof(buf), "same %s", fc->name);
				else if (l == 1)
					snprintf(buf, sizeof(buf), "%s close", fc->name);
				break;
		}
		if (buf[0])
		{
			if (!first)
				sb_puts(s, "; ");
			sb_puts(s, buf);
			first = false;
		}
	}
	describe_against(r, a, b, first, s);
}

int
dd_row_cmp(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *) x, b = *(const uint32_t *) y;

	return a < b ? -1 : a > b;
}

/*
 * Members sorted by created_at (missing last), then row: the order notes
 * are joined in.  Insertion sort: clusters are small, and it needs no
 * comparison context.
 */
static void
sort_by_created(const struct batch *b, uint32_t *v, size_t n)
{
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0; j--)
		{
			uint32_t x = v[j - 1], y = v[j];
			int d = dd_cmp_time_asc(b->created_at[x], b->created_at[y]);

			if (d < 0 || (d == 0 && x < y))
				break;
			v[j - 1] = y;
			v[j] = x;
		}
}

/*
 * The golden record of one cluster, on its survivor: touches summed, first
 * entry, latest touch, best status, the union of phones (also written to
 * the survivor's phones, which the partial stage reads), the e-mail if the
 * survivor had none, notes joined, and for each value the lead it came
 * from.  `rows` are the members' batch rows, sorted.  The record's text is
 * appended to *out (the caller puts it in the batch arena, serially);
 * everything else is written on the survivor's row, so clusters can be
 * built at once on several threads.
 */
bool
dd_build_golden(struct run *r, uint32_t *rows, size_t n, uint32_t surv, struct sbuf *out)
{
	struct batch *b = r->b;
	const struct dedupe_config *c = r->c;
	struct sbuf *s = out;
	int64_t touches = 0;
	bool any_touch = false;
	size_t first = SIZE_MAX, last = SIZE_MAX, best_status = surv, nphones = 0;
	uint64_t phones[BATCH_PHONES] = {0};
	uint8_t types[BATCH_PHONES] = {0};
	size_t phone_from[BATCH_PHONES] = {0};
	const char *v;

	sb_puts(s, "{\"survivor\":");
	sb_json_str(s, batch_lead_id(b, surv), 0);
	sb_puts(s, ",\"members\":[");
	for (size_t k = 0; k < n; k++)
	{
		if (k)
			sb_puts(s, ",");
		sb_json_str(s, batch_lead_id(b, rows[k]), 0);
	}
	sb_puts(s, "]");

	for (size_t k = 0; k < n; k++)
	{
		size_t i = rows[k];

		if (b->touch_count[i] >= 0)
		{
			touches += b->touch_count[i];
			any_touch = true;
		}
		if (b->created_at[i] != BATCH_NO_TIME &&
		    (first == SIZE_MAX || b->created_at[i] < b->created_at[first]))
			first = i;
		if (b->last_touch_at[i] != BATCH_NO_TIME &&
		    (last == SIZE_MAX || b->last_touch_at[i] > b->last_touch_at[last]))
			last = i;
		if (dd_status_rank(c, b, i) < dd_status_rank(c, b, best_status))
			best_status = i;
	}

	/* touches */
	if (any_touch)
	{
		bool comma = false;

		b->g_touch_count[surv] = touches > INT32_MAX ? INT32_MAX : (int32_t) touches;
		dd_sb_printf(s, ",\"touch_count\":{\"value\":%lld,\"from\":[", (long long) touches);
		for (size_t k = 0; k < n; k++)
			if (b->touch_count[rows[k]] >= 0)
			{
				if (comma)
					sb_puts(s, ",");
				sb_json_str(s, batch_lead_id(b, rows[k]), 0);
				comma = true;
			}
		sb_puts(s, "]}");
	}
	if (first != SIZE_MAX)
	{
		b->g_created_at[surv] = b->created_at[first];
		sb_json_field(s, b, "created_at", batch_value(b, FIELD_CREATED_AT, first), first, 0);
	}
	if (last != SIZE_MAX)
	{
		b->g_last_touch_at[surv] = b->last_touch_at[last];
		sb_json_field(s, b, "last_touch_at", batch_value(b, FIELD_LAST_TOUCH_AT, last), last, 0);
	}
	v = b->status_norm[best_status] ? b->status_norm[best_status]
	                                : batch_value(b, FIELD_STATUS, best_status);
	if (v)
		sb_json_field(s, b, "status", v, best_status, 0);

	/* phones: the survivor's own first, then the others' in lead order */
	for (int pass = 0; pass < 2; pass++)
		for (size_t k = 0; k < n; k++)
		{
			size_t i = rows[k];

			if ((pass == 0) != (i == surv))
				continue;
			for (int j = 0; j < BATCH_PHONES && nphones < BATCH_PHONES; j++)
			{
				uint64_t ph = b->phones[i][j];
				bool seen = ph == 0;

				for (size_t q = 0; q < nphones && !seen; q++)
					seen = phones[q] == ph;
				if (seen)
					continue;
				phone_from[nphones] = i;
				types[nphones] = b->phone_types[i][j];
				phones[nphones++] = ph;
			}
		}
	if (nphones > 0)
	{
		sb_puts(s, ",\"phones\":[");
		for (size_t q = 0; q < nphones; q++)
		{
			const char *t = phone_type_name((enum phone_type) types[q]);
			char ph[24]; /* "+" and up to 20 digits, or a star number */

			b->phones[surv][q] = phones[q];
			b->phone_types[surv][q] = types[q];
			phone_text(r, phones[q], ph, sizeof(ph));
			dd_sb_printf(s, "%s{\"value\":\"%s\",", q ? "," : "", ph);
			if (t)
				dd_sb_printf(s, "\"type\":\"%s\",", t);
			sb_puts(s, "\"from\":");
			sb_json_str(s, batch_lead_id(b, phone_from[q]), 0);
			sb_puts(s, "}");
		}
		sb_puts(s, "]");
	}

	/* e-mail, name, city: the survivor's, else the first member's that has one */
	{
		static const int fields[] = {FIELD_EMAIL, FIELD_NAME, FIELD_CITY};
		static const char *const keys[] = {"email", "name", "city"};

		for (int q = 0; q < 3; q++)
		{
			size_t from = SIZE_MAX;

			for (int pass = 0; pass < 2 && from == SIZE_MAX; pass++)
				for (size_t k = 0; k < n && from == SIZE_MAX; k++)
				{
					size_t i = rows[k];
					const char *x =
					    fields[q] == FIELD_EMAIL ? b->email_norm[i] : batch_value(b, fields[q], i);

					if ((pass == 0) == (i == surv) && x != NULL && *x)
						from = i;
				}
			if (from == SIZE_MAX)
				continue;
			if (fields[q] == FIELD_EMAIL)
			{
				if (from != surv)
				{
					b->email_norm[surv] = b->email_norm[from];
					b->email_key[surv] = b->email_key[from];
				}
				sb_json_field(s, b, keys[q], b->email_norm[from], from, 0);
			}
			else
				sb_json_field(s, b, keys[q], batch_value(b, fields[q], from), from, 0);
		}
	}

	/* notes, oldest record first, each distinct text once */
	if (c->notes_max > 0)
	{
		uint32_t *order = malloc(n * sizeof(*order));
		struct sbuf notes = {0};
		bool comma = false;

		if (order == NULL)
			return false;
		memcpy(order, rows, n * sizeof(*order));
		sort_by_created(b, order, n);
		for (size_t k = 0; k < n; k++)
		{
			const char *x = batch_value(b, FIELD_NOTES, order[k]);
			bool dup = false;

			if (x == NULL || *x == '\0')
				continue;
			for (size_t q = 0; q < k && !dup; q++)
			{
				const char *y = batch_value(b, FIELD_NOTES, order[q]);

				dup = y != NULL && strcmp(x, y) == 0;
			}
			if (dup)
				continue;
			if (notes.n)
				sb_puts(&notes, " | ");
			sb_puts(&notes, x);
		}
		if (notes.n > 0 && !notes.oom)
		{
			sb_puts(s, ",\"notes\":{\"value\":");
			sb_json_str(s, notes.p, (size_t) c->notes_max);
			sb_puts(s, ",\"from\":[");
			for (size_t k = 0; k < n; k++)
			{
				const char *x = batch_value(b, FIELD_NOTES, order[k]);

				if (x == NULL || *x == '\0')
					continue;
				if (comma)
					sb_puts(s, ",");
				sb_json_str(s, batch_lead_id(b, order[k]), 0);
				comma = true;
			}
			sb_puts(s, "]}");
		}
		s->oom |= notes.oom;
		free(notes.p);
		free(order);
	}
	sb_puts(s, "}");
	return !s->oom;
}
