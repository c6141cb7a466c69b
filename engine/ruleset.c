/*
 * ruleset.c
 *    Loading a complete rule set: the embedded defaults, then each file the
 *    user names, then every module's sections, then the unknown-key check.
 *
 * The shipped rules/default.ini is compiled into the program and loaded
 * first, so a user's file only states what differs (a file holding just
 * "[source] table = ..." runs).  This file also parses the engine's own
 * sections, [source], [columns], [job] and [output].
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "normalize.h"
#include "outfile.h"
#include "pg.h"
#include "feedback.h"
#include "outcomes.h"
#include "ruleset.h"
#include "score.h"

static char *
dup_or_null(const char *s)
{
	return (s && *s) ? strdup(s) : NULL;
}

/* Where the system keeps its time zones: the files PostgreSQL reads too. */
#define ZONEINFO_DIR "/usr/share/zoneinfo"
/* longest time zone name PostgreSQL takes (TZ_STRLEN_MAX) */
#define TZ_NAME_MAX 255

/*
 * [source] table names one table of the database connected to: "table" or
 * "schema.table", each part at most 63 bytes.  Checked here, without a
 * server, so check-rules finds a three-part name the server would refuse.
 */
static bool
check_table_name(struct rules *r, const char *table, struct error *err)
{
	char parts[2][PG_IDENT_MAX + 1];
	int np;
	struct error e = {0};

	if (pg_ident_split(table, 2, parts, &np, &e))
		return true;
	error_set(err, EXIT_RULES, "%s: [source] table: %s", rules_where(r, "source", "table"), e.msg);
	if (e.detail[0])
		error_detail(err, "%s", e.detail);
	return error_hint(err, "Name a table of the database connected to as \"schema.table\" or "
	                       "\"table\"; the database itself is chosen with -d.");
}

/* A name of the form PostgreSQL's POSIX parser takes: <+03>, EST, or empty (std only). */
static const char *
tz_posix_name(const char *p, bool allow_empty, bool *ok)
{
	const char *start = p;

	*ok = false;
	if (*p == '<')
	{
		for (p++; *p && *p != '>'; p++)
			if (!isalnum((unsigned char) *p) && *p != '+' && *p != '-')
				return p;
		if (*p != '>' || p - start < 4) /* "<" three or more ">" */
			return p;
		*ok = true;
		return p + 1;
	}
	while (isalpha((unsigned char) *p))
		p++;
	*ok = (p - start >= 3) || (allow_empty && p == start);
	return p;
}

/* [+-]hh[:mm[:ss]], hours below 168, as PostgreSQL's getoffset() reads them. */
static const char *
tz_posix_offset(const char *p, bool *ok)
{
	static const int max[3] = {167, 59, 60};

	*ok = false;
	if (*p == '+' || *p == '-')
		p++;
	for (int k = 0; k < 3; k++)
	{
		int v = 0, digits = 0;

		if (k > 0)
		{
			if (*p != ':')
				break;
			p++;
		}
		while (isdigit((unsigned char) *p) && digits < 3)
		{
			v = v * 10 + (*p++ - '0');
			digits++;
		}
		if (digits == 0 || v > max[k])
			return p;
	}
	*ok = true;
	return p;
}

/* ",start[/time],end[/time]", each date Jn, n or Mm.w.d */
static const char *
tz_posix_rule(const char *p, bool *ok)
{
	*ok = false;
	for (int k = 0; k < 2; k++)
	{
		if (*p++ != ',')
			return p;
		if (*p == 'J' || isdigit((unsigned char) *p))
		{
			p += *p == 'J';
			if (!isdigit((unsigned char) *p))
				return p;
			while (isdigit((unsigned char) *p))
				p++;
		}
		else if (*p == 'M')
		{
			p++;
			for (int f = 0; f < 3; f++)
			{
				if (f > 0 && *p++ != '.')
					return p;
				if (!isdigit((unsigned char) *p))
					return p;
				while (isdigit((unsigned char) *p))
					p++;
			}
		}
		else
			return p;
		if (*p == '/')
		{
			bool tok;

			p = tz_posix_offset(p + 1, &tok);
			if (!tok)
				return p;
		}
	}
	*ok = *p == '\0';
	return p;
}

/*
 * A POSIX-style zone as PostgreSQL parses one when no zone file has the
 * name: "UTC+2", "EST5EDT", "<+03>-3", "+02:00" (an empty name is allowed,
 * unlike POSIX), with an optional daylight-saving part and rule.
 */
