/*
 * email.c
 *    Cleaning e-mail addresses and building their identity keys.
 *
 * The rules hold two sorted tables looked up by binary search: mistyped
 * domains with their corrections, and the domains of each provider with
 * the provider's delivery rules (dots ignored, "+tags" dropped, one
 * canonical domain).  The syntax check is the practical subset of RFC 5322
 * that real mailboxes use: an unquoted local part of letters, digits and
 * the few allowed symbols, no leading, trailing or doubled dot, and a
 * domain of two labels or more whose last is not all digits.  Quoted local
 * parts, address literals and non-ASCII addresses are refused: in legacy
 * lead data they are typing mistakes, not mailboxes.  The rules own all
 * their strings; normalising writes only into the caller's buffers.  Two
 * rule-free keys serve the do-not-call lists (email_loose_key) and
 * de-duplication's dot-blind comparison (email_without_dots).
 */
#include "config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "email.h"

#define LOCAL_MAX  64
#define DOMAIN_MAX 253
#define LABEL_MAX  63

struct typo
{
	char *wrong;
	char *right;
};

struct provider
{
	char *name;
	bool ignore_dots;
	bool plus_tags;
	char *canonical; /* NULL: keep the address's own domain */
};

struct pdomain
{
	char *domain;
	int provider;
};

struct email_rules
{
	bool lower_local;
	struct typo *typos; /* sorted by wrong once finished */
	int ntypos;
	int captypos;
	struct provider *providers;
	int nproviders;
	int capproviders;
	struct pdomain *pdomains; /* sorted by domain once finished */
	int npdomains;
	int cappdomains;
};

static bool
oom(struct error *err)
{
	return error_oom(err);
}

static char
lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char) (c - 'A' + 'a') : c;
}

/* A copy of s in lower case, or NULL on OOM. */
static char *
lower_dup(const char *s)
{
	char *d = strdup(s);

	if (d != NULL)
		for (char *p = d; *p; p++)
			*p = lower(*p);
	return d;
}

struct email_rules *
email_rules_new(void)
{
	struct email_rules *er = calloc(1, sizeof(*er));

	if (er != NULL)
		er->lower_local = true;
	return er;
}

void
email_rules_free(struct email_rules *er)
{
	if (er == NULL)
		return;
	for (int k = 0; k < er->ntypos; k++)
	{
		free(er->typos[k].wrong);
		free(er->typos[k].right);
	}
	free(er->typos);
	for (int k = 0; k < er->nproviders; k++)
	{
		free(er->providers[k].name);
		free(er->providers[k].canonical);
	}
	free(er->providers);
	for (int k = 0; k < er->npdomains; k++)
		free(er->pdomains[k].domain);
	free(er->pdomains);
	free(er);
}

void
email_rules_set_lower_local(struct email_rules *er, bool on)
{
	er->lower_local = on;
}

bool
email_valid_domain(const char *s, size_t len)
{
	size_t label = 0, labels = 1, last = 0; /* start of the last label */
	bool digits_only = true;

	if (len == 0 || len > DOMAIN_MAX)
		return false;
	for (size_t k = 0; k < len; k++)
	{
		char c = s[k];

		if (c == '.')
		{
			if (label == 0 || s[k - 1] == '-')
				return false;
			labels++;
			label = 0;
			last = k + 1;
			digits_only = true;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > LABEL_MAX)
			return false;
		if (c < '0' || c > '9')
			digits_only = false;
	}
	/* the last label: not empty, not ending in "-", at least two characters, not a number */
	return label > 0 && s[len - 1] != '-' && labels >= 2 && len - last >= 2 && !digits_only;
}

