/*
 * batch.h
 *    The in-memory model every pipeline stage works on: one batch of leads,
 *    held column-wise.
 *
 * A batch owns all of its memory.  Source fields are NUL-terminated strings
 * packed back to back in one buffer per column, each named by its 32-bit
 * offset there (0 = SQL NULL; batch_value() gives the text); parsed and
 * derived values are plain arrays indexed by the lead's row
 * number (0 .. n-1, the order in which the source delivered them).  Stages
 * write their results into the result arrays and mark verdicts; they never
 * free, copy or reorder leads.  Strings a stage stores (normalised values,
 * reasons) are allocated with batch_strdup() or borrowed from the ruleset,
 * which outlives the batch.
 *
 * Thread safety: distinct rows of the result arrays may be written by
 * distinct threads (source values are set by one thread, before the
 * stages: batch_set_value()); the arena is not thread-safe, so a parallel stage builds strings in buffers
 * of its own and copies them into the arena after its parallel loop, in
 * row order.
 */
#ifndef REFINERY_BATCH_H
#define REFINERY_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "error.h"

/* The fields the engine knows by meaning; [columns] maps source columns onto them. */
enum field
{
	FIELD_LEAD_ID,
	FIELD_CREATED_AT,
	FIELD_SOURCE,
	FIELD_CAMPAIGN,
	FIELD_NAME,
	FIELD_PHONE,
	FIELD_PHONE2,
	FIELD_MOBILE,
	FIELD_EMAIL,
	FIELD_CITY,
	FIELD_STATUS,
	FIELD_LAST_TOUCH_AT,
	FIELD_TOUCH_COUNT,
	FIELD_LAST_TOUCH_TYPE,
	FIELD_NOTES,
	FIELD_AUTOMATION,
	FIELD_LAST_REP,
	FIELD_CONSENT_CALL, /* marketing consent per channel: a boolean, */
	FIELD_CONSENT_SMS,  /* NULL when the source does not know */
	FIELD_CONSENT_EMAIL,
	FIELD__COUNT
};

/* The [columns] key of each field, e.g. "lead_id", "phone2". */
const char *field_key(enum field f);

enum verdict
{
	VERDICT_KEPT = 0,
	VERDICT_BLACKLISTED,
	VERDICT_DUPLICATE,
	VERDICT_PARTIAL,
	VERDICT_OUTLIER,
	VERDICT_NURTURE,
	VERDICT_CUSTOMER, /* a lead of a person the job won: out of the call lists (outcomes.h) */
	VERDICT_REVIEW,   /* maybe a person who opted out: out of the call lists until confirmed */
	VERDICT__COUNT
};
const char *verdict_name(enum verdict v); /* "kept", "blacklisted", ... */

enum phone_type
{
	PHONE_NONE = 0, /* no phone given */
	PHONE_MOBILE,
	PHONE_LANDLINE,
	PHONE_VOIP,
	PHONE_SPECIAL, /* 1-700 / 1-800 and similar */
	PHONE_INVALID  /* given, but not a valid number of the plan */
};
const char *phone_type_name(enum phone_type t); /* NULL for PHONE_NONE */

enum temperature
{
	TEMP_NONE = 0,
	TEMP_COLD,
	TEMP_WARM,
	TEMP_HOT
};
const char *temperature_name(enum temperature t); /* NULL for TEMP_NONE */

/* how many normalised phones one lead keeps (phone, phone2, mobile, a second number in one field) */
#define BATCH_PHONES 3
/* "missing" for the int64 time columns */
#define BATCH_NO_TIME INT64_MIN
/* "no row" for row-index columns */
#define BATCH_NO_ROW UINT32_MAX

struct rep_table;     /* reps and their history; match.h */
struct suppress_set;  /* contacts of people erased on request; suppress.h */
struct blacklist_dnc; /* the do-not-call lists' values; blacklist.h */
struct dedupe_prior;  /* what the job's state tells the dedupe; dedupe.h */

struct batch_intern; /* each column's repeated values, while it has few (batch.c) */

/*
 * One source column's values, NUL-terminated and back to back.  Its first
 * byte is a NUL no value starts at, so offset 0 can stand for SQL NULL.
 * A column holds less than 4 GB of text (batch_append()).
 */
