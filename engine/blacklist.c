/*
 * blacklist.c
 *    Black-list rules: dead statuses, do-not-call lists, opt-outs written in
 *    the notes, fake phones and test names ([004-1]).
 *
 * Each [blacklist.<id>] section becomes one struct blacklist_rule, kept in
 * file order in the config, which owns everything in it: compiled patterns
 * (regex.c), the do-not-call sets (open-addressing hash sets of E.164
 * numbers and of e-mail keys) and the built-in checks' tables.  The stage
 * reads the config only, so all threads share it; each thread has its own
 * regex scratch.  Rows are split into fixed chunks and every row's verdict
 * depends on that row alone, so the result is the same for any number of
 * threads; counters are integer sums.  A pattern that hits a limit on a
 * lead's value sets that lead aside as an outlier (regex.h, R3); any other
 * match error stops the stage and names the first failing row (rows before
 * it are all examined, so which row is named does not depend on the
 * threads either).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <csv.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "blacklist.h"
#include "suppress.h"
#include "phone.h"
#include "regex.h"
#include "ruleset.h"
#include "util.h"

/* rows per chunk handed to a thread; fixed, so the split never depends on the thread count */
#define BL_CHUNK 2048
/* longest value accepted in a do-not-call CSV file */
#define BL_MAX_FIELD 1024
/* longest e-mail the key function handles (RFC 5321 allows 254) */
#define BL_MAX_EMAIL 320

/* What a rule's pattern is matched against. */
enum field_kind
{
	FK_COLUMN,     /* a source column by name, resolved against the batch */
	FK_PHONES,     /* phone, phone2 and mobile: every given one must match */
	FK_PHONE_NORM, /* the normalised phones as E.164 digits: every one must match */
	FK_NAME_NORM,
	FK_EMAIL_NORM,
	FK_EMAIL_KEY,
	FK_STATUS_NORM
};

static const struct
{
	const char *name;
	enum field_kind kind;
} pseudo_fields[] = {
    {"phones", FK_PHONES},         {"phone_norm", FK_PHONE_NORM}, {"name_norm", FK_NAME_NORM},
    {"email_norm", FK_EMAIL_NORM}, {"email_key", FK_EMAIL_KEY},   {"status_norm", FK_STATUS_NORM},
};

/* A set of non-zero 64-bit numbers (0 marks an empty slot). */
struct u64_set
{
	uint64_t *slot;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

/* A set of strings (owned). */
struct str_set
{
	char **slot;
	size_t cap;
	size_t n;
};

struct blacklist_rule
{
	char *id; /* "blacklist.<id>": the rule_id stored with each lead */
	char *reason;
	char *where; /* "file:line" of the rule's first key, for messages */
	enum blacklist_level level;

	/* statuses = ...: lower-case canonical status names */
	char **statuses;
	int nstatuses;

	/* field + pattern */
	char *field;
	char *field_where;
	enum field_kind fkind;
	struct regex *re;
	bool invert;

	/* junk_phone = yes */
	bool junk_phone;
	int min_digits;
	bool special_is_junk;
	char **fakes; /* national digit strings */
	int nfakes;

	/* keyboard_mash = yes */
	bool mash;
	int mash_min;
	uint32_t **rows; /* code points of each keyboard row */
	int *rowlen;
	int nrows;

