/*
 * rules.c
 *    Reading rule files with libinih and handing their keys to the modules.
 *
 * Entries (section, key, value, file, line, used) live in one growing array
 * in order of first appearance; a later file that sets the same key
 * replaces the value and the location in place, so the order of rules
 * (which matters for black-list rules) is the order they were first named.
 * inih is fed through ini_parse_stream() with our own line reader, because
 * the library reports no line numbers to the handler and truncates lines
 * longer than INI_MAX_LINE: the reader counts lines and refuses long ones.
 * A key that continues on indented lines (inih's multi-line values) is
 * joined with newlines.  Everything here runs single-threaded at start-up.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ini.h>
#include <openssl/evp.h>

#include "embedded.h"
#include "rules.h"
#include "strsim.h"
#include "util.h"

struct entry
{
	char *section;
	char *key;
	char *value;
	const char *file; /* points into files[] */
	int line;
	int load; /* which load call set it */
	bool used;
	char *dvalue;       /* the value default.ini gave it, or NULL: a key of the defaults */
	bool from_defaults; /* the value is still default.ini's */
	char where[300];    /* "file:line", built on demand */
};

struct rules
{
	struct entry *e;
	int n, cap;
	char **files;
	int nfiles;
	char *files_joined;
	char **asked; /* sections a module asked about, present or not */
	int nasked;
	bool *tainted;    /* asked[i]: a loader stopped inside it */
	bool *enumerated; /* asked[i]: read with rules_keys(), its keys are data */
	char **absent;    /* "section\nkey" asked for and not set: known keys too */
	int nabsent;
	bool collect;       /* collecting problems (check-rules) */
	bool defaults_only; /* the typed getters read default.ini's values */
	struct error *problems;
	int nproblems;
};

/* State of one ini_parse_stream() call. */
struct load_ctx
{
	struct rules *r;
	const char *file;
	int load;
	bool defaults;  /* loading default.ini: remember its values */
	bool instances; /* ... and its instance sections ([blacklist.x], not [blacklist.*]) */
	/* the reader's side */
	FILE *fp;           /* file input, or NULL for string input */
	const char *text;   /* string input position */
	int line;           /* lines read so far = line of the last line read */
	bool last_indented; /* the last line read began with white space */
	bool too_long;
	bool nul; /* a NUL byte on the last line read: not a text file */
	/* the handler's side */
	int prev; /* entry index set by the previous handler call, or -1 */
	int prev_line;
	struct error *err;
	bool failed;
};

struct rules *
rules_new(void)
{
	return calloc(1, sizeof(struct rules));
}

void
rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (int i = 0; i < r->n; i++)
	{
		free(r->e[i].section);
		free(r->e[i].key);
		free(r->e[i].value);
		free(r->e[i].dvalue);
	}
	free(r->e);
	for (int i = 0; i < r->nfiles; i++)
		free(r->files[i]);
	free(r->files);
	free(r->files_joined);
	for (int i = 0; i < r->nasked; i++)
		free(r->asked[i]);
	free(r->asked);
	free(r->tainted);
	free(r->enumerated);
	for (int i = 0; i < r->nabsent; i++)
		free(r->absent[i]);
	free(r->absent);
	free(r->problems);
	free(r);
}

/* Remember that a module reads `section`, so a typo there is an unknown key. Its index, or -1. */
static int
note_asked(struct rules *r, const char *section)
{
	char **na;
	bool *nt, *ne;

	for (int i = 0; i < r->nasked; i++)
		if (strcmp(r->asked[i], section) == 0)
			return i;
	if ((na = realloc(r->asked, (size_t) (r->nasked + 1) * sizeof(*na))) == NULL)
		return -1;
	r->asked = na;
	if ((nt = realloc(r->tainted, (size_t) (r->nasked + 1) * sizeof(*nt))) == NULL)
		return -1;
	r->tainted = nt;
	if ((ne = realloc(r->enumerated, (size_t) (r->nasked + 1) * sizeof(*ne))) == NULL)
		return -1;
	r->enumerated = ne;
	if ((r->asked[r->nasked] = strdup(section)) == NULL)
		return -1;
	r->tainted[r->nasked] = false;
	r->enumerated[r->nasked] = false;
	return r->nasked++;
}

/* Remember a key asked for that no file sets, so a typo of it can be told. */
static void
note_absent(struct rules *r, const char *section, const char *key)
{
	size_t sl = strlen(section), kl = strlen(key);
	char *pair, **na;

	for (int i = 0; i < r->nabsent; i++)
		if (strncmp(r->absent[i], section, sl) == 0 && r->absent[i][sl] == '\n' &&
		    strcmp(r->absent[i] + sl + 1, key) == 0)
			return;
	if ((pair = malloc(sl + kl + 2)) == NULL)
		return;
	if ((na = realloc(r->absent, (size_t) (r->nabsent + 1) * sizeof(*na))) == NULL)
	{
		free(pair);
		return;
	}
	r->absent = na;
	memcpy(pair, section, sl);
	pair[sl] = '\n';
	memcpy(pair + sl + 1, key, kl + 1);
	r->absent[r->nabsent++] = pair;
}

static int
find(const struct rules *r, const char *section, const char *key)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->e[i].section, section) == 0 && strcmp(r->e[i].key, key) == 0)
			return i;
	return -1;
}

/*
 * A template section, [prefix.*], holds the defaults of every [prefix.<id>]
 * section: default.ini states them there, and a user's file may too.
 */