bool
email_rules_add_typo(struct email_rules *er, const char *wrong, const char *right,
                     const char *where, struct error *err)
{
	struct typo t;

	if (!email_valid_domain(wrong, strlen(wrong)))
		return error_set(err, EXIT_RULES, "%s: \"%s\" is not a domain name", where, wrong);
	if (!email_valid_domain(right, strlen(right)))
		return error_set(err, EXIT_RULES, "%s: \"%s\" is not a domain name", where, right);
	if (strcasecmp(wrong, right) == 0)
		return error_set(err, EXIT_RULES, "%s: typo \"%s\" corrects to itself", where, wrong);
	if (er->ntypos == er->captypos)
	{
		int ncap = er->captypos ? er->captypos * 2 : 32;
		struct typo *nt = realloc(er->typos, (size_t) ncap * sizeof(*nt));

		if (nt == NULL)
			return oom(err);
		er->typos = nt;
		er->captypos = ncap;
	}
	t.wrong = lower_dup(wrong);
	t.right = lower_dup(right);
	if (t.wrong == NULL || t.right == NULL)
	{
		free(t.wrong);
		free(t.right);
		return oom(err);
	}
	er->typos[er->ntypos++] = t;
	return true;
}

bool
email_rules_add_provider(struct email_rules *er, const char *name, char *const *domains,
                         int ndomains, bool ignore_dots, bool plus_tags,
                         const char *canonical_domain, const char *where, struct error *err)
{
	struct provider pv = {0};

	if (ndomains <= 0)
		return error_set(err, EXIT_RULES, "%s: provider \"%s\" lists no domains", where, name);
	if (canonical_domain != NULL && *canonical_domain &&
	    !email_valid_domain(canonical_domain, strlen(canonical_domain)))
		return error_set(err, EXIT_RULES, "%s: \"%s\" is not a domain name", where,
		                 canonical_domain);
	for (int k = 0; k < ndomains; k++)
	{
		if (!email_valid_domain(domains[k], strlen(domains[k])))
			return error_set(err, EXIT_RULES, "%s: \"%s\" is not a domain name", where, domains[k]);
		for (int j = 0; j < er->npdomains; j++)
			if (strcasecmp(er->pdomains[j].domain, domains[k]) == 0)
				return error_set(err, EXIT_RULES,
				                 "%s: domain \"%s\" already belongs to "
				                 "provider \"%s\"",
				                 where, domains[k], er->providers[er->pdomains[j].provider].name);
	}
	if (er->nproviders == er->capproviders)
	{
		int ncap = er->capproviders ? er->capproviders * 2 : 8;
		struct provider *np = realloc(er->providers, (size_t) ncap * sizeof(*np));

		if (np == NULL)
			return oom(err);
		er->providers = np;
		er->capproviders = ncap;
	}
	pv.name = strdup(name);
	pv.ignore_dots = ignore_dots;
	pv.plus_tags = plus_tags;
	pv.canonical = (canonical_domain && *canonical_domain) ? lower_dup(canonical_domain) : NULL;
	if (pv.name == NULL || (canonical_domain && *canonical_domain && pv.canonical == NULL))
	{
		free(pv.name);
		free(pv.canonical);
		return oom(err);
	}
	er->providers[er->nproviders++] = pv;
	for (int k = 0; k < ndomains; k++)
	{
		if (er->npdomains == er->cappdomains)
		{
			int ncap = er->cappdomains ? er->cappdomains * 2 : 16;
			struct pdomain *nd = realloc(er->pdomains, (size_t) ncap * sizeof(*nd));

			if (nd == NULL)
				return oom(err);
			er->pdomains = nd;
			er->cappdomains = ncap;
		}
		if ((er->pdomains[er->npdomains].domain = lower_dup(domains[k])) == NULL)
			return oom(err);
		er->pdomains[er->npdomains++].provider = er->nproviders - 1;
	}
	return true;
}

static int
typo_cmp(const void *a, const void *b)
{
	return strcmp(((const struct typo *) a)->wrong, ((const struct typo *) b)->wrong);
}

static int
pdomain_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pdomain *) a)->domain, ((const struct pdomain *) b)->domain);
}

