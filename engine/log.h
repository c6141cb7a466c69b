/*
 * log.h
 *    Everything the program says: errors, warnings and the run summary, as
 *    text in PostgreSQL's wording or as one JSON object per line.
 *
 * Only main.c and the command files (cmd_*.c) call these; modules return
 * struct error instead.  Nothing here ever prints a conninfo.
 */
#ifndef REFINERY_LOG_H
#define REFINERY_LOG_H

#include <stdbool.h>

#include "error.h"

extern bool log_json;  /* --log-format=json */
extern bool log_quiet; /* -q: no summary line */

void log_error(const struct error *err);
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* REFINERY_LOG_H */