static bool
is_template(const char *section)
{
	size_t n = strlen(section);

	return n > 2 && section[n - 2] == '.' && section[n - 1] == '*';
}

/* An instance section, [prefix.<id>], whose missing keys come from [prefix.*]. */
static bool
is_instance(const char *section)
{
	return strchr(section, '.') != NULL && !is_template(section);
}

static bool
valid_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!(islower((unsigned char) *s) || isdigit((unsigned char) *s) || *s == '_' ||
		      *s == '.' || *s == '-'))
			return false;
	return true;
}

/* A section name, or a template: a name followed by ".*". */
static bool
valid_section(const char *s)
{
	char buf[256];

	if (!is_template(s))
		return valid_name(s);
	if (strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%.*s", (int) strlen(s) - 2, s);
	return valid_name(buf);
}

/* After a fill, line numbers refer to the line just read. */
static char *
reader_common(char *str, int num, struct load_ctx *c, char *got)
{
	size_t len;

	if (got == NULL)
		return NULL;
	c->line++;
	len = strlen(got);
	if (len == (size_t) num - 1 && got[len - 1] != '\n')
	{
		/* inih would silently cut the line here */
		c->too_long = true;
		return NULL;
	}
	c->last_indented = (str[0] == ' ' || str[0] == '\t');
	return str;
}

/*
 * fgets() with an eye for NUL bytes, which it would pass on inside the
 * line for inih to cut the line at, silently.  A NUL ends the input (inih
 * takes NULL for the end of the file) and load() reports it with its line.
 */
static char *
file_reader(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	int n = 0, ch;

	while (n < num - 1 && (ch = getc(c->fp)) != EOF)
	{
		if (ch == '\0')
		{
			c->line++;
			c->nul = true;
			return NULL;
		}
		str[n++] = (char) ch;
		if (ch == '\n')
			break;
	}
	str[n] = '\0';
	return reader_common(str, num, c, n > 0 ? str : NULL);
}

static char *
string_reader(char *str, int num, void *stream)
{
	struct load_ctx *c = stream;
	const char *nl;
	size_t len;

	if (*c->text == '\0')
		return NULL;
	nl = strchr(c->text, '\n');
	len = nl ? (size_t) (nl - c->text) + 1 : strlen(c->text);
	if (len > (size_t) num - 1)
		len = (size_t) num - 1;
	memcpy(str, c->text, len);
	str[len] = '\0';
	c->text += len;
	return reader_common(str, num, c, str);
}

static int
handler(void *user, const char *section, const char *key, const char *value)
{
	struct load_ctx *c = user;
	struct rules *r = c->r;
	int i;

	if (c->failed)
		return 0;
	if (c->defaults && !c->instances && is_instance(section))
		return 1; /* the shipped rules themselves are not defaults */
	if (!valid_section(section))
	{
		c->failed = true;
		error_set(c->err, EXIT_RULES, "%s:%d: invalid section name \"[%s]\"", c->file, c->line,
		          section);
		error_hint(c->err, "Section names use lower-case letters, digits, \"_\", \".\" and \"-\"; "
		                   "[prefix.*] holds the defaults of every [prefix.<id>].");
		return 0;
	}
	if (!valid_name(key))
	{
		c->failed = true;
		error_set(c->err, EXIT_RULES, "%s:%d: invalid key name \"%s\" in section [%s]", c->file,
		          c->line, key, section);
		return 0;
	}

	i = find(r, section, key);
	if (c->last_indented && c->prev >= 0 && i == c->prev)
	{
		/* an indented continuation line of the previous key */
		struct entry *e = &r->e[i];
		size_t ol = strlen(e->value), vl = strlen(value);
		char *nv = realloc(e->value, ol + vl + 2);

		if (nv == NULL)
			goto oom;
		nv[ol] = '\n';
		memcpy(nv + ol + 1, value, vl + 1);
		e->value = nv;
		if (c->defaults)
		{
			free(e->dvalue);
			if ((e->dvalue = strdup(nv)) == NULL)
				goto oom;
		}
		return 1;
	}
	if (i >= 0 && r->e[i].load == c->load)
	{
		c->failed = true;
		error_set(c->err, EXIT_RULES, "%s:%d: key \"%s\" is set twice in section [%s]", c->file,
		          c->line, key, section);
		error_detail(c->err, "It was first set at line %d.", r->e[i].line);
		return 0;
	}
	if (i < 0)
	{
		if (r->n == r->cap)
		{
			int ncap = r->cap ? r->cap * 2 : 64;
			struct entry *ne = realloc(r->e, (size_t) ncap * sizeof(*ne));

			if (ne == NULL)
				goto oom;
			r->e = ne;
			r->cap = ncap;
		}
		i = r->n;
		memset(&r->e[i], 0, sizeof(r->e[i]));
		r->e[i].section = strdup(section);
		r->e[i].key = strdup(key);
		if (r->e[i].section == NULL || r->e[i].key == NULL)
		{
			free(r->e[i].section);
			free(r->e[i].key);
			goto oom;
		}
		r->n++;
	}
	{
		char *nv = strdup(value);

		if (nv == NULL)
			goto oom;
		free(r->e[i].value);
		r->e[i].value = nv;
		if (c->defaults && r->e[i].dvalue == NULL && (r->e[i].dvalue = strdup(value)) == NULL)
			goto oom;
	}
	r->e[i].file = c->file;
	r->e[i].line = c->line;
	r->e[i].load = c->load;
	r->e[i].from_defaults = c->defaults;
	r->e[i].used = false;
	r->e[i].where[0] = '\0';
	c->prev = i;
	c->prev_line = c->line;
	return 1;

oom:
	c->failed = true;
	error_oom(c->err);
	return 0;
}

static const char *
remember_file(struct rules *r, const char *name)
{
	char **nf = realloc(r->files, (size_t) (r->nfiles + 1) * sizeof(*nf));

	if (nf == NULL)
		return NULL;
	r->files = nf;
	if ((r->files[r->nfiles] = strdup(name)) == NULL)
		return NULL;
	free(r->files_joined);
	r->files_joined = NULL;
	return r->files[r->nfiles++];
}

static bool
load(struct rules *r, struct load_ctx *c, ini_reader reader, struct error *err)
{
	int rc;

	c->r = r;
	c->prev = -1;
	c->err = err;
	c->load = r->nfiles;
	rc = ini_parse_stream(reader, c, handler, c);
	if (c->failed)
		return false;
	if (c->nul)
	{
		error_set(err, EXIT_RULES, "%s:%d: a NUL byte: rules files are text", c->file, c->line);
		return error_hint(err, "Was a binary file, or one in UTF-16, given as a rules file?");
	}
	if (c->too_long)
	{
		error_set(err, EXIT_RULES, "%s:%d: line is longer than %d bytes", c->file, c->line,
		          INI_MAX_LINE - 2);
		return error_hint(err, "Continue a long value on indented lines; list items may be "
		                       "split after a comma.");
	}
	if (c->fp && ferror(c->fp))
		return error_set(err, EXIT_RULES, "could not read rules file \"%s\": %s", c->file,
		                 strerror(errno));
	if (rc > 0)
	{
		error_set(err, EXIT_RULES, "%s:%d: syntax error", c->file, rc);
		return error_hint(err, "Each line is \"[section]\", \"key = value\", or a comment "
		                       "starting with \"#\" or \";\".");
	}
	if (rc < 0)
		return error_oom(err);
	return true;
}

bool
rules_load_file(struct rules *r, const char *path, struct error *err)
{
	struct load_ctx c = {0};
	bool ok;

	if ((c.file = remember_file(r, path)) == NULL)
		return error_oom(err);
	if ((c.fp = fopen(path, "r")) == NULL)
		return error_set(err, EXIT_RULES, "could not open rules file \"%s\": %s", path,
		                 strerror(errno));
	ok = load(r, &c, file_reader, err);
	fclose(c.fp);
	return ok;
}

bool
rules_load_string(struct rules *r, const char *name, const char *text, struct error *err)
{
	struct load_ctx c = {0};

	if ((c.file = remember_file(r, name)) == NULL)
		return error_oom(err);
	c.text = text;
	return load(r, &c, string_reader, err);
}

bool
rules_load_defaults(struct rules *r, bool shipped_rules, struct error *err)
{
	struct load_ctx c = {0};

	if ((c.file = remember_file(r, "default.ini")) == NULL)
		return error_oom(err);
	c.text = embedded_default_ini;
	c.defaults = true;
	c.instances = shipped_rules;
	return load(r, &c, string_reader, err);
}

const char *
rules_get(struct rules *r, const char *section, const char *key)
{
	int i = find(r, section, key);

	note_asked(r, section);
	if (i < 0)
	{
		note_absent(r, section, key);
		return NULL;
	}
	r->e[i].used = true;
	return r->e[i].value;
}

const char *
rules_where(const struct rules *r, const char *section, const char *key)
{
	int i = find(r, section, key);
	struct entry *e;

	if (i < 0)
		return "";
	e = &((struct rules *) r)->e[i];
	if (e->where[0] == '\0')
		snprintf(e->where, sizeof(e->where), "%s:%d", e->file, e->line);
	return e->where;
}

bool
rules_get_path(struct rules *r, const char *section, const char *key, char **out, struct error *err)
{
	const char *v = rules_get(r, section, key);
	const char *where = rules_where(r, section, key);
	const char *colon = strrchr(where, ':'), *slash = NULL;
	size_t dir = 0, size;

	*out = NULL;
	if (v == NULL || *v == '\0')
		return true;
	for (const char *p = where; colon && p < colon; p++)
		if (*p == '/')
			slash = p;
	if (v[0] != '/' && slash != NULL)
		dir = (size_t) (slash - where) + 1; /* the folder and its slash */
	size = dir + strlen(v) + 1;
	if ((*out = malloc(size)) == NULL)
		return error_oom(err);
	snprintf(*out, size, "%.*s%s", (int) dir, where, v);
	return true;
}

int
rules_section_enabled(struct rules *r, const char *section, struct error *err)
{
	bool enabled;

	if (!rules_get_bool(r, section, "enabled", &enabled, err))
		return -1;
	if (!enabled)
		rules_use_section(r, section); /* e.g. switched off by a campaign file */
	return enabled ? 1 : 0;
}

const char *
rules_section_where(const struct rules *r, const char *section)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->e[i].section, section) == 0)
			return rules_where(r, section, r->e[i].key);
	return "";
}