static bool
tz_is_posix(const char *p)
{
	bool ok;

	p = tz_posix_name(p, true, &ok);
	if (!ok || *p == '\0')
		return false;
	p = tz_posix_offset(p, &ok);
	if (!ok)
		return false;
	if (*p == '\0')
		return true;
	p = tz_posix_name(p, false, &ok);
	if (!ok)
		return false;
	if (*p && *p != ',')
	{
		p = tz_posix_offset(p, &ok);
		if (!ok)
			return false;
	}
	if (*p == '\0')
		return true;
	tz_posix_rule(p, &ok);
	return ok;
}

/*
 * Open `name` in the zone folder as PostgreSQL finds it: each part of the
 * path matched exactly, or else without regard to case.  Parts "." and
 * ".." and empty ones are refused, so the name stays inside the folder.
 * Returns 1 for a regular TZif file, 0 when there is none, -1 when the
 * folder itself is missing (nothing can be checked).
 */
static int
tz_file_exists(const char *name)
{
	char path[sizeof(ZONEINFO_DIR) + TZ_NAME_MAX + 2];
	size_t len;
	const char *p = name;
	struct stat st;
	FILE *f;
	char magic[4];
	int found;

	if (stat(ZONEINFO_DIR, &st) != 0 || !S_ISDIR(st.st_mode))
		return -1;
	len = (size_t) snprintf(path, sizeof(path), "%s", ZONEINFO_DIR);
	while (*p)
	{
		size_t n = strcspn(p, "/");
		DIR *d;
		struct dirent *de;

		if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.') ||
		    len + 1 + n >= sizeof(path))
			return 0;
		path[len++] = '/';
		memcpy(path + len, p, n);
		path[len + n] = '\0';
		if (lstat(path, &st) != 0)
		{
			/* the server compares names without regard to case */
			bool hit = false;

			path[len - 1] = '\0';
			if ((d = opendir(path)) == NULL)
				return 0;
			while (!hit && (de = readdir(d)) != NULL)
				if (strlen(de->d_name) == n && strncasecmp(de->d_name, p, n) == 0 &&
				    strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				{
					memcpy(path + len, de->d_name, n);
					hit = true;
				}
			closedir(d);
			path[len - 1] = '/';
			if (!hit)
				return 0;
		}
		len += n;
		p += n;
		if (*p == '/')
		{
			p++;
			if (*p == '\0')
				return 0;
		}
	}
	/* a link is followed: Debian's zone folder is full of them */
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || (f = fopen(path, "rb")) == NULL)
		return 0;
	found = fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
	fclose(f);
	return found;
}

/*
 * [source] timezone is handed to the server as the session's TimeZone
 * (and to the C library when there is none).  Take what PostgreSQL takes:
 * a number of hours, a zone of the system's zone folder (PostgreSQL on
 * Debian reads the same one), or a POSIX-style zone.
 */
static bool
check_timezone(struct rules *r, const char *tz, struct error *err)
{
	const char *where = rules_where(r, "source", "timezone");
	char *end;
	double hours;
	int file;

	if (strlen(tz) > TZ_NAME_MAX)
		return error_set(err, EXIT_RULES, "%s: [source] timezone: the name is longer than %d bytes",
		                 where, TZ_NAME_MAX);
	errno = 0;
	hours = strtod(tz, &end);
	if (end != tz && *end == '\0' && errno == 0 && fabs(hours) < 168)
		return true;
	if (tz[0] != '/' && strncasecmp(tz, "right/", 6) != 0 && (file = tz_file_exists(tz)) != 0)
		return true; /* a zone file, or no zone folder to look in */
	if (strcasecmp(tz, "UTC") == 0 || strcasecmp(tz, "GMT") == 0 || tz_is_posix(tz))
		return true;
	error_set(err, EXIT_RULES, "%s: [source] timezone: unknown time zone \"%s\"", where, tz);
	return error_hint(err, "Use a name of the time zone database such as \"Asia/Jerusalem\" "
	                       "or \"UTC\", or an offset such as \"+02:00\".");
}

static void
source_config_free(struct source_config *c)
{
	if (c == NULL)
		return;
	free(c->table);
	free(c->query);
	free(c->csv);
	free(c->csv_reject);
	free(c->tenant_column);
	free(c->cluster_map);
	free(c->timezone);
	free(c->now);
	for (int f = 0; f < FIELD__COUNT; f++)
		free(c->column[f]);
	for (int i = 0; i < c->nextra; i++)
		free(c->extra[i]);
	free(c->extra);
	free(c);
}

