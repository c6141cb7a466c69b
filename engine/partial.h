/*
 * partial.h
 *    The partial / outlier stage: remove kept leads that cannot be worked
 *    (no usable contact, a required field missing) and leads whose data is
 *    impossible (dates in the future or before a floor, impossible touch
 *    counts, a last touch long before creation), by [partial] and the
 *    user's [outlier.<id>] rules ([004-2]).
 *
 * It runs after dedupe, on the rows still kept.  A survivor of a cluster is
 * judged with its cluster's contacts: a phone or e-mail of any duplicate
 * that was not black-listed counts as the survivor's, so a survivor whose own
 * phone is empty is not partial when a duplicate had one.
 */
#ifndef REFINERY_PARTIAL_H
#define REFINERY_PARTIAL_H

#include <stdbool.h>
#include <string.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

struct partial_config; /* opaque; owned by the ruleset */

bool partial_config_load(struct rules *r, struct partial_config **out, struct error *err);
void partial_config_free(struct partial_config *c); /* NULL is a no-op */

bool partial_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                   struct error *err);

/* The rule ids this stage stores with a lead, besides "outlier.<id>" of the user's rules. */
#define PARTIAL_NO_CONTACT          "partial.no_contact"
#define PARTIAL_REQUIRE             "partial.require"
#define PARTIAL_FUTURE_DATE         "partial.future_date"
#define PARTIAL_BEFORE_MIN_DATE     "partial.before_min_date"
#define PARTIAL_TOUCH_COUNT         "partial.touch_count"
#define PARTIAL_TOUCH_BEFORE_CREATE "partial.touch_before_create"

/* The reason of a contactless lead kept as nurture ([partial] require_contact = no). */
#define PARTIAL_NO_CONTACT_REASON "no contact"

/*
 * Whether row i is a contactless lead that [partial] require_contact = no
 * kept as nurture: the score stage scores it like a kept lead (so data
 * without contacts can be scored and calibrated); no rep ever gets it.
 */
static inline bool
partial_scored_nurture(const struct batch *b, size_t i)
{
	return b->verdict[i] == VERDICT_NURTURE && b->rule_id[i] != NULL &&
	       strcmp(b->rule_id[i], PARTIAL_NO_CONTACT) == 0;
}

#endif /* REFINERY_PARTIAL_H */