bool
email_rules_finish(struct email_rules *er, struct error *err)
{
	/* (qsort and bsearch take no NULL array, even empty) */
	if (er->ntypos > 0)
		qsort(er->typos, (size_t) er->ntypos, sizeof(*er->typos), typo_cmp);
	if (er->npdomains > 0)
		qsort(er->pdomains, (size_t) er->npdomains, sizeof(*er->pdomains), pdomain_cmp);
	for (int k = 1; k < er->ntypos; k++)
		if (strcmp(er->typos[k].wrong, er->typos[k - 1].wrong) == 0)
			return error_set(err, EXIT_RULES, "typo domain \"%s\" is listed twice",
			                 er->typos[k].wrong);
	for (int k = 0; k < er->ntypos; k++)
	{
		struct pdomain key = {.domain = er->typos[k].wrong};

		if (er->npdomains > 0 &&
		    bsearch(&key, er->pdomains, (size_t) er->npdomains, sizeof(key), pdomain_cmp))
			return error_set(err, EXIT_RULES,
			                 "domain \"%s\" is both a typo and a provider's "
			                 "domain",
			                 er->typos[k].wrong);
	}
	return true;
}

/* Unicode white space and invisible marks copied with addresses: NBSP, ZWSP, LRM/RLM, BOM. */
static size_t
invisible_at(const unsigned char *s, size_t len)
{
	if (len >= 2 && s[0] == 0xC2 && s[1] == 0xA0)
		return 2;
	if (len >= 3 && s[0] == 0xE2 && s[1] == 0x80 &&
	    ((s[2] >= 0x8B && s[2] <= 0x8F) || (s[2] >= 0xAA && s[2] <= 0xAF)))
		return 3;
	if (len >= 3 && s[0] == 0xE2 && s[1] == 0x81 && s[2] >= 0xA6 && s[2] <= 0xA9)
		return 3;
	if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
		return 3;
	return 0;
}

static bool
ascii_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Trim white space and invisible marks at both ends of [*a, *z). */
static void
trim(const char **a, const char **z)
{
	for (;;)
	{
		size_t k;

		if (*a < *z && ascii_space((unsigned char) **a))
			(*a)++;
		else if ((k = invisible_at((const unsigned char *) *a, (size_t) (*z - *a))) > 0)
			*a += k;
		else
			break;
	}
	for (;;)
	{
		if (*z > *a && ascii_space((unsigned char) (*z)[-1]))
			(*z)--;
		else if (*z - *a >= 2 && invisible_at((const unsigned char *) *z - 2, 2) == 2)
			*z -= 2;
		else if (*z - *a >= 3 && invisible_at((const unsigned char *) *z - 3, 3) == 3)
			*z -= 3;
		else
			break;
	}
}

static bool
local_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-.", c) != NULL);
}