struct batch_text
{
	char *p; /* NULL until the column's first value */
	size_t len, cap;
};

struct batch
{
	size_t n;           /* leads held */
	size_t cap;         /* allocated rows in every column */
	int ncols;          /* FIELD__COUNT + nextra */
	char **extra_names; /* names of the extra columns kept by name */
	int nextra;
	struct arena *arena; /* strings the stages store (normalised values, reasons); owned */
	struct batch_intern *intern;

	/* ---- source values: batch_value(b, c, i); ncols columns ---- */
	uint32_t **off;          /* off[c][i]: the value's offset in text[c], 0 = SQL NULL */
	struct batch_text *text; /* ncols buffers */
	int too_long;            /* the column whose text reached 4 GB, -1 none (batch_append) */

	/* ---- parsed by the pull (batch_parse) ---- */
	int64_t *created_at;    /* seconds since 1970-01-01, naive local time; BATCH_NO_TIME */
	int64_t *last_touch_at; /* same */
	int32_t *touch_count;   /* -1 when missing or not a number */
	int8_t *automation;     /* -1 unknown, 0 false, 1 true */

	/* ---- normalise / repair ---- */
	uint64_t (*phones)[BATCH_PHONES];     /* E.164 digits as a number (972521234567), 0 = none;
										 * [0] is the primary phone */
	uint8_t (*phone_types)[BATCH_PHONES]; /* enum phone_type of each */
	const char **phone_repair;            /* what repair was applied, NULL if none */
	const char **email_norm;              /* trimmed, lower-cased, valid; NULL if none or invalid */
	const char **email_key;               /* identity key: provider rules and typo fixes applied */
	const char **name_norm;   /* NFKC, case-folded, punctuation dropped, single spaces */
	const char **status_norm; /* canonical status after the legacy-spelling map */

	/* ---- verdicts (every stage) ---- */
	uint8_t *verdict;     /* enum verdict; all VERDICT_KEPT after the pull */
	const char **rule_id; /* the rule that decided the verdict, NULL for kept */
	const char **reason;  /* human-readable why, NULL for kept */
	uint8_t *optout;      /* 1 when a person-level rule (refusal, denial,
								 * do-not-call) hit this lead: dedupe then removes
								 * every record of the person's cluster */

	/* ---- dedupe ---- */
	int64_t *cluster_id;    /* -1 = in no cluster of two or more */
	uint32_t *survivor;     /* row of the cluster's survivor (itself if survivor);
								 * BATCH_NO_ROW when not clustered */
	const char **golden;    /* survivors of clusters: golden record as JSON text, else NULL */
	int32_t *g_touch_count; /* golden values (equal to the lead's own when not merged) */
	int64_t *g_created_at;
	int64_t *g_last_touch_at;

	/* ---- score ---- */
	double *score;            /* 0..100, rounded to 0.01, equal to the sum of points */
	int npoints;              /* parameters; points[i * npoints + k] */
	const char **point_names; /* npoints names, borrowed from the ruleset */
	uint16_t *points;         /* in hundredths (0..10000: they add up to the score);
	                           * batch_points() gives the points */
	uint8_t *temperature;     /* enum temperature */
	const char **persona;     /* best persona's name, borrowed */

	/* ---- cohorts ---- */
	int16_t *cohort;           /* index into the ruleset's cohorts, -1 none */
	const char **cohort_name;  /* borrowed */
	const char **channel_plan; /* borrowed or arena */
	int64_t *sla_due_at;       /* seconds since epoch, UTC; BATCH_NO_TIME */

	/* ---- match ---- */
	int64_t *rep_id;      /* -1 = unassigned */
	int32_t *call_order;  /* 1-based position in the rep's queue, -1 none */
	double *p_close;      /* expected close probability, -1 unknown */
	int64_t *assigned_at; /* when rep_id got the lead (seconds, like the run's now): the
	                       * start of a hold kept from earlier runs, else the run's now;
	                       * BATCH_NO_TIME when unassigned */