/*
 * The value a typed getter reads: the section's own, else its template's
 * ([prefix.*] for an instance [prefix.<id>]); an empty value stands for the
 * one default.ini gave.  Every entry consulted is marked used (a template's
 * too, when the instance has its own value), so rules_check_defaults() can
 * tell a key of default.ini that no loader reads.  With `scalar` false an
 * empty value is a value (an empty list).  Returns the entry, or -1 when
 * default.ini has no such key: the code asked for a key without a default,
 * which is an internal error.
 */
/* The entry of key in the template [section up to end].*, or -1. */
static int
find_template(const struct rules *r, const char *section, const char *end, const char *key)
{
	char tmpl[256];

	if (end - section > (ptrdiff_t) sizeof(tmpl) - 3)
		return -1;
	snprintf(tmpl, sizeof(tmpl), "%.*s.*", (int) (end - section), section);
	return find(r, tmpl, key);
}

static int
lookup(struct rules *r, const char *section, const char *key, bool scalar, const char **value,
       struct error *err)
{
	int i = find(r, section, key), t = -1;
	char tmpl[256] = "";

	note_asked(r, section);
	if (is_instance(section))
	{
		/* the nearest template that has the key: [a.b.*] for [a.b.c], else [a.*] */
		const char *end = strrchr(section, '.');

		snprintf(tmpl, sizeof(tmpl), "%.*s.*", (int) (end - section), section);
		while (end != NULL && (t = find_template(r, section, end, key)) < 0)
		{
			const char *p = end;

			end = NULL;
			while (p > section && end == NULL)
				if (*--p == '.')
					end = p;
		}
		if (t >= 0)
			r->e[t].used = true;
	}
	for (int k = 0; k < 2; k++)
	{
		int j = k == 0 ? i : t;

		if (j < 0)
			continue;
		r->e[j].used = true;
		if (r->defaults_only)
		{
			/* collecting: a bad value was kept as a problem, go on with the default */
			if (r->e[j].dvalue && (!scalar || r->e[j].dvalue[0]))
			{
				*value = r->e[j].dvalue;
				return j;
			}
			continue;
		}
		if (!scalar || r->e[j].value[0])
		{
			*value = r->e[j].value;
			return j;
		}
		if (r->e[j].dvalue && r->e[j].dvalue[0])
		{
			*value = r->e[j].dvalue;
			return j;
		}
	}
	error_set(err, EXIT_INTERNAL, "default.ini has no value for [%s] %s", tmpl[0] ? tmpl : section,
	          key);
	return -1;
}