/*
 * [source], read around the code that stays: table, query and csv (one of
 * three), csv_reject (optional), csv_delimiter (a word or one character),
 * timezone and now (copied, then checked), in the order they have always
 * been checked.
 */
static const struct rules_param source_limits[] = {
    {"csv_max_field", RULES_INT, 1024, 1L << 30, offsetof(struct source_config, csv_max_field),
     NULL},
    {"csv_max_rejects", RULES_INT, 0, 1L << 40, offsetof(struct source_config, csv_max_rejects),
     NULL},
};
static const struct rules_param source_reading[] = {
    {"csv_trim", RULES_BOOL, 0, 0, offsetof(struct source_config, csv_trim), NULL},
    {"csv_unguard", RULES_BOOL, 0, 0, offsetof(struct source_config, csv_unguard), NULL},
    {"lock_timeout_ms", RULES_INT, 0, 86400000, offsetof(struct source_config, lock_timeout_ms),
     NULL},
    {"pull_streams", RULES_INT, 1, 8, offsetof(struct source_config, pull_streams), NULL},
};

static bool
source_config_load(struct rules *r, struct source_config **out, struct error *err)
{
	struct source_config *c = calloc(1, sizeof(*c));
	const char *table, *query, *csv, *v;
	int given;
	char **items = NULL;
	int n;

	*out = c;
	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	table = rules_get(r, "source", "table");
	query = rules_get(r, "source", "query");
	csv = rules_get(r, "source", "csv");
	given = (table && *table) + (query && *query) + (csv && *csv);
	if (given != 1)
	{
		error_set(err, EXIT_RULES, "[source] must set exactly one of table, query or csv");
		if (given == 0)
			return error_hint(err, "Add for example \"[source]\" and \"table = crm.leads\" "
			                       "to a rules file.");
		return error_detail(
		    err, "table at %s, query at %s, csv at %s",
		    *rules_where(r, "source", "table") ? rules_where(r, "source", "table") : "-",
		    *rules_where(r, "source", "query") ? rules_where(r, "source", "query") : "-",
		    *rules_where(r, "source", "csv") ? rules_where(r, "source", "csv") : "-");
	}
	c->kind = (table && *table) ? SOURCE_TABLE : (query && *query) ? SOURCE_QUERY : SOURCE_CSV;
	if (c->kind == SOURCE_TABLE && !check_table_name(r, table, err))
		return false;
	c->table = dup_or_null(table);
	c->query = dup_or_null(query);
	if (c->query)
	{
		/* the query becomes a derived table: a final ";" would end it early */
		size_t ql = strlen(c->query);

		while (ql > 0 && (c->query[ql - 1] == ';' || isspace((unsigned char) c->query[ql - 1])))
			c->query[--ql] = '\0';
	}
	c->csv = dup_or_null(csv);
	c->csv_reject = dup_or_null(rules_get(r, "source", "csv_reject"));
	c->tenant_column = dup_or_null(rules_get(r, "source", "tenant_column"));
	c->cluster_map = dup_or_null(rules_get(r, "cluster", "map"));
	if (c->tenant_column && c->kind == SOURCE_CSV)
		return error_set(err, EXIT_RULES, "%s: [source] tenant_column needs a table or a query",
		                 rules_where(r, "source", "tenant_column"));
	if (!rules_load_params(r, "source", source_limits, RULES_PARAMS_N(source_limits), c, err))
		return false;
	if (!rules_get_str(r, "source", "csv_delimiter", &v, err))
		return false;
	{
		if (strcmp(v, "tab") == 0)
			c->csv_delimiter = '\t';
		else if (strcmp(v, "semicolon") == 0)
			c->csv_delimiter = ';';
		else if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r')
			c->csv_delimiter = v[0];
		else
			return error_set(err, EXIT_RULES,
			                 "%s: [source] csv_delimiter: \"%s\" is not one "
			                 "character, \"tab\" or \"semicolon\"",
			                 rules_where(r, "source", "csv_delimiter"), v);
	}
	if (!rules_load_params(r, "source", source_reading, RULES_PARAMS_N(source_reading), c, err))
		return false;
	if (!rules_get_str(r, "source", "timezone", &v, err))
		return false;
	c->timezone = strdup(v);
	if (!rules_get_str(r, "source", "now", &v, err))
		return false;
	c->now = strdup(v);
	if (c->timezone == NULL || c->now == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (!check_timezone(r, c->timezone, err))
		return false;
	if (strcmp(c->now, "clock") != 0 && strcmp(c->now, "auto") != 0)
	{
		int64_t t;

		if (!batch_parse_time(c->now, &t))
			return error_set(err, EXIT_RULES,
			                 "%s: [source] now: \"%s\" is not \"clock\", "
			                 "\"auto\" or a timestamp",
			                 rules_where(r, "source", "now"), c->now);
	}

	for (int f = 0; f < FIELD__COUNT; f++)
	{
		/* a column default.ini names may be missing from the source; one the user names may not */
		if (!rules_get_list(r, "columns", field_key(f), &v, err))
			return false;
		c->column_explicit[f] = !rules_is_default(r, "columns", field_key(f));
		c->column[f] = dup_or_null(v);
		if (*v && c->column[f] == NULL)
			return error_set(err, EXIT_INTERNAL, "out of memory");
	}
	if (c->column[FIELD_LEAD_ID] == NULL)
		return error_set(err, EXIT_RULES, "%s: [columns] lead_id must name a column",
		                 rules_where(r, "columns", "lead_id"));
	v = rules_get(r, "columns", "extra");
	if (v && *v)
	{
		if ((n = rules_split_list(v, &items)) < 0)
			return error_set(err, EXIT_INTERNAL, "out of memory");
		c->extra = calloc((size_t) n + 1, sizeof(char *));
		if (c->extra == NULL)
		{
			rules_list_free(items);
			return error_set(err, EXIT_INTERNAL, "out of memory");
		}
		for (int i = 0; i < n; i++)
		{
			for (int f = 0; f < FIELD__COUNT; f++)
				if (strcmp(items[i], field_key(f)) == 0)
				{
					/* a field's key names the field in every rule: an extra column of that
					 * name would make "field = full_name" ambiguous */
					error_set(err, EXIT_RULES,
					          "%s: [columns] extra: \"%s\" is the name of a "
					          "known field",
					          rules_where(r, "columns", "extra"), items[i]);
					error_hint(err, "Map it with \"%s = column\" instead.", items[i]);
					rules_list_free(items); /* items[i] lives in it: free it last */
					return false;
				}
			if ((c->extra[c->nextra] = strdup(items[i])) == NULL)
			{
				rules_list_free(items);
				return error_set(err, EXIT_INTERNAL, "out of memory");
			}
			c->nextra++;
		}
		rules_list_free(items);
	}
	return true;
}

/* [output] file_mode, an octal string; default.ini always sets it. */
static bool
file_mode_load(struct rules *r, mode_t *mode, struct error *err)
{
	const char *v = rules_get(r, "output", "file_mode");

	if (v == NULL || !outfile_parse_mode(v, mode))
	{
		error_set(err, EXIT_RULES, "%s: [output] file_mode: \"%s\" is not an octal file mode",
		          v ? rules_where(r, "output", "file_mode") : "default.ini", v ? v : "");
		return error_hint(err, "Write permission bits in octal, at most 0777, e.g. 0600 or 0640.");
	}
	return true;
}

bool
ruleset_default_file_mode(mode_t *mode, struct error *err)
{
	struct rules *r = rules_new();
	bool ok;

	if (r == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	ok = rules_load_defaults(r, true, err) && file_mode_load(r, mode, err);
	rules_free(r);
	return ok;
}

static const char *const output_targets[] = {"database", "csv", NULL};

/* RULES_ENUM stores an int */
_Static_assert(sizeof(enum output_target) == sizeof(int), "enum output_target is an int");

/* [output]; target = csv needs csv_dir, and file_mode is octal: both code below */
static const struct rules_param output_params[] = {
    {"target", RULES_ENUM, 0, 0, offsetof(struct output_config, target), output_targets},
    {"keep_runs", RULES_INT, 0, 1000000, offsetof(struct output_config, keep_runs), NULL},
    {"lock_timeout_ms", RULES_INT, 0, 86400000, offsetof(struct output_config, lock_timeout_ms),
     NULL},
    {"analyze", RULES_BOOL, 0, 0, offsetof(struct output_config, analyze), NULL},
    {"snapshot", RULES_BOOL, 0, 0, offsetof(struct output_config, snapshot), NULL},
    {"csv_formula_guard", RULES_BOOL, 0, 0, offsetof(struct output_config, csv_formula_guard),
     NULL},
    {"csv_crlf", RULES_BOOL, 0, 0, offsetof(struct output_config, csv_crlf), NULL},
};

static bool
output_config_load(struct rules *r, struct output_config **out, struct error *err)
{
	struct output_config *c = calloc(1, sizeof(*c));

	*out = c;
	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (!rules_load_params(r, "output", output_params, RULES_PARAMS_N(output_params), c, err) ||
	    !file_mode_load(r, &c->file_mode, err))
		return false;
	c->csv_dir = dup_or_null(rules_get(r, "output", "csv_dir"));
	if (c->target == OUTPUT_CSV && c->csv_dir == NULL)
		return error_set(err, EXIT_RULES, "%s: [output] target = csv needs csv_dir",
		                 rules_where(r, "output", "target"));
	return true;
}

/* ASCII only, whatever the locale: the same rule as jobs_name_check in sql/004_jobs.sql */
bool
ruleset_job_name_ok(const char *name)
{
	static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	size_t n = strlen(name);

	if (n == 0 || n > 63 || strchr(alnum, name[0]) == NULL)
		return false;
	for (size_t i = 1; i < n; i++)
		if (strchr(alnum, name[i]) == NULL && strchr("._-", name[i]) == NULL)
			return false;
	return true;
}

bool
ruleset_job_ref_ok(const char *name)
{
	const char *at = strchr(name, '@');
	char head[64];

	if (at == NULL)
		return ruleset_job_name_ok(name);
	if (at - name > 63)
		return false;
	memcpy(head, name, (size_t) (at - name));
	head[at - name] = '\0';
	return ruleset_job_name_ok(head) && ruleset_job_name_ok(at + 1);
}

/* [job]; name is checked by ruleset_job_name_ok(), below */
static const struct rules_param job_params[] = {
    {"min_rows", RULES_INT, 0, 1000000000, offsetof(struct job_config, min_rows), NULL},
    {"max_change_percent", RULES_DOUBLE, 0, 1e9, offsetof(struct job_config, max_change_percent),
     NULL},
};

static bool
job_config_load(struct rules *r, struct job_config **out, struct error *err)
{
	struct job_config *c = calloc(1, sizeof(*c));
	const char *name;

	*out = c;
	if (c == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	if (!rules_load_params(r, "job", job_params, RULES_PARAMS_N(job_params), c, err))
		return false;
	name = rules_get(r, "job", "name");
	if (name == NULL || !ruleset_job_name_ok(name))
	{
		error_set(err, EXIT_RULES, "%s: [job] name: \"%s\" is not a valid job name",
		          rules_where(r, "job", "name"), name ? name : "");
		return error_hint(err, "Use letters, digits, \".\", \"_\" and \"-\", at most 63, "
		                       "starting with a letter or digit.");
	}
	if ((c->name = strdup(name)) == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory");
	return true;
}

static void
job_config_free(struct job_config *c)
{
	if (c == NULL)
		return;
	free(c->name);
	free(c);
}

static void
output_config_free(struct output_config *c)
{
	if (c == NULL)
		return;
	free(c->csv_dir);
	free(c);
}

/*
 * Statuses the rules name must be canonical ones, the keys of [status_map]:
 * the black-list and score compare the lead's status_norm with them, so a
 * misspelt status would quietly never hit.  `canon`: compare in the form
 * score.c gives values and map keys (score_canon), else in lower case.
 */
#define CANON_FORM_MAX 256 /* as score_int.h's CANON_MAX */

static bool
is_status(const struct normalize_config *nc, const char *s, bool canon)
{
	char form[CANON_FORM_MAX];

	for (int c = 0; c < nc->ncanonical; c++)
	{
		const char *name = nc->canonical[c];

		if (canon && score_canon(name, form, sizeof(form)))
			name = form;
		if (strcmp(s, name) == 0)
			return true;
	}
	return false;
}

/* `value` of [section] key at `where` is no canonical status: the error, kept when collecting. */
static bool
unknown_status(struct rules *r, const struct normalize_config *nc, const char *where,
               const char *section, const char *key, const char *value, struct error *err)
{
	char known[400] = "";
	const char *near;

	for (int c = 0; c < nc->ncanonical; c++)
	{
		size_t len = strlen(known);

		snprintf(known + len, sizeof(known) - len, "%s%s", c ? ", " : "", nc->canonical[c]);
	}
	error_set(err, EXIT_RULES, "%s: [%s] %s: unknown status \"%s\"", where, section, key, value);
	near = rules_nearest(value, (const char *const *) nc->canonical, nc->ncanonical);
	error_detail(err, "Known statuses: %s.", known);
	if (near)
		error_hint(err,
		           "Did you mean \"%s\"? A status of its own is declared as a key of "
		           "[status_map].",
		           near);
	else
		error_hint(err, "Rules name canonical statuses; a status of its own is declared as a "
		                "key of [status_map].");
	return rules_problem(r, err);
}

static bool
check_status_list(struct rules *r, const struct normalize_config *nc, const char *section,
                  const char *key, struct error *err)
{
	const char *where = rules_where(r, section, key), *v;
	char **items = NULL;
	int n;
	bool ok = true;

	if (*where == '\0' || (v = rules_get(r, section, key)) == NULL)
		return true;
	if ((n = rules_split_list(v, &items)) < 0)
		return error_oom(err);
	for (int k = 0; k < n && ok; k++)
	{
		for (char *q = items[k]; *q; q++)
			*q = (char) tolower((unsigned char) *q);
		if (!is_status(nc, items[k], false))
			ok = unknown_status(r, nc, where, section, key, items[k], err);
	}
	rules_list_free(items);
	return ok;
}

/*
 * The statuses the score names: the categories of a map parameter that
 * reads the status (its keys), and the values of a persona's when.status.
 * A persona's override "status.<category>" names a category of the
 * parameter, which score_config.c checks, so it is a status too.
 */
static bool
check_score_statuses(struct rules *r, const struct normalize_config *nc,
                     const struct score_config *sc, struct error *err)
{
	char section[300];
	bool ok = true;

	for (int k = 0; sc && k < sc->nparams && ok; k++)
	{
		const struct score_param *p = &sc->params[k];
		int nlisted = p->ncat - (p->cat_other >= 0 ? 2 : 1);

		if (p->kind != SCORE_MAP || p->src != SCORE_SRC_STATUS)
			continue;
		snprintf(section, sizeof(section), "score.%s", p->name);
		for (int j = 0; j < nlisted && ok; j++)
		{
			const char *where = rules_where(r, section, p->cat[j]);

			if (!is_status(nc, p->cat[j], true))
				ok = unknown_status(r, nc, *where ? where : p->where, section, p->cat[j], p->cat[j],
				                    err);
		}
	}
	for (int k = 0; sc && k < sc->npersonas && ok; k++)
	{
		const struct score_persona *pe = &sc->personas[k];

		snprintf(section, sizeof(section), "persona.%s", pe->name);
		for (int j = 0; !pe->fallback && j < pe->ncond && ok; j++)
			for (int v = 0; pe->cond[j].src == SCORE_SRC_STATUS && v < pe->cond[j].nvalues && ok;
			     v++)
				if (!is_status(nc, pe->cond[j].values[v], true))
					ok = unknown_status(r, nc, rules_where(r, section, "when.status"), section,
					                    "when.status", pe->cond[j].values[v], err);
	}
	return ok;
}

/* [calibrate] won_values (or won_statuses) name statuses when the outcome is the status */
static bool
check_won_values(struct rules *r, const struct normalize_config *nc, struct error *err)
{
	const char *col = rules_get(r, "calibrate", "outcome_column");

	if (col != NULL && strcmp(col, "status") != 0)
		return true; /* the values of another column: anything goes */
	return check_status_list(r, nc, "calibrate", "won_statuses", err) &&
	       check_status_list(r, nc, "calibrate", "won_values", err);
}

static bool
check_statuses(struct rules *r, const struct normalize_config *nc, const struct score_config *score,
               struct error *err)
{
	const char **secs = NULL;
	int n;
	bool ok;

	if (nc == NULL || nc->canonical == NULL)
		return true; /* [status_map] was not read: its own error is reported */
	if ((n = rules_sections(r, "blacklist", &secs)) < 0)
		return error_oom(err);
	ok = check_status_list(r, nc, "blacklist.*", "statuses", err);
	for (int k = 0; k < n && ok; k++)
		ok = check_status_list(r, nc, secs[k], "statuses", err);
	free(secs);
	return ok && check_status_list(r, nc, "score", "exclude_statuses", err) &&
	       check_won_values(r, nc, err) && check_status_list(r, nc, "dedupe", "status_rank", err) &&
	       check_score_statuses(r, nc, score, err);
}

#define LOAD(call)                                                                                 \
	do                                                                                             \
	{                                                                                              \
		int mark_ = rules_asked_count(rs->rules);                                                  \
                                                                                                   \
		if (!(call) && !rules_loader_failed(rs->rules, mark_, err))                                \
			goto fail;                                                                             \
	} while (0)

static struct ruleset *
load_all(const char *const *files, int nfiles, bool collect, struct error *err)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));

	if (rs == NULL || (rs->rules = rules_new()) == NULL)
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		goto fail;
	}
	if (!rules_load_defaults(rs->rules, true, err))
		goto fail;
	for (int i = 0; i < nfiles; i++)
		if (!rules_load_file(rs->rules, files[i], err))
			goto fail;
	rules_collect(rs->rules, collect);
	/* before any module could quote a value in a message */
	if (!rules_check_secrets(rs->rules, err))
	{
		/* collecting, nothing more is read: no other message quotes the value */
		if (!rules_problem(rs->rules, err))
			goto fail;
		return rs;
	}
	LOAD(source_config_load(rs->rules, &rs->source, err));
	LOAD(job_config_load(rs->rules, &rs->job, err));
	LOAD(outcomes_config_load(rs->rules, &rs->outcomes, err));
	LOAD(output_config_load(rs->rules, &rs->output, err));
	LOAD(feedback_config_load(rs->rules, &rs->feedback, err));
#define STAGE(name, fn, type, load, free_fn, slot) LOAD(load(rs->rules, &rs->slot, err));
#define PLAN_STAGE(name, fn, type, load, free_fn, slot)                                            \
	if (rs->normalize == NULL || rs->normalize->plan == NULL)                                      \
		rules_taint_family(rs->rules, name); /* collecting: the plan had an error */               \
	else                                                                                           \
		LOAD(load(rs->rules, rs->normalize->plan, &rs->slot, err));
#include "stagelist.h" /* then each stage's sections, in run order */
#undef STAGE
	if (!check_statuses(rs->rules, rs->normalize, rs->score, err))
		goto fail;
	if (!rules_check_unused(rs->rules, err))
		goto fail;
	if ((rs->text = rules_text(rs->rules)) == NULL || !rules_sha256_hex(rs->text, rs->sha256) ||
	    !rules_decisions_sha256_hex(rs->text, rs->decisions_sha256))
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		goto fail;
	}
	return rs;

