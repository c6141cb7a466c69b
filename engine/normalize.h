/*
 * normalize.h
 *    The normalise / repair stage [001-5] [003-4]: phones, e-mails, names
 *    and statuses of every lead put into one canonical form.
 *
 * normalize_config_load() reads the sections [normalize], [phone_plan],
 * [phone_area_codes], [email], [email_typos], [email.<provider>],
 * [status_map] and [translit] (documented in rules/normalize.ini.part) into
 * a struct normalize_config that the ruleset owns.  normalize_stage() fills
 * b->phones, phone_types, phone_repair, email_norm, email_key, name_norm
 * and status_norm for every row, whatever its verdict, and never changes a
 * verdict.  The pure functions live in phone.h, email.h and name.h; other
 * stages reach the tables through the config (e.g. de-duplication calls
 * name_translit_key(rs->normalize->translit, ...)).
 */
#ifndef REFINERY_NORMALIZE_H
#define REFINERY_NORMALIZE_H

#include <stdbool.h>
#include <stddef.h>

#include "batch.h"
#include "email.h"
#include "error.h"
#include "name.h"
#include "phone.h"
#include "rules.h"
#include "stage.h"

/* Longest status spelling the map compares (bytes after folding). */
#define NORMALIZE_STATUS_MAX 128

/* One spelling of the status map: folded spelling -> canonical status. */
struct normalize_status
{
	char *spelling;        /* trimmed, lower case, single spaces */
	const char *canonical; /* points into normalize_config.canonical */
};

struct normalize_config
{
	struct phone_plan *plan;         /* [phone_plan] and [phone_area_codes] */
	bool phone_from_city;            /* [phone_plan] complete_from_city */
	struct email_rules *email;       /* [email], [email_typos], [email.<provider>] */
	struct name_translit *translit;  /* [translit]; never NULL, may be empty */
	struct normalize_status *status; /* [status_map], sorted by spelling */
	int nstatus;
	int capstatus;    /* allocated entries of status */
	char **canonical; /* the canonical statuses (keys of [status_map]) */
	int ncanonical;
	long chunk_rows; /* [normalize] chunk_rows: rows per parallel work unit */
};

bool normalize_config_load(struct rules *r, struct normalize_config **out, struct error *err);
void normalize_config_free(struct normalize_config *c); /* NULL is a no-op */

/*
 * The canonical form of a status: the map's canonical name when the
 * trimmed, case-folded spelling is in [status_map] (*mapped = true; the
 * string is owned by the config), else the folded text itself, written to
 * buf (`size` bytes; cut when too small).  NULL for NULL or blank input.
 */
const char *normalize_status(const struct normalize_config *c, const char *raw, char *buf,
                             size_t size, bool *mapped);

/*
 * The stage.  Counters (stage_count): phone_invalid, phone_missing_zero,
 * phone_double_cc, phone_trunk_after_cc, phone_from_city, phone_extension,
 * phone_typo:<from>=><to> (one per typo rule), phone_over_limit,
 * email_invalid, email_domain_typo, name_invalid_utf8, status_mapped.
 * Rows are processed in fixed chunks in parallel; results do not depend on
 * the number of threads.
 */
bool normalize_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                     struct error *err);

#endif /* REFINERY_NORMALIZE_H */
