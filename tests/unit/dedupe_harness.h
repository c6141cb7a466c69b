/*
 * dedupe_harness.h
 *    Test-only helpers for the de-duplication tests and measurements: a
 *    CSV file into a batch, and a minimal stand-in for the normaliser.
 *
 * Not part of the engine.  The stand-in normaliser does just enough for
 * dedupe to be measured before (or without) engine/normalize.c: phones to
 * E.164 numbers, e-mails trimmed and lower-cased with gmail dots and
 * +tags removed in the key, names folded.
 */
#ifndef REFINERY_DEDUPE_HARNESS_H
#define REFINERY_DEDUPE_HARNESS_H

#include <stdbool.h>

#include "batch.h"
#include "error.h"
#include "rules.h"

/*
 * Read a CSV file with a header row into a new, finished batch.  Fields
 * take the column of the same name as the engine's default [columns] map;
 * `map` overrides it with pairs {field key, source column} (nmap pairs; a
 * NULL column unmaps the field); `extra` names source columns kept by name.
 * An empty unquoted value is NULL.  NULL on failure, with err filled.
 */
struct batch *harness_load_csv(const char *path, const char *const *map, int nmap,
                               const char *const *extra, int nextra, struct error *err);

/* The stand-in normaliser (phones, phone types, email_norm, email_key, name_norm, status_norm). */
void harness_normalize(struct batch *b);

struct name_translit;

/*
 * A transliteration table read from a file of name_translit_add() entries,
 * one a line ('#' starts a comment).  NULL with err on failure.
 */
struct name_translit *harness_translit(const char *path, struct error *err);

/* Load rule files in order into a new rules object; NULL with err on failure. */
struct rules *harness_rules(const char *const *files, int nfiles, struct error *err);

/* Seconds on a monotonic clock. */
double harness_now(void);

#endif /* REFINERY_DEDUPE_HARNESS_H */
