/*
 * dedupe.h
 *    Identity resolution: which leads are the same person, one survivor per
 *    person, a golden record merging the person's history, and opt-outs
 *    carried to every record of the person.
 *
 * The method (blocking, Fellegi-Sunter weights learned by EM, clustering
 * with a chaining guard) is described at the top of dedupe.c; the rule keys
 * in rules/dedupe.ini.part.  The stage reads the normalised columns of the
 * batch (phones, email_norm, email_key, name_norm, status_norm) and any
 * source column by name, and writes verdict/rule_id/reason, cluster_id,
 * survivor, golden and the g_* columns.
 */
#ifndef REFINERY_DEDUPE_H
#define REFINERY_DEDUPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

#define DEDUPE_MAX_FIELDS  10 /* three bits of a 32-bit pattern each */
#define DEDUPE_MAX_LEVELS  6
#define DEDUPE_MAX_COLUMNS 4
#define DEDUPE_MAX_BLOCKS  16
#define DEDUPE_MAX_PARTS   4
#define DEDUPE_MAX_POLICY  8

/* How a field is compared; the levels each gives are listed in dedupe.c. */
enum dedupe_comparator
{
	DEDUPE_CMP_EXACT, /* agree / disagree on the folded text */
	DEDUPE_CMP_PHONE, /* any normalised phone of one equals any of the other */
	DEDUPE_CMP_EMAIL, /* same address / same once provider rules applied / no */
	DEDUPE_CMP_NAME,  /* token set, Jaro-Winkler, Hebrew-Latin aware */
	DEDUPE_CMP_TEXT,  /* Jaro-Winkler on the whole folded text */
	DEDUPE_CMP_DATE,  /* same day / within `near` days or one typo / no */
	DEDUPE_CMP_NUMBER /* equal / within `near` / no */
};

/* How a block key is made from a field's value. */
enum dedupe_key_fn
{
	DEDUPE_KEY_VALUE,    /* the value itself (each phone; the e-mail key) */
	DEDUPE_KEY_SORTED,   /* a name's tokens sorted */
	DEDUPE_KEY_TRANSLIT, /* the tokens' phonetic keys, sorted (Hebrew = Latin) */
	DEDUPE_KEY_TOKEN,    /* each token on its own (one key per token) */
	DEDUPE_KEY_PREFIX,   /* the first `prefix` characters */
	DEDUPE_KEY_YEAR,     /* a date's year */
	DEDUPE_KEY_MONTH,    /* a date's year and month */
	DEDUPE_KEY_NEAR      /* a date's window of near+1 days, and the next: two
								 * dates at most `near` days apart share a key */
};

enum dedupe_policy
{
	DEDUPE_POLICY_STATUS,     /* best status in status_rank */
	DEDUPE_POLICY_LAST_TOUCH, /* latest last_touch_at */
	DEDUPE_POLICY_COMPLETE,   /* most contact fields filled */
	DEDUPE_POLICY_TOUCHES,    /* most touches */
	DEDUPE_POLICY_OLDEST,     /* earliest created_at */
	DEDUPE_POLICY_NEWEST      /* latest created_at */
};

struct dedupe_field
{
	char *name; /* from [dedupe.field.<name>] */
	enum dedupe_comparator cmp;
	int ncolumns; /* 0: the comparator's own column (phones, e-mail, name_norm) */
	char *columns[DEDUPE_MAX_COLUMNS]; /* batch_column() names, values joined by a space */
	double strong;                     /* name/text: similarity of the "strong" level */
	double weak;                       /* name/text: similarity of the "weak" level */
	double near;                       /* date: days; number: absolute difference */
	bool translit;               /* text: compare Hebrew with Latin through the phonetic key */
	bool typo;                   /* date: one digit wrong or swapped, or day and month
								 * swapped, counts as near (for birth dates) */
	bool tf;                     /* weight exact agreement by the value's frequency */
	int nlevels;                 /* levels of the comparator, strongest agreement first */
	double m[DEDUPE_MAX_LEVELS]; /* given in the rules (m_given) or EM's start */
	double u[DEDUPE_MAX_LEVELS];
	bool m_given;
	bool u_given;
	uint32_t veto;    /* bit l: a pair at level l is no match (see veto_lift) */
	char *given_name; /* "given = name": u measured among namesakes */
	char **alias;     /* name: nickname groups, members space-separated
								 * (rules_split_list; NULL none) */
	int nalias;
	int given; /* index of that field, -1 none */
};