	/* do-not-call: phone_list, email_list, query */
	bool dnc;
	char *query;
	bool query_done;
	struct u64_set dnc_phones; /* E.164 keys, as phone.c reads them under the plan */
	struct str_set dnc_emails;
	const struct phone_plan *plan; /* the leads' numbering plan; borrowed */
};

struct blacklist_config
{
	const struct phone_plan *plan; /* borrowed from the normaliser's config */
	struct blacklist_rule *rules;
	int nrules;
	int *query_rule; /* rule index of each query */
	int nqueries;
	struct regex_limits lim;
};

/* ---------------------------------------------------------------- hash sets */

static uint64_t
mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static bool
u64_set_add(struct u64_set *s, uint64_t v)
{
	size_t h;

	if (v == 0)
		return true;
	if ((s->n + 1) * 2 > s->cap)
	{
		size_t ncap = s->cap ? s->cap * 2 : 64;
		uint64_t *ns = calloc(ncap, sizeof(*ns));

		if (ns == NULL)
			return false;
		for (size_t k = 0; k < s->cap; k++)
			if (s->slot[k])
			{
				for (h = mix64(s->slot[k]) & (ncap - 1); ns[h]; h = (h + 1) & (ncap - 1))
					;
				ns[h] = s->slot[k];
			}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	for (h = mix64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (s->slot[h] == v)
			return true;
	s->slot[h] = v;
	s->n++;
	return true;
}

static bool
u64_set_has(const struct u64_set *s, uint64_t v)
{
	if (s->cap == 0 || v == 0)
		return false;
	for (size_t h = mix64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (s->slot[h] == v)
			return true;
	return false;
}

static bool
str_set_add(struct str_set *s, const char *v)
{
	size_t h;

	if ((s->n + 1) * 2 > s->cap)
	{
		size_t ncap = s->cap ? s->cap * 2 : 64;
		char **ns = calloc(ncap, sizeof(*ns));

		if (ns == NULL)
			return false;
		for (size_t k = 0; k < s->cap; k++)
			if (s->slot[k])
			{
				for (h = util_hash64(s->slot[k]) & (ncap - 1); ns[h]; h = (h + 1) & (ncap - 1))
					;
				ns[h] = s->slot[k];
			}
		free(s->slot);
		s->slot = ns;
		s->cap = ncap;
	}
	for (h = util_hash64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (strcmp(s->slot[h], v) == 0)
			return true;
	if ((s->slot[h] = strdup(v)) == NULL)
		return false;
	s->n++;
	return true;
}

static bool
str_set_has(const struct str_set *s, const char *v)
{
	if (s->cap == 0 || v == NULL)
		return false;
	for (size_t h = util_hash64(v) & (s->cap - 1); s->slot[h]; h = (h + 1) & (s->cap - 1))
		if (strcmp(s->slot[h], v) == 0)
			return true;
	return false;
}

static void
str_set_free(struct str_set *s)
{
	for (size_t k = 0; k < s->cap; k++)
		free(s->slot[k]);
	free(s->slot);
}

/* ------------------------------------------------------- phones and e-mails */

/*
 * The digits of one phone written as text, in national form (leading 0),
 * into out (size >= 32).  *special is set for star codes ("*6700") and
 * *foreign for a number with another country code ("+1 212...", "0044..."),
 * which is left as its digits.  Returns the number of digits, 0 when the
 * text holds none.  Digits stop at the first letter or "#" after a digit,
 * which drops extensions written as "ext 12", "x12" or "שלוחה 12".
 */
static int
national_digits(const char *s, size_t len, char *out, bool *special, bool *foreign)
{
	char d[25];
	int n = 0;
	bool plus = false;

	*special = *foreign = false;
	for (size_t k = 0; k < len; k++)
	{
		unsigned char c = (unsigned char) s[k];

		if (c >= '0' && c <= '9')
		{
			if (n < 24) /* no plan has longer numbers */
				d[n++] = (char) c;
		}
		else if (c == '+' && n == 0)
			plus = true;
		else if (c == '*' && n == 0)
			*special = true;
		else if (n > 0 && (c == '#' || isalpha(c) || c >= 0x80))
			break;
	}
	d[n] = '\0';
	out[0] = '\0';
	if (n == 0)
		return 0;
	if (strncmp(d, "00972", 5) == 0 && n > 5)
		snprintf(out, 32, "0%s", d + 5);
	else if ((plus || n >= 11) && strncmp(d, "972", 3) == 0 && n > 3)
		snprintf(out, 32, "0%s", d + 3);
	else if (plus || (strncmp(d, "00", 2) == 0 && n > 8))
	{
		*foreign = true;
		snprintf(out, 32, "%s", d + (plus ? 0 : 2));
	}
	else if (d[0] != '0' && (n == 8 || n == 9))
		snprintf(out, 32, "0%s", d); /* the leading 0 was lost */
	else
		snprintf(out, 32, "%s", d);
	return (int) strlen(out);
}

bool
blacklist_fake_digits(const char *digits, int min_digits)
{
	int n = (int) strlen(digits);
	int up = 1, down = 1;
	bool same = n >= 7;

	if (n < min_digits)
		return true;
	/* the subscriber part (the last seven digits) is one digit repeated: 050-0000000 */
	for (int k = n - 6; same && k < n; k++)
		same = digits[k] == digits[n - 7];
	if (same)
		return true;
	/* an ascending or descending run of seven digits: 1234567, 9876543 */
	for (int k = 1; k < n; k++)
	{
		up = digits[k] == digits[k - 1] + 1 ? up + 1 : 1;
		down = digits[k] == digits[k - 1] - 1 ? down + 1 : 1;
		if (up >= 7 || down >= 7)
			return true;
	}
	return false;
}

/*
 * The key an e-mail is compared by on both sides of a do-not-call list:
 * trimmed, lower case, "+tag" dropped, and gmail's ignored dots dropped.
 * Matching a little too much is the safe side for a do-not-call list.
 */
static bool
email_key(const char *s, char *out, size_t size)
{
	const char *a, *z, *at;
	size_t n = 0;
	bool gmail;
	const char *dom;

	if (s == NULL)
		return false;
	for (a = s; *a && isspace((unsigned char) *a); a++)
		;
	for (z = a + strlen(a); z > a && isspace((unsigned char) z[-1]); z--)
		;
	if ((size_t) (z - a) >= size || (size_t) (z - a) >= BL_MAX_EMAIL)
		return false;
	at = NULL;
	for (const char *p = a; p < z; p++)
		if (*p == '@')
			at = p;
	if (at == NULL || at == a || at + 1 >= z)
		return false;
	dom = at + 1;
	gmail = (z - dom == 9 && strncasecmp(dom, "gmail.com", 9) == 0) ||
	        (z - dom == 14 && strncasecmp(dom, "googlemail.com", 14) == 0);
	for (const char *p = a; p < at; p++)
	{
		if (*p == '+')
			break;
		if (gmail && *p == '.')
			continue;
		out[n++] = (char) tolower((unsigned char) *p);
	}
	if (n == 0)
		return false;
	if (gmail)
	{
		memcpy(out + n, "@gmail.com", 11);
		return true;
	}
	out[n++] = '@';
	for (const char *p = dom; p < z; p++)
		out[n++] = (char) tolower((unsigned char) *p);
	out[n] = '\0';
	return true;
}

/* --------------------------------------------------------- keyboard mashing */

/* Decode one UTF-8 character; returns its length, 0 on a malformed one. */
static int
utf8_next(const unsigned char *p, uint32_t *cp)
{
	if (p[0] < 0x80)
	{
		*cp = p[0];
		return 1;
	}
	if ((p[0] & 0xe0) == 0xc0 && (p[1] & 0xc0) == 0x80)
	{
		*cp = ((uint32_t) (p[0] & 0x1f) << 6) | (p[1] & 0x3f);
		return 2;
	}
	if ((p[0] & 0xf0) == 0xe0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80)
	{
		*cp = ((uint32_t) (p[0] & 0x0f) << 12) | ((uint32_t) (p[1] & 0x3f) << 6) | (p[2] & 0x3f);
		return 3;
	}
	if ((p[0] & 0xf8) == 0xf0 && (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
	    (p[3] & 0xc0) == 0x80)
	{
		*cp = ((uint32_t) (p[0] & 0x07) << 18) | ((uint32_t) (p[1] & 0x3f) << 12) |
		      ((uint32_t) (p[2] & 0x3f) << 6) | (p[3] & 0x3f);
		return 4;
	}
	return 0;
}

/* Is the word w[0..n) a run of at least min keys, left to right, of one keyboard row? */
static bool
mash_word(const struct blacklist_rule *rl, const uint32_t *w, int n)
{
	if (n < rl->mash_min)
		return false;
	for (int r = 0; r < rl->nrows; r++)
	{
		const uint32_t *row = rl->rows[r];

		for (int p = 0; p + n <= rl->rowlen[r]; p++)
		{
			int k = 0;

			while (k < n && row[p + k] == w[k])
				k++;
			if (k == n)
				return true;
		}
	}
	return false;
}

/* True when the name is one or more words and every word is a keyboard run ("asdf", "שדגכ"). */
static bool
mash_name(const struct blacklist_rule *rl, const char *name)
{
	const unsigned char *p = (const unsigned char *) name;
	uint32_t w[64];
	int n = 0, words = 0;

	for (;;)
	{
		uint32_t cp = 0;
		int len = *p ? utf8_next(p, &cp) : 0;

		if (*p && len == 0)
			return false;
		if (*p == '\0' || cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r')
		{
			if (n > 0)
			{
				if (!mash_word(rl, w, n))
					return false;
				words++;
				n = 0;
			}
			if (*p == '\0')
				break;
		}
		else
		{
			if (n == (int) (sizeof(w) / sizeof(w[0])))
				return false;
			w[n++] = (cp < 0x80) ? (uint32_t) tolower((int) cp) : cp;
		}
		p += len;
	}
	return words > 0;
}

/* ------------------------------------------------------------ config load */

static void
rule_free(struct blacklist_rule *rl)
{
	free(rl->id);
	free(rl->reason);
	free(rl->where);
	for (int k = 0; k < rl->nstatuses; k++)
		free(rl->statuses[k]);
	free(rl->statuses);
	free(rl->field);
	free(rl->field_where);
	regex_free(rl->re);
	for (int k = 0; k < rl->nfakes; k++)
		free(rl->fakes[k]);
	free(rl->fakes);
	for (int k = 0; k < rl->nrows; k++)
		free(rl->rows[k]);
	free(rl->rows);
	free(rl->rowlen);
	free(rl->query);
	free(rl->dnc_phones.slot);
	str_set_free(&rl->dnc_emails);
}

void
blacklist_config_free(struct blacklist_config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < c->nrules; k++)
		rule_free(&c->rules[k]);
	free(c->rules);
	free(c->query_rule);
	free(c);
}

static const char *const default_rows[] = {"qwertyuiop", "asdfghjkl", "zxcvbnm", "קראטוןםפ",
                                           "שדגכעיחלךף", "זסבהנמצתץ", NULL};

static bool
load_rows(struct blacklist_rule *rl, char **items, int n, struct error *err)
{
	rl->rows = calloc((size_t) n, sizeof(*rl->rows));
	rl->rowlen = calloc((size_t) n, sizeof(*rl->rowlen));
	if (rl->rows == NULL || rl->rowlen == NULL)
		return error_oom(err);
	for (int k = 0; k < n; k++)
	{
		const unsigned char *p = (const unsigned char *) items[k];
		size_t len = strlen(items[k]);

		if ((rl->rows[k] = calloc(len + 1, sizeof(uint32_t))) == NULL)
			return error_oom(err);
		rl->nrows++;
		while (*p)
		{
			uint32_t cp;
			int l = utf8_next(p, &cp);

			if (l == 0)
				return error_set(err, EXIT_RULES,
				                 "%s: [%s] keyboard_rows: item %d is not "
				                 "valid UTF-8",
				                 rl->where, rl->id, k + 1);
			rl->rows[k][rl->rowlen[k]++] = cp < 0x80 ? (uint32_t) tolower((int) cp) : cp;
			p += l;
		}
	}
	return true;
}

/* Directory part of the file in a "file:line" location, for relative paths. */
static void
resolve_path(const char *where, const char *path, char *out, size_t size)
{
	const char *colon = strrchr(where, ':');
	const char *slash = NULL;

	if (path[0] == '/' || colon == NULL)
	{
		snprintf(out, size, "%s", path);
		return;
	}
	for (const char *p = where; p < colon; p++)
		if (*p == '/')
			slash = p;
	if (slash == NULL)
		snprintf(out, size, "%s", path);
	else
		snprintf(out, size, "%.*s/%s", (int) (slash - where), where, path);
}

/* libcsv callbacks for a do-not-call file */
struct dnc_file
{
	struct blacklist_rule *rl;
	const char *path;
	bool emails;    /* email_list: the first column is an e-mail */
	long line;      /* line being fed */
	long rec_start; /* line where the next record begins */
	long records;
	char *f[2]; /* the record's first two fields */
	int nf;
	bool failed;
	struct error *err;
};

static void *
dnc_realloc(void *p, size_t size)
{
	/* a do-not-call value is short; refusing growth bounds memory on a bad file */
	if (size > BL_MAX_FIELD * 2)
		return NULL;
	return realloc(p, size);
}

static void
dnc_field(void *data, size_t len, void *user)
{
	struct dnc_file *d = user;

	if (d->failed)
		return;
	if (data && memchr(data, '\0', len))
	{
		d->failed = true;
		error_set(d->err, EXIT_RULES, "%s:%ld: a value holds a NUL byte", d->path, d->line);
		return;
	}
	if (d->nf < 2)
	{
		if ((d->f[d->nf] = strndup(data ? (const char *) data : "", len)) == NULL)
		{
			d->failed = true;
			error_set(d->err, EXIT_INTERNAL, "out of memory");
			return;
		}
	}
	d->nf++;
}

static bool
has_digit(const char *s)
{
	for (; *s; s++)
		if (isdigit((unsigned char) *s))
			return true;
	return false;
}

static bool
blank(const char *s)
{
	for (; s && *s; s++)
		if (!isspace((unsigned char) *s))
			return false;
	return true;
}

static bool
dnc_add_phone_text(struct blacklist_rule *rl, const char *text, struct error *err)
{
	struct phone_number pn;
	enum phone_type t = phone_normalize(text, strlen(text), rl->plan, NULL, &pn);

	/* read as the normaliser reads the leads' phones, so both sides have the same key */
	if (t == PHONE_NONE || t == PHONE_INVALID || pn.e164 == 0)
		return error_set(err, EXIT_DATA, "do-not-call phone \"%s\" is not a phone number", text);
	if (!u64_set_add(&rl->dnc_phones, pn.e164))
		return error_oom(err);
	return true;
}

static bool
dnc_add_email_text(struct blacklist_rule *rl, const char *text, struct error *err)
{
	char key[BL_MAX_EMAIL + 16];

	if (!email_key(text, key, sizeof(key)))
		return error_set(err, EXIT_DATA, "do-not-call e-mail \"%s\" is not an e-mail address",
		                 text);
	if (!str_set_add(&rl->dnc_emails, key))
		return error_oom(err);
	return true;
}

static void
dnc_record(int term, void *user)
{
	struct dnc_file *d = user;
	const char *a, *b;

	(void) term;
	d->rec_start = d->line + 1;
	if (d->failed)
		goto out;
	d->records++;
	if (d->nf > 2)
	{
		d->failed = true;
		error_set(d->err, EXIT_RULES, "%s:%ld: do-not-call file has %d columns", d->path, d->line,
		          d->nf);
		error_detail(d->err, "Rule [%s] expects one column, or a phone and an e-mail.", d->rl->id);
		goto out;
	}
	a = d->f[0] ? d->f[0] : "";
	b = d->nf > 1 && d->f[1] ? d->f[1] : "";
	/* a header: the first record holds neither a digit nor an "@" */
	if (d->records == 1 && !has_digit(a) && strchr(a, '@') == NULL && !has_digit(b) &&
	    strchr(b, '@') == NULL)
		goto out;
	if (!blank(a) &&
	    !(d->emails ? dnc_add_email_text(d->rl, a, d->err) : dnc_add_phone_text(d->rl, a, d->err)))
		d->failed = true;
	else if (!blank(b) && (d->emails || !dnc_add_email_text(d->rl, b, d->err)))
	{
		d->failed = true;
		if (d->emails)
			error_set(d->err, EXIT_RULES, "do-not-call e-mail list has two columns");
	}
	if (d->failed && d->err->code != EXIT_INTERNAL)
	{
		char msg[sizeof(d->err->msg)];

		snprintf(msg, sizeof(msg), "%s", d->err->msg);
		error_set(d->err, EXIT_RULES, "%s:%ld: %s", d->path, d->line, msg);
		error_detail(d->err, "In the do-not-call list of rule [%s].", d->rl->id);
	}
out:
	free(d->f[0]);
	free(d->f[1]);
	d->f[0] = d->f[1] = NULL;
	d->nf = 0;
}

static bool
load_dnc_file(struct blacklist_rule *rl, const char *path, bool emails, struct error *err)
{
	struct csv_parser p;
	struct dnc_file d = {.rl = rl, .path = path, .emails = emails, .err = err, .rec_start = 1};
	FILE *fp;
	char buf[65536];
	size_t got;
	long line = 1;
	bool ok = true, first = true, ended_nl = true;

	if ((fp = fopen(path, "r")) == NULL)
		return error_set(err, EXIT_RULES, "could not open do-not-call file \"%s\": %s", path,
		                 strerror(errno));
	if (csv_init(&p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0)
	{
		fclose(fp);
		return error_oom(err);
	}
	csv_set_realloc_func(&p, dnc_realloc);

	/*
	 * Read in blocks and feed libcsv one line at a time, so that a record
	 * is reported with the line it ends on.  Lines may be of any length
	 * (the field cap bounds memory, not the reader).
	 */
	while (ok && (got = fread(buf, 1, sizeof(buf), fp)) > 0)
	{
		size_t off = 0;

		if (first && got >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
			off = 3;
		first = false;
		while (ok && off < got)
		{
			char *nl = memchr(buf + off, '\n', got - off);
			size_t seg = nl ? (size_t) (nl - (buf + off)) + 1 : got - off;

			d.line = line;
			if (csv_parse(&p, buf + off, seg, dnc_field, dnc_record, &d) != seg)
			{
				if (csv_error(&p) == CSV_ENOMEM)
					error_set(err, EXIT_RULES, "%s:%ld: a value is longer than %d bytes", path,
					          line, BL_MAX_FIELD);
				else
					error_set(err, EXIT_RULES, "%s:%ld: %s", path, line,
					          csv_strerror(csv_error(&p)));
				ok = false;
			}
			else if (d.failed)
				ok = false;
			off += seg;
			line += nl != NULL;
			ended_nl = nl != NULL;
		}
	}
	if (ok && ferror(fp))
		ok = error_set(err, EXIT_RULES, "could not read do-not-call file \"%s\": %s", path,
		               strerror(errno));
	/* a last record without a line end is on the line still open */
	d.line = ended_nl ? line - 1 : line;
	if (ok && csv_fini(&p, dnc_field, dnc_record, &d) != 0)
		ok = error_set(err, EXIT_RULES, "%s:%ld: unterminated quote in the record that begins here",
		               path, d.rec_start);
	if (ok && d.failed)
		ok = false;
	free(d.f[0]);
	free(d.f[1]);
	csv_free(&p);
	fclose(fp);
	return ok;
}

static bool
load_list(struct rules *r, const char *sec, const char *key, char ***items, int *n,
          struct error *err)
{
	const char *v = rules_get(r, sec, key);

	*items = NULL;
	*n = 0;
	if (v == NULL || *v == '\0')
		return true;
	if ((*n = rules_split_list(v, items)) < 0)
		return error_oom(err);
	return true;
}

static bool
load_rule(struct rules *r, const char *sec, struct blacklist_rule *rl,
          const struct regex_limits *lim, struct error *err)
{
	static const char *const levels[] = {"record", "person", NULL};
	const char *pattern, *v;
	char **items = NULL;
	int n, level;
	bool caseless;
	long l;
	const char **keys;
	int nkeys = rules_keys(r, sec, &keys);

	if (nkeys < 0)
		return error_oom(err);
	rl->where = strdup(nkeys > 0 ? rules_where(r, sec, keys[0]) : "");
	free(keys);
	rl->id = strdup(sec);
	if (rl->where == NULL || rl->id == NULL)
		return error_oom(err);
	if (!rules_get_enum(r, sec, "level", levels, &level, err))
		return false;
	rl->level = (enum blacklist_level) level;
	v = rules_get(r, sec, "reason");
	if (v && *v)
		rl->reason = strdup(v);
	else
	{
		rl->reason = malloc(strlen(sec) + 16);
		if (rl->reason)
			sprintf(rl->reason, "black-list rule %s", sec + strlen("blacklist."));
	}
	if (rl->reason == NULL)
		return error_oom(err);

	/* statuses */
	if (!load_list(r, sec, "statuses", &items, &n, err))
		return false;
	if (n > 0)
	{
		if ((rl->statuses = calloc((size_t) n, sizeof(char *))) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
		for (int k = 0; k < n; k++)
		{
			char *s = strdup(items[k]);

			if (s == NULL)
			{
				rules_list_free(items);
				return error_oom(err);
			}
			for (char *q = s; *q; q++)
				*q = (char) tolower((unsigned char) *q);
			rl->statuses[rl->nstatuses++] = s;
		}
	}
	rules_list_free(items);

	/* field + pattern */
	pattern = rules_get(r, sec, "pattern");
	v = rules_get(r, sec, "field");
	if (!rules_get_bool(r, sec, "caseless", &caseless, err) ||
	    !rules_get_bool(r, sec, "invert", &rl->invert, err))
		return false;
	if ((pattern && *pattern) != (v && *v))
		return error_set(err, EXIT_RULES, "%s: [%s] needs both field and pattern",
		                 (pattern && *pattern) ? rules_where(r, sec, "pattern")
		                                       : rules_where(r, sec, "field"),
		                 sec);
	if (pattern && *pattern)
	{
		rl->fkind = FK_COLUMN;
		for (size_t k = 0; k < sizeof(pseudo_fields) / sizeof(pseudo_fields[0]); k++)
			if (strcmp(v, pseudo_fields[k].name) == 0)
				rl->fkind = pseudo_fields[k].kind;
		if ((rl->field = strdup(v)) == NULL ||
		    (rl->field_where = strdup(rules_where(r, sec, "field"))) == NULL)
			return error_oom(err);
		rl->re = regex_compile(pattern, caseless ? REGEX_CASELESS : 0, lim, sec,
		                       rules_where(r, sec, "pattern"), err);
		if (rl->re == NULL)
			return false;
	}

	/* junk_phone = yes and its knobs */
	if (!rules_get_bool(r, sec, "junk_phone", &rl->junk_phone, err) ||
	    !rules_get_int(r, sec, "min_digits", 1, 15, &l, err) ||
	    !rules_get_bool(r, sec, "special_is_junk", &rl->special_is_junk, err))
		return false;
	rl->min_digits = (int) l;
	if (!load_list(r, sec, "fake_phones", &items, &n, err))
		return false;
	if (n > 0 && (rl->fakes = calloc((size_t) n, sizeof(char *))) == NULL)
	{
		rules_list_free(items);
		return error_oom(err);
	}
	for (int k = 0; k < n; k++)
	{
		char nat[32];
		bool special, foreign;

		if (national_digits(items[k], strlen(items[k]), nat, &special, &foreign) == 0)
		{
			error_set(err, EXIT_RULES, "%s: [%s] fake_phones: \"%s\" holds no digits",
			          rules_where(r, sec, "fake_phones"), sec, items[k]);
			rules_list_free(items);
			return false;
		}
		if ((rl->fakes[rl->nfakes++] = strdup(nat)) == NULL)
		{
			rules_list_free(items);
			return error_oom(err);
		}
	}
	rules_list_free(items);
	if (!rl->junk_phone &&
	    (rl->nfakes > 0 || rules_get(r, sec, "min_digits") || rules_get(r, sec, "special_is_junk")))
		return error_set(err, EXIT_RULES,
		                 "%s: [%s] min_digits, special_is_junk and "
		                 "fake_phones need junk_phone = yes",
		                 rl->where, sec);

	/* keyboard_mash = yes */
	if (!rules_get_bool(r, sec, "keyboard_mash", &rl->mash, err) ||
	    !rules_get_int(r, sec, "mash_min", 2, 32, &l, err))
		return false;
	rl->mash_min = (int) l;
	if (!load_list(r, sec, "keyboard_rows", &items, &n, err))
		return false;
	if (!rl->mash && (n > 0 || rules_get(r, sec, "mash_min")))
	{
		rules_list_free(items);
		return error_set(err, EXIT_RULES,
		                 "%s: [%s] keyboard_rows and mash_min need "
		                 "keyboard_mash = yes",
		                 rl->where, sec);
	}
	if (rl->mash)
	{
		bool ok;

		if (n > 0)
			ok = load_rows(rl, items, n, err);
		else
		{
			int nd = 0;

			while (default_rows[nd])
				nd++;
			ok = load_rows(rl, (char **) default_rows, nd, err);
		}
		if (!ok)
		{
			rules_list_free(items);
			return false;
		}
	}
	rules_list_free(items);

	/* do-not-call lists */
	v = rules_get(r, sec, "query");
	if (v && *v)
	{
		if ((rl->query = strdup(v)) == NULL)
			return error_oom(err);
		rl->dnc = true;
	}
	for (int k = 0; k < 2; k++)
	{
		const char *key = k == 0 ? "phone_list" : "email_list";
		char path[4096];

		v = rules_get(r, sec, key);
		if (v == NULL || *v == '\0')
			continue;
		rl->dnc = true;
		resolve_path(rules_where(r, sec, key), v, path, sizeof(path));
		if (!load_dnc_file(rl, path, k == 1, err))
		{
			if (err->code == EXIT_INTERNAL)
				return false;
			if (strstr(err->msg, "could not") == err->msg)
				error_detail(err, "%s: [%s] %s", rules_where(r, sec, key), sec, key);
			return false;
		}
	}

	if (rl->nstatuses == 0 && rl->re == NULL && !rl->junk_phone && !rl->mash && !rl->dnc)
	{
		error_set(err, EXIT_RULES, "%s: [%s] states no test", rl->where, sec);
		return error_hint(err, "Give statuses, field and pattern, junk_phone, keyboard_mash, "
		                       "phone_list, email_list or query.");
	}
	return true;
}

bool
blacklist_config_load(struct rules *r, const struct phone_plan *plan, struct blacklist_config **out,
                      struct error *err)
{
	struct blacklist_config *c = calloc(1, sizeof(*c));
	const char **secs = NULL;
	int n;

	*out = NULL;
	if (c == NULL)
		return error_oom(err);
	if ((c->plan = plan) == NULL)
	{
		free(c);
		return error_set(err, EXIT_INTERNAL, "the black-list needs the numbering plan");
	}
	if (!regex_limits_load(r, &c->lim, err))
		goto fail;
	if ((n = rules_sections(r, "blacklist", &secs)) < 0 ||
	    (c->rules = calloc((size_t) n + 1, sizeof(*c->rules))) == NULL ||
	    (c->query_rule = calloc((size_t) n + 1, sizeof(int))) == NULL)
	{
		error_oom(err);
		goto fail;
	}
	for (int k = 0; k < n; k++)
	{
		bool enabled;
		struct blacklist_rule *rl;

		/* a bare [blacklist] section has no keys of its own: any key there is unknown */
		if (strcmp(secs[k], "blacklist") == 0)
			continue;
		if (!rules_get_bool(r, secs[k], "enabled", &enabled, err))
			goto fail;
		if (!enabled)
		{
			/* switched off, e.g. by a campaign file: its other keys are not checked */
			rules_use_section(r, secs[k]);
			continue;
		}
		rl = &c->rules[c->nrules++];
		rl->plan = c->plan;
		if (!load_rule(r, secs[k], rl, &c->lim, err))
			goto fail;
		if (rl->query)
			c->query_rule[c->nqueries++] = c->nrules - 1;
	}
	free(secs);
	*out = c;
	return true;

fail:
	free(secs);
	blacklist_config_free(c);
	return false;
}

int
blacklist_rule_count(const struct blacklist_config *c)
{
	return c ? c->nrules : 0;
}

const char *
blacklist_rule_id(const struct blacklist_config *c, int k)
{
	return (c && k >= 0 && k < c->nrules) ? c->rules[k].id : NULL;
}

int
blacklist_query_count(const struct blacklist_config *c)
{
	return c ? c->nqueries : 0;
}

const char *
blacklist_query(const struct blacklist_config *c, int q, const char **rule_id)
{
	const struct blacklist_rule *rl;

	if (c == NULL || q < 0 || q >= c->nqueries)
		return NULL;
	rl = &c->rules[c->query_rule[q]];
	if (rule_id)
		*rule_id = rl->id;
	return rl->query;
}

static struct blacklist_rule *
query_rule(struct blacklist_config *c, int q, struct error *err)
{
	if (c == NULL || q < 0 || q >= c->nqueries)
	{
		error_set(err, EXIT_INTERNAL, "no do-not-call query number %d", q);
		return NULL;
	}
	return &c->rules[c->query_rule[q]];
}

void
blacklist_query_done(struct blacklist_config *c, int q)
{
	if (c && q >= 0 && q < c->nqueries)
		c->rules[c->query_rule[q]].query_done = true;
}

bool
blacklist_add_dnc_phone(struct blacklist_config *c, int q, uint64_t e164, struct error *err)
{
	struct blacklist_rule *rl = query_rule(c, q, err);

	if (rl == NULL)
		return false;
	if (!u64_set_add(&rl->dnc_phones, e164))
		return error_oom(err);
	return true;
}

bool
blacklist_add_dnc_email(struct blacklist_config *c, int q, const char *email, struct error *err)
{
	struct blacklist_rule *rl = query_rule(c, q, err);

	if (rl == NULL)
		return false;
	if (blank(email))
		return true;
	return dnc_add_email_text(rl, email, err);
}

bool
blacklist_add_dnc_value(struct blacklist_config *c, int q, const char *text, struct error *err)
{
	struct blacklist_rule *rl = query_rule(c, q, err);

	if (rl == NULL)
		return false;
	if (blank(text))
		return true;
	if (strchr(text, '@'))
		return dnc_add_email_text(rl, text, err);
	return dnc_add_phone_text(rl, text, err);
}

/* ------------------------------------------------------------- the stage */

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
	const char *s = b->status_norm[i] ? b->status_norm[i] : b->col[FIELD_STATUS][i];
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
dnc_hit(const struct blacklist_rule *rl, const struct batch *b, size_t i)
{
	char key[BL_MAX_EMAIL + 16];
	const char *e;

	for (int k = 0; k < BATCH_PHONES; k++)
		if (u64_set_has(&rl->dnc_phones, b->phones[i][k]))
			return true;
	if (rl->dnc_emails.n == 0)
		return false;
	if (b->email_key[i] && str_set_has(&rl->dnc_emails, b->email_key[i]))
		return true;
	e = b->email_norm[i] ? b->email_norm[i] : b->col[FIELD_EMAIL][i];
	return email_key(e, key, sizeof(key)) && str_set_has(&rl->dnc_emails, key);
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

/* 1 junk, 0 a real-looking number, -1 no digits (not a phone at all) */
static int
junk_number(const struct blacklist_rule *rl, const char *s, size_t len)
{
	char nat[32];
	bool special, foreign;

	if (national_digits(s, len, nat, &special, &foreign) == 0)
		return -1;
	/* Israeli numbers that begin with 1 are services: 1-800, 1-700, 1-599, 144 */
	if (special || (!foreign && nat[0] == '1'))
		return rl->special_is_junk ? 1 : 0;
	if (blacklist_fake_digits(nat, rl->min_digits))
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
		const char *s = b->col[fields[f]][i];

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
		int len;

		if (b->phones[i][k] == 0)
			continue;
		if (b->phone_types[i][k] == PHONE_SPECIAL)
		{
			/* 1-800 / 1-700 / *6700: the normaliser knows them as service numbers */
			seen++;
			junk += rl->special_is_junk;
			continue;
		}
		d[0] = '+';
		len = 1 + u64_digits(b->phones[i][k], d + 1);
		seen++;
		junk += junk_number(rl, d, (size_t) len) > 0;
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
		case FK_COLUMN: vals[nv++] = b->col[rv->col][i]; break;
		case FK_PHONES:
			vals[nv++] = b->col[FIELD_PHONE][i];
			vals[nv++] = b->col[FIELD_PHONE2][i];
			vals[nv++] = b->col[FIELD_MOBILE][i];
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

			if (vals[k] == NULL || (rl->fkind == FK_PHONES && blank(vals[k])))
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
rule_hit(const struct blacklist_rule *rl, const struct resolved *rv, const struct batch *b,
         size_t i, struct regex_scratch *s, int *code, bool *matched)
{
	/* the cheap tests first; all the tests a rule states must hold */
	if (rl->nstatuses > 0 && !status_hit(rl, b, i))
		return 0;
	if (rl->dnc && !dnc_hit(rl, b, i))
		return 0;
	if (rl->junk_phone && !junk_phone_hit(rl, b, i))
		return 0;
	if (rl->mash && (b->col[FIELD_NAME][i] == NULL || !mash_name(rl, b->col[FIELD_NAME][i])))
		return 0;
	if (rl->re)
		return pattern_hit(rl, rv, b, i, s, code, matched);
	return 1;
}

bool
blacklist_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                struct error *err)
{
	const struct blacklist_config *c = rs->blacklist;
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
	size_t forgotten = suppress_apply(b->suppress, b);

	if (forgotten == SIZE_MAX)
		return error_oom(err);
	if (forgotten)
		stage_count(st, SUPPRESS_RULE, forgotten);
	if (c == NULL || c->nrules <= 0)
		return true;
	nr = c->nrules;
	util_row_fail_init(&fail);
	for (int k = 0; k < nr; k++)
		if (c->rules[k].query && !c->rules[k].query_done)
			return error_set(err, EXIT_INTERNAL, "the do-not-call query of rule [%s] was not run",
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

#pragma omp parallel reduction(+ : optouts)
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
				h = rule_hit(rl, &rv[k], b, i, s, &code, &matched);
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