fail:
	ruleset_free(rs);
	return NULL;
}

struct ruleset *
ruleset_load(const char *const *files, int nfiles, struct error *err)
{
	return load_all(files, nfiles, false, err);
}

struct ruleset *
ruleset_check(const char *const *files, int nfiles, const struct error **problems, int *nproblems,
              struct error *err)
{
	struct ruleset *rs = load_all(files, nfiles, true, err);

	*problems = NULL;
	*nproblems = 0;
	if (rs != NULL)
		*nproblems = rules_problems(rs->rules, problems);
	return rs;
}

void
ruleset_free(struct ruleset *rs)
{
	if (rs == NULL)
		return;
	source_config_free(rs->source);
	job_config_free(rs->job);
	outcomes_config_free(rs->outcomes);
	output_config_free(rs->output);
	feedback_config_free(rs->feedback);
#define STAGE(name, fn, type, load, free_fn, slot) free_fn(rs->slot);
#include "stagelist.h"
#undef STAGE
	rules_free(rs->rules);
	free(rs->text);
	free(rs);
}

void
ruleset_source_desc(const struct ruleset *rs, char *buf, size_t size)
{
	const struct source_config *s = rs->source;

	switch (s->kind)
	{
		case SOURCE_TABLE: snprintf(buf, size, "table %s", s->table); break;
		case SOURCE_QUERY: snprintf(buf, size, "query %.200s", s->query); break;
		case SOURCE_CSV: snprintf(buf, size, "csv %s", s->csv); break;
	}
	if (s->tenant && s->tenant_column && strlen(buf) + 1 < size)
	{
		size_t n = strlen(buf);

		snprintf(buf + n, size - n, " (tenant %s = %s)", s->tenant_column, s->tenant);
	}
}