struct dedupe_block
{
	char *name; /* from [dedupe.block.<name>] */
	int nparts;
	int field[DEDUPE_MAX_PARTS]; /* index into fields */
	enum dedupe_key_fn fn[DEDUPE_MAX_PARTS];
	int prefix[DEDUPE_MAX_PARTS]; /* DEDUPE_KEY_PREFIX: characters */
	long max_size;                /* a block larger than this is not compared */
	bool optout_only;             /* only pairs with an opt-out row (see dedupe.c) */
	bool automatic;               /* made by [dedupe] auto_block for a field no block names:
								 * a block over max_size is passed over without a count */
};

struct dedupe_config
{
	bool enabled;
	double min_probability;    /* match when P(same person) >= this */
	double optout_probability; /* hold for review as "may have opted out" when >= this */
	double cannot_link;        /* a pair whose weight is at most this keeps its records apart */
	bool em;                   /* estimate m and the prior by EM; else the rules' m */
	bool prior_given;          /* estimate = fixed with a prior: nothing estimated */
	double prior;              /* log2 odds that two random leads are one person */
	long em_iterations;
	long u_sample; /* random pairs per field for u */
	uint64_t seed;
	long frequent;         /* a phone / e-mail held by more rows is no evidence */
	long optout_namesakes; /* an opt-out reaching more kept leads by name alone holds none */
	long max_block;        /* default max_size of a block */
	long auto_block;       /* max_size of the automatic blocks; 0 = none */
	double veto_lift;      /* a veto gives way when the other fields alone reach
								 * this probability; 1 = never */
	int nfields;
	struct dedupe_field field[DEDUPE_MAX_FIELDS];
	int nblocks;
	struct dedupe_block block[DEDUPE_MAX_BLOCKS];
	int npolicy;
	enum dedupe_policy policy[DEDUPE_MAX_POLICY];
	int nstatus;
	char **status_rank; /* best first; malloc'd with rules_split_list */
	long notes_max;     /* bytes of joined notes in the golden record */
};

/* Parse [dedupe], [dedupe.field.*], [dedupe.block.*]; *out is set even on failure. */
bool dedupe_config_load(struct rules *r, struct dedupe_config **out, struct error *err);
void dedupe_config_free(struct dedupe_config *c); /* NULL is a no-op */

/* The pipeline stage. */
bool dedupe_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                  struct error *err);

/* What one run found and learned: for statistics, reports and tests. */
struct dedupe_report
{
	size_t participants;                   /* kept rows plus opt-out rows */
	size_t candidate_pairs;                /* distinct pairs compared */
	size_t blocks_skipped;                 /* blocks over their max_size */
	size_t rows_skipped;                   /* rows in those blocks */
	size_t block_pairs[DEDUPE_MAX_BLOCKS]; /* pairs each block proposed */
	size_t matches;                        /* pairs at or above min_probability */
	size_t refused;                        /* merges refused by the chaining guard */
	size_t clusters;                       /* clusters of two or more */
	size_t duplicates;                     /* rows marked duplicate */
	size_t optout_propagated;              /* kept rows black-listed through their cluster */
	size_t optout_review;    /* kept rows held for review: a weak link to an opt-out */
	size_t optout_unmatched; /* opt-outs with only a frequent name, joined to no one */
	double prior;            /* log2 odds that two random participants match */
	double seconds[6];       /* prepare, block, compare, estimate, cluster, resolve */
	int em_iterations;
	int nfields;
	struct
	{
		const char *name; /* borrowed from the config */
		int nlevels;
		double m[DEDUPE_MAX_LEVELS];
		double u[DEDUPE_MAX_LEVELS];
		double weight[DEDUPE_MAX_LEVELS]; /* log2(m / u) */
		bool has_given;                   /* u among pairs agreeing on the `given` field: */
		double u_given[DEDUPE_MAX_LEVELS];
		double weight_given[DEDUPE_MAX_LEVELS];
	} field[DEDUPE_MAX_FIELDS];
};