static bool
bad_value(struct rules *r, int i, const char *value, const char *what, struct error *err)
{
	struct entry *e = &r->e[i];

	return error_set(err, EXIT_RULES, "%s: [%s] %s: \"%s\" %s", rules_where(r, e->section, e->key),
	                 e->section, e->key, value, what);
}

bool
rules_get_str(struct rules *r, const char *section, const char *key, const char **out,
              struct error *err)
{
	return lookup(r, section, key, true, out, err) >= 0;
}

bool
rules_get_list(struct rules *r, const char *section, const char *key, const char **out,
               struct error *err)
{
	return lookup(r, section, key, false, out, err) >= 0;
}

bool
rules_is_default(const struct rules *r, const char *section, const char *key)
{
	int i = find(r, section, key);

	return i >= 0 && r->e[i].from_defaults;
}

static bool
get_int(struct rules *r, const char *section, const char *key, long min, long max, long *out,
        struct error *err)
{
	const char *v;
	int i = lookup(r, section, key, true, &v, err);
	char *end;
	long x;

	if (i < 0)
		return false;
	errno = 0;
	x = strtol(v, &end, 10);
	if (errno || end == v || *end != '\0')
		return bad_value(r, i, v, "is not an integer", err);
	if (x < min || x > max)
	{
		bad_value(r, i, v, "is out of range", err);
		return error_detail(err, "The value must be between %ld and %ld.", min, max);
	}
	*out = x;
	return true;
}

static bool
get_double(struct rules *r, const char *section, const char *key, double min, double max,
           double *out, struct error *err)
{
	const char *v;
	int i = lookup(r, section, key, true, &v, err);
	char *end;
	double x;

	if (i < 0)
		return false;
	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || *end != '\0' || !isfinite(x))
		return bad_value(r, i, v, "is not a number", err);
	if (x < min || x > max)
	{
		bad_value(r, i, v, "is out of range", err);
		return error_detail(err, "The value must be between %g and %g.", min, max);
	}
	*out = x;
	return true;
}

static bool
get_bool(struct rules *r, const char *section, const char *key, bool *out, struct error *err)
{
	const char *v;
	int i = lookup(r, section, key, true, &v, err);
	int b;

	if (i < 0)
		return false;
	if ((b = util_parse_bool(v)) >= 0)
	{
		*out = b == 1;
		return true;
	}
	bad_value(r, i, v, "is not a boolean", err);
	return error_hint(err, "Use yes or no.");
}

static bool
get_enum(struct rules *r, const char *section, const char *key, const char *const *choices,
         int *out, struct error *err)
{
	const char *v;
	int i = lookup(r, section, key, true, &v, err);
	char list[512] = "";

	if (i < 0)
		return false;
	for (int k = 0; choices[k]; k++)
	{
		if (strcmp(v, choices[k]) == 0)
		{
			*out = k;
			return true;
		}
		if (k)
			strncat(list, ", ", sizeof(list) - strlen(list) - 1);
		strncat(list, choices[k], sizeof(list) - strlen(list) - 1);
	}
	bad_value(r, i, v, "is not a valid choice", err);
	return error_hint(err, "Use one of: %s.", list);
}

/*
 * Collecting: a getter that failed on a bad value keeps the error as a
 * problem and reads default.ini's value instead, so loading goes on.
 */
