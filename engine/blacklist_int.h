/*
 * blacklist_int.h
 *    What the parts of the black-list stage share, private to
 *    engine/blacklist*.c: the rule and config structures, the hash sets,
 *    and the functions one part calls in another (prefixed bl_).
 *
 * The parts:
 *    blacklist_tools.c   hash sets, keyboard mashing
 *    blacklist_config.c  the [blacklist.<id>] rules and the do-not-call lists
 *    blacklist.c         the stage
 */
#ifndef REFINERY_BLACKLIST_INT_H
#define REFINERY_BLACKLIST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "blacklist.h"
#include "phone.h"
#include "regex.h"

/* rows per chunk handed to a thread; fixed, so the split never depends on the thread count */
#define BL_CHUNK 2048

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
	int fake_run; /* a run of this many digits is fake (phone_fake_digits) */
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
	char *file[2];                 /* phone_list, email_list: resolved paths, or NULL */
	char *file_where[2];           /* "file:line: [section] key", for messages */
	const struct phone_plan *plan; /* the leads' numbering plan; borrowed */
};

/* One rule's do-not-call values, as the run's side data supplied them. */
struct blacklist_dnc_list
{
	bool query_done;
	bool file_done[2];
	struct u64_set phones; /* E.164 keys, as phone.c reads them under the plan */
	struct str_set emails;
};

/* The do-not-call values of every rule of one config, index for index. */
struct blacklist_dnc
{
	const struct blacklist_config *c; /* borrowed; must outlive the stage's use */
	struct blacklist_dnc_list *lists; /* nlists (c->nrules) */
	int nlists;                       /* kept here, so freeing never reads c */
};

struct blacklist_config
{
	const struct phone_plan *plan; /* borrowed from the normaliser's config */
	struct blacklist_rule *rules;
	int nrules;
	int *query_rule; /* rule index of each query */
	int nqueries;
	int *file_rule; /* 2 * rule index + list (0 phones, 1 e-mails) of each file */
	int nfiles;
	struct regex_limits lim;
};

/* hash sets (blacklist_tools.c); false on out of memory */
bool bl_u64_set_add(struct u64_set *s, uint64_t v);
bool bl_u64_set_has(const struct u64_set *s, uint64_t v);
bool bl_str_set_add(struct str_set *s, const char *v);
bool bl_str_set_has(const struct str_set *s, const char *v);
void bl_str_set_free(struct str_set *s);

/* keyboard mashing (blacklist_tools.c) */
int bl_utf8_next(const unsigned char *p, uint32_t *cp);
bool bl_mash_name(const struct blacklist_rule *rl, const char *name);

/* Is s NULL, empty or only blanks? */
bool bl_blank(const char *s);

#endif /* REFINERY_BLACKLIST_INT_H */
