/*
 * vocab.h
 *    What the rules name that the run's leads never showed: warnings, not
 *    errors (the exit status does not change).
 *
 * check-rules knows the statuses the rules may name (the keys of
 * [status_map], ruleset.c); only a run knows the values its source holds.
 * After the stages, a key the user's rule files wrote that matches no lead
 * (a [status_map] status no lead has, a category of a map parameter of
 * [score.<name>] no lead's value falls in) and a black-list rule that hit
 * no lead are most likely a typo or a rule aimed at the wrong field, and
 * are said in the run summary, its JSON "warnings" and the runs row (the
 * report).  Keys and rules of the shipped defaults alone are left out: a
 * source need not hold every category the shipped rules know.
 */
#ifndef REFINERY_VOCAB_H
#define REFINERY_VOCAB_H

#include <stdbool.h>

#include "batch.h"
#include "error.h"
#include "pipeline.h"
#include "stage.h"

struct vocab_warnings
{
	int n;
	int cap;
	char **msg; /* n messages, each "file:line: [section] key: ..." ; owned */
};

/* Fill *w (zeroed by the caller) from the batch after the stages and their counters. */
bool vocab_check(const struct ruleset *rs, const struct batch *b, const struct pipeline_result *pr,
                 struct vocab_warnings *w, struct error *err);
void vocab_warnings_free(struct vocab_warnings *w); /* NULL is a no-op */

#endif /* REFINERY_VOCAB_H */