#define COLLECT_RETRY(call)                                                                        \
	do                                                                                             \
	{                                                                                              \
		struct error saved_;                                                                       \
		bool ok_;                                                                                  \
                                                                                                   \
		if (!r->collect || r->defaults_only || err == NULL || err->code != EXIT_RULES)             \
			return false;                                                                          \
		saved_ = *err;                                                                             \
		r->defaults_only = true;                                                                   \
		ok_ = (call);                                                                              \
		r->defaults_only = false;                                                                  \
		if (!ok_)                                                                                  \
		{                                                                                          \
			*err = saved_;                                                                         \
			return false;                                                                          \
		}                                                                                          \
		return rules_problem(r, &saved_);                                                          \
	} while (0)

bool
rules_get_int(struct rules *r, const char *section, const char *key, long min, long max, long *out,
              struct error *err)
{
	if (get_int(r, section, key, min, max, out, err))
		return true;
	COLLECT_RETRY(get_int(r, section, key, min, max, out, err));
}

bool
rules_get_double(struct rules *r, const char *section, const char *key, double min, double max,
                 double *out, struct error *err)
{
	if (get_double(r, section, key, min, max, out, err))
		return true;
	COLLECT_RETRY(get_double(r, section, key, min, max, out, err));
}

bool
rules_get_bool(struct rules *r, const char *section, const char *key, bool *out, struct error *err)
{
	if (get_bool(r, section, key, out, err))
		return true;
	COLLECT_RETRY(get_bool(r, section, key, out, err));
}

bool
rules_get_enum(struct rules *r, const char *section, const char *key, const char *const *choices,
               int *out, struct error *err)
{
	if (get_enum(r, section, key, choices, out, err))
		return true;
	COLLECT_RETRY(get_enum(r, section, key, choices, out, err));
}

/* A bound of a RULES_INT row as a long; one beyond long's range means none. */
static long
long_bound(double x)
{
	if (x >= (double) LONG_MAX)
		return LONG_MAX;
	if (x <= (double) LONG_MIN)
		return LONG_MIN;
	return (long) x;
}

bool
rules_load_params(struct rules *r, const char *section, const struct rules_param *p, int n,
                  void *dest, struct error *err)
{
	char *base = dest;

	for (int k = 0; k < n; k++)
	{
		void *field = base + p[k].offset;
		bool ok;

		switch (p[k].type)
		{
			case RULES_INT:
				ok = rules_get_int(r, section, p[k].key, long_bound(p[k].min), long_bound(p[k].max),
				                   (long *) field, err);
				break;
			case RULES_DOUBLE:
				ok = rules_get_double(r, section, p[k].key, p[k].min, p[k].max, (double *) field,
				                      err);
				break;
			case RULES_BOOL: ok = rules_get_bool(r, section, p[k].key, (bool *) field, err); break;
			case RULES_ENUM:
				ok = rules_get_enum(r, section, p[k].key, p[k].choices, (int *) field, err);
				break;
			case RULES_STR:
				ok = rules_get_str(r, section, p[k].key, (const char **) field, err);
				break;
			case RULES_LIST:
				ok = rules_get_list(r, section, p[k].key, (const char **) field, err);
				break;
			default:
				ok = error_set(err, EXIT_INTERNAL, "[%s] %s: unknown parameter type %d", section,
				               p[k].key, (int) p[k].type);
				break;
		}
		if (!ok)
			return false;
	}
	return true;
}

int
rules_split_list(const char *value, char ***items)
{
	size_t len = strlen(value);
	int n = 0, cap = 1;
	char *copy, *p, *start;
	char **out;

	for (const char *q = value; *q; q++)
		if (*q == ',' || *q == '\n')
			cap++;
	/* the block of strings is kept in the slot after the last item */
	out = malloc((size_t) (cap + 2) * sizeof(*out));
	copy = malloc(len + 1);
	if (out == NULL || copy == NULL)
	{
		free(out);
		free(copy);
		return -1;
	}
	memcpy(copy, value, len + 1);
	for (start = p = copy;; p++)
	{
		if (*p == ',' || *p == '\n' || *p == '\0')
		{
			char end = *p;
			char *a = start, *z = p;

			while (a < z && isspace((unsigned char) *a))
				a++;
			while (z > a && isspace((unsigned char) z[-1]))
				z--;
			*z = '\0';
			if (z > a)
				out[n++] = a;
			if (end == '\0')
				break;
			start = p + 1;
		}
	}
	out[n] = NULL;
	out[n + 1] = copy;
	*items = out;
	return n;
}

void
rules_list_free(char **items)
{
	int n = 0;

	if (items == NULL)
		return;
	while (items[n])
		n++;
	free(items[n + 1]);
	free(items);
}

int
rules_sections(const struct rules *r, const char *prefix, const char ***names)
{
	size_t pl = strlen(prefix);
	const char **out = malloc((size_t) (r->n + 1) * sizeof(*out));
	int n = 0;

	if (out == NULL)
		return -1;
	for (int i = 0; i < r->n; i++)
	{
		const char *s = r->e[i].section;
		bool seen = false;

		if (strncmp(s, prefix, pl) != 0 || (s[pl] != '\0' && s[pl] != '.') || is_template(s))
			continue;
		for (int k = 0; k < n && !seen; k++)
			seen = strcmp(out[k], s) == 0;
		if (!seen)
			out[n++] = s;
	}
	*names = out;
	return n;
}

int
rules_keys(const struct rules *r, const char *section, const char ***keys)
{
	const char **out = malloc((size_t) (r->n + 1) * sizeof(*out));
	int n = 0, a = note_asked((struct rules *) r, section);

	if (a >= 0)
		r->enumerated[a] = true; /* its keys are data, not names the code knows */
	if (out == NULL)
		return -1;
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->e[i].section, section) == 0)
			out[n++] = r->e[i].key;
	*keys = out;
	return n;
}

