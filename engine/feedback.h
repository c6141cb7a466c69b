/*
 * feedback.h
 *    The rules of feedback and refund claims: [cost] lead_price,
 *    [supplier.<name>] and [columns] supplier and bought_at.
 *
 * A run only checks them (so that a bad price or claim window is a rules
 * error naming file and line before anything is pulled) and stores them
 * with its rules text; "refinery feedback" and "refinery export --claims"
 * read them back from the job's latest run, through the SQL functions of
 * sql/010_feedback.sql (refinery.rules_value), which read that same text.
 */
#ifndef REFINERY_FEEDBACK_H
#define REFINERY_FEEDBACK_H

#include <stdbool.h>

#include "error.h"
#include "rules.h"

struct feedback_config
{
	int nprices;    /* sources with a [cost] lead_price */
	int nsuppliers; /* [supplier.<name>] sections */
};

bool feedback_config_load(struct rules *r, struct feedback_config **out, struct error *err);
void feedback_config_free(struct feedback_config *c); /* NULL is a no-op */

#endif /* REFINERY_FEEDBACK_H */
