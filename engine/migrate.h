/*
 * migrate.h
 *    Creating and upgrading the refinery schema from the migrations
 *    compiled into the program.
 */
#ifndef REFINERY_MIGRATE_H
#define REFINERY_MIGRATE_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "error.h"

/*
 * Apply every migration the database lacks, each in its own transaction,
 * in order, under an advisory lock so two init-db calls cannot interleave.
 * *applied gets how many were applied (0: already up to date); *changed gets
 * the name of the first migration already applied whose text differs from
 * the one this program carries (NULL when none does), for a warning.
 */
bool migrate_apply(PGconn *conn, int *applied, int *version, const char **changed,
                   struct error *err);

/*
 * Check that the schema exists, is at this program's version, and that the
 * connected role may write a run (and read `source_table` when not NULL).
 */
bool migrate_check(PGconn *conn, const char *source_table_quoted, struct error *err);

/* Check that the connected role may read the source table (quoted name). */
bool migrate_check_select(PGconn *conn, const char *table_quoted, struct error *err);

/* The newest migration this program carries. */
int migrate_latest(void);

#endif /* REFINERY_MIGRATE_H */