void
rules_use_section(struct rules *r, const char *section)
{
	for (int i = 0; i < r->n; i++)
		if (strcmp(r->e[i].section, section) == 0)
			r->e[i].used = true;
}

/* A URI's user information with a password: "scheme://user:secret@" */
static bool
uri_has_password(const char *p)
{
	bool colon = false, secret = false;

	for (; *p && !strchr("/?#@ \t\r\n'\"", *p); p++)
	{
		if (*p == ':')
			colon = true;
		else if (colon)
			secret = true;
	}
	return *p == '@' && secret;
}

bool
rules_value_has_password(const char *value)
{
	for (const char *p = value; *p; p++)
	{
		if (strncmp(p, "://", 3) == 0 && uri_has_password(p + 3))
			return true;
		/* "password" as a whole word, then "=" and something */
		if (strncasecmp(p, "password", 8) == 0 &&
		    (p == value || !(isalnum((unsigned char) p[-1]) || p[-1] == '_')))
		{
			const char *q = p + 8;

			while (*q == ' ' || *q == '\t')
				q++;
			if (*q++ != '=')
				continue;
			while (*q == ' ' || *q == '\t')
				q++;
			if (*q != '\0' && *q != '\n' && strncmp(q, "''", 2) != 0)
				return true;
		}
	}
	return false;
}

bool
rules_check_secrets(const struct rules *r, struct error *err)
{
	for (int i = 0; i < r->n; i++)
	{
		const struct entry *e = &r->e[i];

		if (!rules_value_has_password(e->value))
			continue;
		error_set(err, EXIT_RULES,
		          "%s:%d: [%s] %s: the value holds a password (\"password=\" or "
		          "\"user:password@\")",
		          e->file, e->line, e->section, e->key);
		error_detail(err, "The rules text is stored with each run in refinery.runs.rules_text, "
		                  "which reporting roles can read.");
		return error_hint(err, "Keep passwords in ~/.pgpass, a service file or PGPASSWORD, "
		                       "never in a rules file.");
	}
	return true;
}

/* The part of a section name before its last dot ("blacklist" of "blacklist.a"), its length. */
static size_t
family_len(const char *section)
{
	const char *dot = strrchr(section, '.');

	return dot ? (size_t) (dot - section) : strlen(section);
}

static bool
same_family(const char *a, const char *b)
{
	size_t n = family_len(a);

	return n == family_len(b) && strncmp(a, b, n) == 0;
}

/* A loader stopped inside this section or one of its family: its unread keys tell nothing. */
static bool
is_tainted(const struct rules *r, const char *section)
{
	for (int k = 0; k < r->nasked; k++)
		if (r->tainted[k] && same_family(r->asked[k], section))
			return true;
	return false;
}

/* Is `key` among names[0..n)? */
static bool
has_name(const char *const *names, int n, const char *key)
{
	for (int k = 0; k < n; k++)
		if (strcmp(names[k], key) == 0)
			return true;
	return false;
}

/*
 * The known keys of a section: read or in default.ini, in the section, its
 * templates, or a section of its family ([blacklist.a] for [blacklist.b]).
 * Fills up to `max` (borrowed) and returns the count.
 */
static int
known_keys(const struct rules *r, const char *section, const char **names, int max)
{
	int n = 0;

	for (int i = 0; i < r->n && n < max; i++)
	{
		const struct entry *e = &r->e[i];

		if (!(e->used || e->dvalue) || has_name(names, n, e->key))
			continue;
		if (strcmp(e->section, section) == 0 ||
		    (is_instance(section) && same_family(e->section, section)))
			names[n++] = e->key;
	}
	for (int k = 0; k < r->nabsent && n < max; k++)
	{
		const char *a = r->absent[k], *key = strchr(a, '\n') + 1;
		char sec[256];

		snprintf(sec, sizeof(sec), "%.*s", (int) (key - 1 - a), a);
		if ((strcmp(sec, section) == 0 || (is_instance(section) && same_family(sec, section))) &&
		    !has_name(names, n, key))
			names[n++] = key;
	}
	return n;
}

/* The sections a module reads or default.ini has (borrowed); the count. */
static int
known_sections(const struct rules *r, const char **names, int max)
{
	int n = 0;

	for (int i = 0; i < r->n && n < max; i++)
		if ((r->e[i].used || r->e[i].dvalue) && !has_name(names, n, r->e[i].section))
			names[n++] = r->e[i].section;
	for (int k = 0; k < r->nasked && n < max; k++)
		if (!has_name(names, n, r->asked[k]))
			names[n++] = r->asked[k];
	return n;
}

/* The error of an unknown key, with the nearest known key of its section. */
static bool
unknown_key(const struct rules *r, const struct entry *e, struct error *err)
{
	const char *names[256];
	int n = known_keys(r, e->section, names, 256);
	const char *near = rules_nearest(e->key, names, n);

	error_set(err, EXIT_RULES, "%s:%d: unknown key \"%s\" in section [%s]", e->file, e->line,
	          e->key, e->section);
	if (near)
		return error_hint(err, "Did you mean \"%s\"? %s", near, RULES_DEFAULTS_HINT);
	return error_hint(err, "%s", RULES_DEFAULTS_HINT);
}

