/*
 * rules.h
 *    Rule files: INI text read with libinih, merged, and handed out key by key.
 *
 * Several files may be loaded; a key given again in a later file replaces
 * the earlier value (and its file and line).  Modules read their own
 * sections through the rules_get*() calls, which mark each key as used; after
 * every module has read its part, rules_check_unused() turns any key nobody
 * asked for into an error naming its file and line.  So a typo in a key or a
 * section is never silently ignored.  Values are borrowed from the rules
 * object, which lives as long as the ruleset.  A section's plain keys are
 * read from a table (rules_load_params()); keys with logic of their own are
 * read with the getters beside it.
 *
 * Defaults live in one place, rules/default.ini, loaded first by
 * rules_load_defaults().  The typed getters have no default of their own:
 * a key the files leave out takes default.ini's value (for an instance
 * section such as [cohort.a], its template [cohort.*]'s), and a key that
 * default.ini lacks is an internal error.
 */
#ifndef REFINERY_RULES_H
#define REFINERY_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct rules;

/* Where the shipped defaults are to be read, for hints (the build sets PKGDATADIR). */
#ifndef PKGDATADIR
#define PKGDATADIR "/usr/local/share/refinery"
#endif
#define RULES_DEFAULTS_HINT                                                                        \
	"Every section and key is in " PKGDATADIR "/default.ini, or run \"refinery check-rules "       \
	"--defaults\"."

struct rules *rules_new(void);
void rules_free(struct rules *r); /* NULL is a no-op */

/* Read one INI file and merge it over what is loaded. EXIT_RULES errors name file:line. */
bool rules_load_file(struct rules *r, const char *path, struct error *err);
/* The same from a string; `name` stands for the file name in messages. */
bool rules_load_string(struct rules *r, const char *name, const char *text, struct error *err);

/* The value of section.key, or NULL when absent. Marks the key used. */
const char *rules_get(struct rules *r, const char *section, const char *key);
/* Where section.key was set ("file:line"), for messages; "" when absent. */
const char *rules_where(const struct rules *r, const char *section, const char *key);
/*
 * A key naming a file: its value as written when absolute, else relative to
 * the folder of the rule file that set it (do-not-call lists, [match]
 * reps_csv and stats_csv).  *out (caller frees) is NULL when the key is
 * absent or empty.  Marks the key used.
 */
bool rules_get_path(struct rules *r, const char *section, const char *key, char **out,
                    struct error *err);
/* Where a section begins: "file:line" of its first key, "" when it has none. */
const char *rules_section_where(const struct rules *r, const char *section);

/*
 * The defaults: rules/default.ini as compiled in, loaded first.  Its values
 * are the only defaults there are: the getters below take a missing key's
 * value from it.  With `shipped_rules` false its instance sections
 * ([blacklist.dnc_status], [score.source], ...) are left out, so that a unit
 * test states its own rules on top of the defaults alone.
 */
bool rules_load_defaults(struct rules *r, bool shipped_rules, struct error *err);

/*
 * Typed getters.  The value is the section's own, else (for an instance
 * section [prefix.<id>]) its template's, [prefix.*]; an empty value stands
 * for default.ini's.  A malformed value or one out of [min, max] is an
 * EXIT_RULES error naming file, line, section and key; a key default.ini
 * lacks is an EXIT_INTERNAL error (the code asks for a key with no default).
 */
bool rules_get_int(struct rules *r, const char *section, const char *key, long min, long max,
                   long *out, struct error *err);
bool rules_get_double(struct rules *r, const char *section, const char *key, double min, double max,
                      double *out, struct error *err);
bool rules_get_bool(struct rules *r, const char *section, const char *key, bool *out,
                    struct error *err);
/* One of `choices` (NULL-terminated); stores its index. */
bool rules_get_enum(struct rules *r, const char *section, const char *key,
                    const char *const *choices, int *out, struct error *err);
/* A text value, looked up the same way (an empty value stands for default.ini's). */
bool rules_get_str(struct rules *r, const char *section, const char *key, const char **out,
                   struct error *err);
/* A list or text value that may be empty on purpose ("typos =": none). */
bool rules_get_list(struct rules *r, const char *section, const char *key, const char **out,
                    struct error *err);
/*
 * A section read from a table instead of a chain of getters, in the manner of
 * pgbouncer's parameter table: one row a key, with its type, its range and
 * where its value goes (offsetof into the caller's config struct).  Rows are
 * read in order with the getters above, so messages and the order they are
 * checked in are the getters'; the first bad key stops the load.
 *   RULES_INT     a long; [min, max] (a bound beyond long's range means no bound)
 *   RULES_DOUBLE  a double; [min, max]
 *   RULES_BOOL    a bool
 *   RULES_ENUM    an int: the index of the value in `choices` (NULL-terminated);
 *                 a field of an enum type needs the size of int
 *   RULES_STR     a const char *, borrowed from the rules object (not copied:
 *                 it lives as long as the ruleset; a field the config frees
 *                 stays as code and strdup()s)
 *   RULES_LIST    the same, for a list or text that may be empty on purpose
 *                 (rules_get_list(): "exclude_params =" means none)
 * Keys with logic of their own (checked against another key, optional, lists)
 * stay as code beside the table.
 */
enum rules_type
{
	RULES_INT,
	RULES_DOUBLE,
	RULES_BOOL,
	RULES_ENUM,
	RULES_STR,
	RULES_LIST,
};

struct rules_param
{
	const char *key;
	enum rules_type type;
	double min, max;            /* RULES_INT and RULES_DOUBLE only */
	size_t offset;              /* offsetof(struct <config>, <field>) */
	const char *const *choices; /* RULES_ENUM only */
};

