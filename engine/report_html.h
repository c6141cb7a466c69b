/*
 * report_html.h
 *    report --html: one run as a manager's dashboard, a self-contained HTML
 *    page (inline CSS and SVG charts, no script, nothing fetched).
 */
#ifndef REFINERY_REPORT_HTML_H
#define REFINERY_REPORT_HTML_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "error.h"

/*
 * Write the dashboard of committed run `run_id` to `out` (the caller owns
 * the stream and commits it).  Reads the run's summaries, its job's earlier
 * runs and change log, and the job's outcomes; the page depends only on what
 * the database holds, never on the time it is written.
 */
bool report_html_write(PGconn *conn, int64_t run_id, FILE *out, struct error *err);

/*
 * Numbers as the page shows them: `v` rounded to `decimals` places with a
 * comma between thousands ("12,345.7", "-1,000"); a signed form puts "+" on
 * positive values.  Returns buf.  Exposed for the unit test.
 */
const char *report_html_number(char *buf, size_t size, double v, int decimals, bool sign);

#endif /* REFINERY_REPORT_HTML_H */