bool
rules_check_unused(struct rules *r, struct error *err)
{
	for (int i = 0; i < r->n; i++)
	{
		const struct entry *e = &r->e[i];
		bool known_section = false;

		/* a key default.ini has is known; rules_check_defaults() checks that code reads it */
		if (e->used || e->dvalue)
			continue;
		if (r->collect && is_tainted(r, e->section))
			continue; /* a loader stopped before it read its keys */
		for (int k = 0; k < r->n && !known_section; k++)
			known_section =
			    (r->e[k].used || r->e[k].dvalue) && strcmp(r->e[k].section, e->section) == 0;
		for (int k = 0; k < r->nasked && !known_section; k++)
			known_section = strcmp(r->asked[k], e->section) == 0;
		if (known_section)
			unknown_key(r, e, err);
		else
		{
			const char *names[256];
			int n = known_sections(r, names, 256);
			const char *near = rules_nearest(e->section, names, n);

			error_set(err, EXIT_RULES, "%s:%d: unknown section [%s]", e->file, e->line, e->section);
			if (near)
				error_hint(err, "Did you mean [%s]? %s", near, RULES_DEFAULTS_HINT);
			else
				error_hint(err, "%s", RULES_DEFAULTS_HINT);
		}
		if (!rules_problem(r, err))
			return false;
		/* the other keys of an unknown section are not reported again */
		while (!known_section && i + 1 < r->n && strcmp(r->e[i + 1].section, e->section) == 0)
			i++;
	}
	return true;
}

bool
rules_find_typo_key(struct rules *r, int mark, struct error *err)
{
	for (int i = 0; i < r->n; i++)
	{
		const struct entry *e = &r->e[i];
		const char *names[256];
		int n, a = -1;

		if (e->used || e->dvalue)
			continue;
		for (int k = mark; k < r->nasked && a < 0; k++)
			if (strcmp(r->asked[k], e->section) == 0)
				a = k;
		if (a < 0 || r->enumerated[a])
			continue;
		/* a key a section of its family has is one the loader had not got to yet */
		n = known_keys(r, e->section, names, 256);
		if (has_name(names, n, e->key) || rules_nearest(e->key, names, n) == NULL)
			continue;
		unknown_key(r, e, err);
		return true;
	}
	return false;
}

int
rules_asked_count(const struct rules *r)
{
	return r->nasked;
}

void
rules_taint_family(struct rules *r, const char *family)
{
	int a = note_asked(r, family);

	if (a >= 0)
		r->tainted[a] = true;
}

void
rules_taint_since(struct rules *r, int mark)
{
	for (int k = mark; k < r->nasked; k++)
		r->tainted[k] = true;
}

bool
rules_loader_failed(struct rules *r, int mark, struct error *err)
{
	struct error typo;

	if (err->code != EXIT_RULES)
		return false;
	if (rules_find_typo_key(r, mark, &typo))
		*err = typo;
	if (!rules_collecting(r))
		return false;
	rules_taint_since(r, mark);
	return rules_problem(r, err);
}

const char *
rules_nearest(const char *word, const char *const *names, int n)
{
	char lw[STRSIM_MAX_CHARS + 1];
	size_t len = strlen(word);
	int max = (int) len / 3 < 2 ? 2 : (int) len / 3, best = max + 1;
	const char *near = NULL;

	if (len > STRSIM_MAX_CHARS)
		return NULL;
	for (size_t k = 0; k <= len; k++)
		lw[k] = (char) tolower((unsigned char) word[k]);
	for (int k = 0; n < 0 ? names[k] != NULL : k < n; k++)
	{
		int d = strsim_osa(lw, len, names[k], strlen(names[k]), best - 1);

		if (d < best && strcmp(lw, names[k]) != 0)
		{
			best = d;
			near = names[k];
		}
	}
	return near;
}

void
rules_collect(struct rules *r, bool on)
{
	r->collect = on;
}

bool
rules_collecting(const struct rules *r)
{
	return r->collect;
}

bool
rules_problem(struct rules *r, struct error *err)
{
	struct error *np;

	if (!r->collect || err == NULL || err->code != EXIT_RULES)
		return false;
	for (int k = 0; k < r->nproblems; k++)
		if (strcmp(r->problems[k].msg, err->msg) == 0)
		{
			/* one key read for several sections (a template's) is one problem */
			error_clear(err);
			return true;
		}
	if ((np = realloc(r->problems, (size_t) (r->nproblems + 1) * sizeof(*np))) == NULL)
		return false; /* err stands: reported as the first error */
	r->problems = np;
	r->problems[r->nproblems++] = *err;
	error_clear(err);
	return true;
}

/* Where a problem's message says it is: the file's load order and the line; none sorts last. */
static void
problem_place(const struct rules *r, const char *msg, int *file, long *line)
{
	size_t best = 0;

	*file = r->nfiles;
	*line = 0;
	for (int k = 0; k < r->nfiles; k++)
	{
		size_t fl = strlen(r->files[k]);
		char *end;
		long l;

		if (fl <= best || strncmp(msg, r->files[k], fl) != 0 || msg[fl] != ':' ||
		    !isdigit((unsigned char) msg[fl + 1]))
			continue;
		l = strtol(msg + fl + 1, &end, 10);
		if (*end != ':')
			continue;
		best = fl;
		*file = k;
		*line = l;
	}
}

struct placed
{
	int file;
	long line;
	int seq;
	struct error e;
};