/*
 * What the dedupe learnt: m, u, the conditional u of fields with `given`,
 * and the prior, with the number of participants it was learnt on.  A job
 * keeps the model its runs learnt (state_dedupe.c, refinery.jobs.
 * dedupe_model) so that a nightly run compares only the pairs a change can
 * affect, which are too few to learn m from, and skips measuring u on
 * random pairs; it learns the model again when the participants are more
 * than DEDUPE_MODEL_DRIFT (a share) more or fewer than when it was learnt.
 */
#define DEDUPE_MODEL_DRIFT 0.05

struct dedupe_model
{
	bool valid;
	int nfields;
	int nlevels[DEDUPE_MAX_FIELDS];
	double prior;
	double participants;
	double m[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double u[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
	double ug[DEDUPE_MAX_FIELDS][DEDUPE_MAX_LEVELS];
};

/*
 * What a job's state tells the dedupe (batch.dd_prior, set by state.c):
 * with `incremental` and a valid model, the stage re-resolves only the
 * leads a change can affect (see dedupe_incr.c) and keeps the clusters of
 * the others as the state has them; without (the arrays below are then
 * NULL), it resolves every lead and learns the model.  Either way it
 * leaves the model it used in `model`.
 */
struct dedupe_prior
{
	bool incremental;
	const uint8_t *touched;     /* batch row -> 1: new, returned, or changed (source fields,
	                                * or whether it was kept or an opt-out before the dedupe) */
	const int64_t *cluster;     /* batch row -> its cluster in the state, -1 none */
	const uint8_t *verdict;     /* batch row -> its verdict in the state (enum verdict) */
	const char *const *rule_id; /* batch row -> its rule in the state, NULL none */
	const int64_t *gone;        /* sorted ids of the clusters of the state's leads not pulled */
	size_t ngone;
	struct dedupe_model model; /* in: the job's model; out: the one the run used or learnt */
	size_t resolved;           /* out: participants re-resolved (every one when not incremental) */
};

struct strbuf;

/*
 * The model as one line of text, tied to the rules it was learnt with by
 * the hash given (the hash of the keys that decide,
 * rules_decisions_sha256_hex); parse gives false (and m->valid false) for
 * a text of another hash or one it cannot read.
 */
void dedupe_model_format(const struct dedupe_model *m, const char *rules_sha256, struct strbuf *sb);
bool dedupe_model_parse(const char *text, const char *rules_sha256, struct dedupe_model *m);

/* The rule id of a lead held for review as a possible opt-out (verdict review). */
#define DEDUPE_REVIEW_RULE "dedupe.optout_review"

struct name_translit;
struct phone_plan;

/*
 * Run de-duplication on `b` with `c`, using `threads` OpenMP threads (0 =
 * the OpenMP default).  `translit` is the normaliser's transliteration
 * table (name.h), borrowed; NULL compares Hebrew and Latin names only
 * letter by letter.  `plan` is the leads' numbering plan (phone.h),
 * borrowed: the golden record and the reasons write phones as
 * phone_format() does ("+972524423268", "*6700"); NULL writes "+" and the
 * E.164 digits.  `rep` may be NULL.  Results are identical whatever the
 * thread count.
 */
bool dedupe_run(struct batch *b, const struct dedupe_config *c,
                const struct name_translit *translit, const struct phone_plan *plan, int threads,
                struct dedupe_report *rep, struct error *err);

/*
 * The same, calling `trace` once per compared pair (in pair order, after
 * the weights are known) with the two batch rows, the pattern of levels
 * (three bits per field, 7 = missing), the weight in bits and whether a
 * veto holds.  For diagnostics and measurements; `trace` may be NULL.
 * `stop` (may be NULL; once true it stays true) is asked per row and pair
 * of the long loops and between the phases: when it is true the run gives
 * up with EXIT_INTERRUPTED, leaving the batch's verdicts half-marked.
 */
typedef void (*dedupe_trace_fn)(void *arg, size_t row_a, size_t row_b, uint32_t pattern,
                                double weight, bool vetoed);
bool dedupe_run_traced(struct batch *b, const struct dedupe_config *c,
                       const struct name_translit *translit, const struct phone_plan *plan,
                       int threads, struct dedupe_report *rep, dedupe_trace_fn trace, void *arg,
                       bool (*stop)(void), struct error *err);

#endif /* REFINERY_DEDUPE_H */