#define RULES_PARAMS_N(p) ((int) (sizeof(p) / sizeof((p)[0])))

bool rules_load_params(struct rules *r, const char *section, const struct rules_param *p, int n,
                       void *dest, struct error *err);
/* Does section.key still hold default.ini's value (no file given it one)? */
bool rules_is_default(const struct rules *r, const char *section, const char *key);

/*
 * Split a comma-separated list value into trimmed items (empty items
 * dropped).  Returns the count; *items is malloc'd (free it), the strings
 * point into one malloc'd block stored at items[count] ... i.e. free with
 * rules_list_free().  Returns -1 on OOM.
 */
int rules_split_list(const char *value, char ***items);
void rules_list_free(char **items);

/*
 * Names of the sections that equal `prefix` or start with `prefix` followed
 * by a dot (e.g. "blacklist" gives "blacklist.fake_phone", ...), in the
 * order they first appeared.  Returns the count; *names is malloc'd (free
 * the array only; the strings are borrowed).
 */
int rules_sections(const struct rules *r, const char *prefix, const char ***names);
/* Keys of one section in order of appearance; same ownership as above. */
int rules_keys(const struct rules *r, const char *section, const char ***keys);
/*
 * A rule section's "enabled" key: 1 on, 0 switched off (its other keys are
 * then marked used, not checked), -1 a bad value (err filled).
 */
int rules_section_enabled(struct rules *r, const char *section, struct error *err);
/* Mark every key of a section used (for sections read by rules_keys). */
void rules_use_section(struct rules *r, const char *section);

/*
 * True when `value` holds a password: a conninfo "password=..." (as in a
 * dblink() call of a query) or a URI's "user:password@".  The rules text is
 * stored with each run, where reporting roles can read it.
 */
bool rules_value_has_password(const char *value);
/* The first value holding a password is an error naming its file and line, not the value. */
bool rules_check_secrets(const struct rules *r, struct error *err);

/*
 * After every module has read its keys: the first unused key is an error
 * (keys default.ini has are known, read or not).
 */
bool rules_check_unused(struct rules *r, struct error *err);
/*
 * A key that is surely a typo: not read, not a key default.ini has, in a
 * section asked about since `mark`, near a known key of its section.  Fills
 * err with the unknown-key error and returns true when there is one; used
 * when a loader fails, so that "tabel = ..." is reported as the typo it is.
 */
bool rules_find_typo_key(struct rules *r, int mark, struct error *err);
/*
 * The keys of default.ini no loader asked for (for the tests that keep
 * default.ini and the loaders in step): fills up to `max` section and key
 * names (borrowed) and returns how many there are.
 */
int rules_unread_defaults(const struct rules *r, const char **sections, const char **keys, int max);

/*
 * The merged rule set as canonical INI text (sections and keys in order of
 * first appearance, which is the order rules run in; one
 * "key = value" a line), and its SHA-256 in hex.  Both are stored with each
 * run.  The text is malloc'd (caller frees); NULL on OOM.
 */
char *rules_text(const struct rules *r);
bool rules_sha256_hex(const char *text, char out[65]);

/*
 * The SHA-256 of a rules_text() without the keys that never change what a
 * run decides about a lead ([source] lock_timeout_ms and pull_streams, the
 * [job] guards, [output] keep_runs, lock_timeout_ms, analyze and
 * file_mode): two runs whose texts give the same hash decide alike, so a
 * job's state and dedupe model outlive a change of those keys.  False on OOM.
 */
bool rules_decisions_sha256_hex(const char *text, char out[65]);

/* The files loaded, comma-separated, for the run record (borrowed). */
const char *rules_files(const struct rules *r);

/*
 * Collecting problems instead of stopping at the first (check-rules).  When
 * collecting is on, the typed getters keep a bad value's error as a problem
 * and go on with default.ini's value, rules_check_unused() keeps every
 * unknown key, and a check calls rules_problem() with the error it filled:
 * it returns true when the error was kept (carry on), false when not
 * collecting or when the error is no rules error (stop as before).
 */
void rules_collect(struct rules *r, bool on);
bool rules_collecting(const struct rules *r);
bool rules_problem(struct rules *r, struct error *err);
/*
 * The problems kept, sorted by file (in the order loaded) then line; a
 * problem naming no "file:line" comes last.  Returns the count; *list is
 * borrowed from the rules object.
 */
int rules_problems(struct rules *r, const struct error **list);
/*
 * Sections asked about since `mark` (a count from rules_asked_count()) are
 * tainted: a loader stopped inside them, so their keys it did not get to
 * read are not reported as unknown (nor those of sections of one family,
 * [blacklist.a] and [blacklist.b]).
 */
int rules_asked_count(const struct rules *r);
void rules_taint_since(struct rules *r, int mark);
/* The same for a loader not run at all: [family] and [family.<id>] are tainted. */
void rules_taint_family(struct rules *r, const char *family);
/*
 * A loader (or one section's part of it) failed with err, having begun at
 * `mark`.  A key near one the section knows, which the loader never read,
 * is most likely why ("tabel = ..." leaves [source] without a table): err
 * becomes that error.  Collecting, the error is kept, the sections since
 * `mark` are tainted and true is returned: go on with the next section or
 * loader.  Not collecting (or not a rules error): false, stop.
 */
bool rules_loader_failed(struct rules *r, int mark, struct error *err);

/*
 * The nearest of `names` (n of them, or NULL-terminated when n < 0) to
 * `word` by edit distance, or NULL when none is near (more than a third of
 * the word's length, at least 2, away).  Case is ignored.
 */
const char *rules_nearest(const char *word, const char *const *names, int n);

#endif /* REFINERY_RULES_H */