static int
placed_cmp(const void *a, const void *b)
{
	const struct placed *x = a, *y = b;

	if (x->file != y->file)
		return x->file < y->file ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int
rules_problems(struct rules *r, const struct error **list)
{
	struct placed *p = calloc((size_t) r->nproblems + 1, sizeof(*p));

	if (p != NULL)
	{
		for (int k = 0; k < r->nproblems; k++)
		{
			problem_place(r, r->problems[k].msg, &p[k].file, &p[k].line);
			p[k].seq = k;
			p[k].e = r->problems[k];
		}
		qsort(p, (size_t) r->nproblems, sizeof(*p), placed_cmp);
		for (int k = 0; k < r->nproblems; k++)
			r->problems[k] = p[k].e;
		free(p);
	}
	*list = r->problems;
	return r->nproblems;
}

int
rules_unread_defaults(const struct rules *r, const char **sections, const char **keys, int max)
{
	int n = 0;

	for (int i = 0; i < r->n; i++)
		if (r->e[i].dvalue && !r->e[i].used)
		{
			if (n < max)
			{
				sections[n] = r->e[i].section;
				keys[n] = r->e[i].key;
			}
			n++;
		}
	return n;
}

char *
rules_text(const struct rules *r)
{
	size_t cap = 256, len = 0;
	char *out = malloc(cap);

	if (out == NULL)
		return NULL;
	out[0] = '\0';
	for (int i = 0; i < r->n; i++)
	{
		const char *sec = r->e[i].section;
		bool first = true;

		/* each section once, at its first appearance, keys in order */
		for (int k = 0; k < i && first; k++)
			first = strcmp(r->e[k].section, sec) != 0;
		if (!first)
			continue;
		for (int j = i; j < r->n; j++)
		{
			const struct entry *e = &r->e[j];
			size_t need;

			if (strcmp(e->section, sec) != 0)
				continue;
			need = strlen(sec) + strlen(e->key) + 2 * strlen(e->value) + 16;
			if (len + need >= cap)
			{
				char *no;

				while (len + need >= cap)
					cap *= 2;
				if ((no = realloc(out, cap)) == NULL)
				{
					free(out);
					return NULL;
				}
				out = no;
			}
			if (j == i)
				len += (size_t) sprintf(out + len, "%s[%s]\n", len ? "\n" : "", sec);
			/*
			 * "key =;x" holds ";x", but "key = ;x" holds nothing (an inline
			 * comment needs a blank before it): no blank before such a value
			 */
			len += (size_t) sprintf(out + len, "%s =%s", e->key,
			                        e->value[0] == ';' || e->value[0] == '#' ? "" : " ");
			for (const char *v = e->value; *v; v++)
			{
				out[len++] = *v;
				if (*v == '\n')
					out[len++] = '\t'; /* continuation lines stay indented */
			}
			out[len++] = '\n';
			out[len] = '\0';
		}
	}
	return out;
}

/* A SHA-256 digest as 64 lower-case hex digits. */
static void
digest_hex(const unsigned char md[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[64] = '\0';
}

bool
rules_sha256_hex(const char *text, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	if (!EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
		return false;
	digest_hex(md, out);
	return true;
}

/*
 * The keys that change how a run goes, never what it decides about a lead:
 * how long it waits for locks, how many sessions read the source, its
 * guards, what it keeps of old runs and how its files are written.  A job's
 * state stays valid across a change of these alone.
 */
static const char *const operational_keys[][2] = {
    {"source", "lock_timeout_ms"}, {"source", "pull_streams"}, {"job", "min_rows"},
    {"job", "max_change_percent"}, {"output", "keep_runs"},    {"output", "lock_timeout_ms"},
    {"output", "analyze"},         {"output", "file_mode"},
};

static bool
is_operational(const char *sec, size_t seclen, const char *key, size_t keylen)
{
	for (size_t k = 0; k < sizeof(operational_keys) / sizeof(operational_keys[0]); k++)
		if (strlen(operational_keys[k][0]) == seclen &&
		    strncmp(operational_keys[k][0], sec, seclen) == 0 &&
		    strlen(operational_keys[k][1]) == keylen &&
		    strncmp(operational_keys[k][1], key, keylen) == 0)
			return true;
	return false;
}

bool
rules_decisions_sha256_hex(const char *text, char out[65])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[32];
	unsigned int mdlen = 0;
	const char *sec = "", *line = text;
	size_t seclen = 0;
	bool skip = false, ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

	while (ok && *line)
	{
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t) (end - line) + 1 : strlen(line);

		if (line[0] == '[' && len > 2 && line[len - (end ? 2 : 1)] == ']')
		{
			sec = line + 1;
			seclen = len - (end ? 3 : 2);
			skip = false;
		}
		else if (line[0] == '\n')
			skip = false; /* the blank line before a section */
		else if (line[0] != '\t')
		{
			size_t keylen = strcspn(line, " =\n");

			skip = is_operational(sec, seclen, line, keylen);
		}
		/* a continuation line (a tab) goes with its key */
		if (!skip)
			ok = EVP_DigestUpdate(ctx, line, len);
		line += len;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, md, &mdlen) && mdlen == 32;
	EVP_MD_CTX_free(ctx);
	if (ok)
		digest_hex(md, out);
	return ok;
}

const char *
rules_files(const struct rules *r)
{
	size_t len = 1;

	if (r->files_joined)
		return r->files_joined;
	for (int i = 0; i < r->nfiles; i++)
		len += strlen(r->files[i]) + 2;
	((struct rules *) r)->files_joined = malloc(len);
	if (r->files_joined == NULL)
		return "";
	r->files_joined[0] = '\0';
	for (int i = 0; i < r->nfiles; i++)
	{
		if (i)
			strcat(r->files_joined, ", ");
		strcat(r->files_joined, r->files[i]);
	}
	return r->files_joined;
}