static bool
valid_local(const char *s, size_t len)
{
	if (len == 0 || len > LOCAL_MAX || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (size_t k = 0; k < len; k++)
		if (!local_char(s[k]) || (s[k] == '.' && k > 0 && s[k - 1] == '.'))
			return false;
	return true;
}

enum email_result
email_normalize(const struct email_rules *er, const char *in, char *norm, char *key,
                unsigned *fixes)
{
	const char *a, *z, *at, *domain;
	char dom[EMAIL_BUF];
	size_t llen, dlen, o;
	const struct provider *pv = NULL;

	norm[0] = key[0] = '\0';
	*fixes = 0;
	if (in == NULL)
		return EMAIL_NONE;
	a = in;
	z = in + strlen(in);
	trim(&a, &z);
	if (a == z)
		return EMAIL_NONE;
	/* "mailto:x@y" and "<x@y>" as pasted from mail programs */
	if (z - a > 7 && strncasecmp(a, "mailto:", 7) == 0)
	{
		a += 7;
		trim(&a, &z);
	}
	if (z - a > 2 && *a == '<' && z[-1] == '>')
	{
		a++;
		z--;
		trim(&a, &z);
	}
	if (z - a > EMAIL_MAX || (at = memchr(a, '@', (size_t) (z - a))) == NULL ||
	    memchr(at + 1, '@', (size_t) (z - at - 1)) != NULL)
		return EMAIL_INVALID;
	llen = (size_t) (at - a);
	dlen = (size_t) (z - at - 1);
	if (!valid_local(a, llen) || !email_valid_domain(at + 1, dlen))
		return EMAIL_INVALID;
	for (size_t k = 0; k < dlen; k++)
		dom[k] = lower(at[1 + k]);
	dom[dlen] = '\0';
	domain = dom;
	{
		struct typo tk = {.wrong = dom};
		const struct typo *t =
		    er->ntypos == 0 ? NULL
		                    : bsearch(&tk, er->typos, (size_t) er->ntypos, sizeof(tk), typo_cmp);

		if (t != NULL)
		{
			domain = t->right;
			dlen = strlen(domain);
			*fixes |= EMAIL_FIX_DOMAIN_TYPO;
		}
	}
	if (llen + 1 + dlen > EMAIL_MAX)
		return EMAIL_INVALID;

	/* the normalised address */
	for (size_t k = 0; k < llen; k++)
		norm[k] = er->lower_local ? lower(a[k]) : a[k];
	norm[llen] = '@';
	memcpy(norm + llen + 1, domain, dlen + 1);

	/* the identity key: the mailbox the provider delivers to */
	{
		struct pdomain pk = {.domain = (char *) domain};
		const struct pdomain *pd =
		    er->npdomains == 0
		        ? NULL
		        : bsearch(&pk, er->pdomains, (size_t) er->npdomains, sizeof(pk), pdomain_cmp);

		if (pd != NULL)
			pv = &er->providers[pd->provider];
	}
	if (pv != NULL && pv->plus_tags)
	{
		const char *plus = memchr(a, '+', llen);

		/* "+tag@" alone is a whole local part, not a tag */
		if (plus != NULL && plus > a)
			llen = (size_t) (plus - a);
	}
	o = 0;
	for (size_t k = 0; k < llen; k++)
		if (!(pv != NULL && pv->ignore_dots && a[k] == '.'))
			key[o++] = lower(a[k]);
	if (o == 0)
	{
		/* cannot happen for a valid local part; kept as a guard */
		norm[0] = '\0';
		return EMAIL_INVALID;
	}
	key[o++] = '@';
	if (pv != NULL && pv->canonical != NULL)
		domain = pv->canonical;
	memcpy(key + o, domain, strlen(domain) + 1);
	return EMAIL_VALID;
}

/* See email.h: no syntax check, no rules; gmail's habits are built in. */
bool
email_loose_key(const char *s, char *out, size_t size)
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
	if ((size_t) (z - a) >= size || (size_t) (z - a) >= EMAIL_KEY_BUF)
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

/*
 * The address with the dots of its local part (before the last "@"; all of
 * them when there is no "@") left out, cut at `size` bytes; not terminated.
 */
size_t
email_without_dots(const char *s, char *out, size_t size)
{
	size_t o = 0;
	const char *at = strrchr(s, '@');

	for (const char *p = s; *p && o < size; p++)
		if (*p != '.' || (at != NULL && p > at))
			out[o++] = *p;
	return o;
}

bool
email_same_but_dots(const char *a, const char *b)
{
	const char *aa = strrchr(a, '@'), *ab = strrchr(b, '@');

	if (aa == NULL || ab == NULL || strcmp(aa, ab) != 0)
		return false;
	for (;;)
	{
		while (a < aa && *a == '.')
			a++;
		while (b < ab && *b == '.')
			b++;
		if (a == aa || b == ab)
			return a == aa && b == ab;
		if (*a++ != *b++)
			return false;
	}
}
