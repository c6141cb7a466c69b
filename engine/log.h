/*
 * log.h
 *    Everything the program says: errors, warnings and the run summary, as
 *    text in PostgreSQL's wording or as one JSON object per line.
 *
 * Only main.c, the command files (cmd_*.c) and what they print through
 * (summary.c: a run's summary; progress.c: its progress lines) call these;
 * modules return struct error instead.  The one exception is pg.c's notice
 * receiver, which hands every NOTICE or WARNING the server sends to
 * log_server(), so that they too come out in the chosen format.  Nothing here ever prints a
 * conninfo.
 */
#ifndef REFINERY_LOG_H
#define REFINERY_LOG_H

#include <stdbool.h>

#include "error.h"

extern bool log_json;  /* --log-format=json */
extern bool log_quiet; /* -q: no summary line */

struct strbuf;

void log_error(const struct error *err);
/*
 * The fields every JSON line opens with, "{"ts": ..., "program": "refinery",
 * "level": LEVEL", without the closing brace: the run summary (cmd_run.c)
 * has the same head as an error.
 */
void log_json_head(struct strbuf *sb, const char *level);
void log_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A message the server sent (a notice): `severity` is its non-localised
 * severity ("NOTICE", "WARNING", ...); any of sqlstate, detail and hint may
 * be NULL.  Text mode prints it as libpq and psql do ("NOTICE:  ..." with
 * DETAIL: and HINT: lines); JSON mode as one object whose level is the
 * severity in lower case.
 */
void log_server(const char *severity, const char *sqlstate, const char *msg, const char *detail,
                const char *hint);

#endif /* REFINERY_LOG_H */