	/* ---- sticky work: what earlier runs of the job left (state.c), read by match ---- */
	bool has_state;      /* the job has state: its holds are below; false on a job's first
	                      * run and for a CSV target, where [columns] last_rep seeds holds */
	int64_t *held_rep;   /* the rep holding the lead, -1 none */
	int64_t *held_since; /* when that rep got it; BATCH_NO_TIME unknown */
	uint8_t *pinned;     /* 1: the rep has taken the lead through the pull queue and the
	                      * take stands: the hold neither expires nor yields to capacity */

	/* ---- reps, loaded by the pull beside the leads; owned (match.h) ---- */
	struct rep_table *reps;
	/* ---- the suppression list, when the run reads a database; owned ---- */
	struct suppress_set *suppress;
	/* ---- the do-not-call values the rules' files and queries gave; owned ---- */
	struct blacklist_dnc *dnc;
	/* ---- the job's clusters and dedupe model (state_dedupe.c); borrowed, NULL no state ---- */
	struct dedupe_prior *dd_prior;
};

/*
 * Create an empty batch with room for `nextra` extra columns named by
 * `extra_names` (copied).  Returns NULL on out of memory.
 */
struct batch *batch_new(int nextra, const char *const *extra_names);
void batch_free(struct batch *b); /* NULL is a no-op */

/*
 * Append one lead.  `values` has b->ncols entries (NULL = SQL NULL), each
 * `lens[c]` bytes long (no NUL needed); they are copied into their
 * columns.  Returns the new row's index, or -1 on out of memory or when a
 * column's text would pass 4 GB (b->too_long names it; batch_append_error()).
 */
long batch_append(struct batch *b, const char *const *values, const size_t *lens);

/* The error of a batch_append() that returned -1: out of memory, or a column too long. */
bool batch_append_error(const struct batch *b, struct error *err);

/*
 * Set row i's value of column c to a copy of v (NULL = SQL NULL; v may be
 * another row's value of the column); false as batch_append().  For filling
 * a batch before the stages run: the column's text may move, so pointers
 * into it (batch_value()'s, and the normalised values that borrow them)
 * are then stale, and no other thread may use the column meanwhile.
 */
bool batch_set_value(struct batch *b, int c, size_t i, const char *v);

/*
 * After the last append: allocate and initialise every derived column and
 * parse created_at, last_touch_at, touch_count and automation.  A value that
 * does not parse is a data error naming the lead id and the field.
 */
bool batch_finish(struct batch *b, struct error *err);

/* Copy a string into the batch's arena (not thread-safe); NULL on OOM. */
char *batch_strdup(struct batch *b, const char *s);
char *batch_strndup(struct batch *b, const char *s, size_t len);

/*
 * Column index of an extra column by name, or of a known field by its key;
 * -1 when the batch has no such column.  Lets rules name any source column.
 */
int batch_column(const struct batch *b, const char *name);

/* Mark a lead removed: verdict, the rule's id and a reason (both borrowed or arena). */
static inline void
batch_mark(struct batch *b, size_t i, enum verdict v, const char *rule_id, const char *reason)
{
	b->verdict[i] = (uint8_t) v;
	b->rule_id[i] = rule_id;
	b->reason[i] = reason;
}

/* Row i's value of source column c (a field or FIELD__COUNT + an extra), NULL for SQL NULL. */
static inline const char *
batch_value(const struct batch *b, int c, size_t i)
{
	uint32_t o = b->off[c][i];

	return o ? b->text[c].p + o : NULL;
}

/* The lead id's text of row i. */
static inline const char *
batch_lead_id(const struct batch *b, size_t i)
{
	return batch_value(b, FIELD_LEAD_ID, i);
}

/* Row i's points for scoring parameter k (batch.points holds hundredths). */
static inline double
batch_points(const struct batch *b, size_t i, int k)
{
	return (double) b->points[i * (size_t) b->npoints + (size_t) k] / 100.0;
}

/* Parse "YYYY-MM-DD[ T]HH:MM[:SS[.frac]]" or "YYYY-MM-DD" into seconds; false if malformed. */
bool batch_parse_time(const char *s, int64_t *out);

#endif /* REFINERY_BATCH_H */
