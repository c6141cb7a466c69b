/*
 * report_html.c
 *    report --html: a run as a manager's dashboard.
 *
 * The page answers, in this order: where the run's leads went (assigned to
 * a rep, waiting for capacity, nurture, customer, held for review, removed)
 * and why they were removed; each cohort's expected conversions against
 * its target; each source; what changed since the job's previous run; the
 * trend over the
 * job's last runs; the reps' load; and, once the job has outcomes, what
 * actually happened per cohort against the target, per run, and per cohort
 * and run over the job's last 30 runs.  Every figure comes
 * from the run's summaries and the views of sql/; the charts are inline
 * SVG drawn from the same numbers as the tables beside them.  Every text
 * from the database is written whole (no fixed buffer cuts it; the rules'
 * SHA-256 is shortened on purpose) and HTML-escaped; numbers are rounded
 * and grouped by thousands (report_html_number).  The page holds no clock
 * reading, so the same database gives the same bytes.
 */
#include "config.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"
#include "report_html.h"

/* how many of the job's runs the trend shows */
#define TREND_RUNS_TEXT "12"

/* chart geometry (pixels) */
#define LABEL_W 280
#define BAR_W   470
#define ROW_H   22

/* units after a value, joined to it by a no-break space */
#define NBSP       "\xc2\xa0"
#define UNIT_LEADS NBSP "leads"
#define UNIT_PCT   NBSP "%"
#define UNIT_HOURS NBSP "h"
#define ARROW      "\xe2\x86\x92"

/* the meaning of each colour, the same in every chart */
#define C_ASSIGNED   "#2e7d32"
#define C_WAITING    "#f2a900"
#define C_NURTURE    "#5c85ad"
#define C_CUSTOMER   "#8e44ad"
#define C_REVIEW     "#00897b"
#define C_REMOVED    "#c0392b"
#define C_EXPECTED   "#3b6ea5"
#define C_TARGET     "#9e9e9e"
#define C_ACTUAL     "#2e7d32"
#define C_ACTUAL_FEW "#81c784" /* the same, paler: a rate of few leads */

/* ------------------------------------------------------------------------
 * Text and numbers
 * ------------------------------------------------------------------------ */

static void
esc(FILE *out, const char *s)
{
	for (; s && *s; s++)
	{
		switch (*s)
		{
			case '<': fputs("&lt;", out); break;
			case '>': fputs("&gt;", out); break;
			case '&': fputs("&amp;", out); break;
			case '"': fputs("&quot;", out); break;
			case '\'': fputs("&#39;", out); break;
			default: fputc(*s, out);
		}
	}
}

const char *
report_html_number(char *buf, size_t size, double v, int decimals, bool sign)
{
	char digits[64];
	const char *dot;
	size_t n = 0, intlen;
	bool neg;

	if (!isfinite(v))
	{
		snprintf(buf, size, "n/a");
		return buf;
	}
	snprintf(digits, sizeof(digits), "%.*f", decimals, fabs(v));
	/* a value that rounds to zero carries no sign */
	neg = v < 0 && strspn(digits, "0.") != strlen(digits);
	dot = strchr(digits, '.');
	intlen = dot ? (size_t) (dot - digits) : strlen(digits);
	if (size == 0)
		return buf;
#define PUT(c)                                                                                     \
	do                                                                                             \
	{                                                                                              \
		if (n + 1 < size)                                                                          \
			buf[n++] = (c);                                                                        \
	} while (0)
	if (neg)
		PUT('-');
	else if (sign && strspn(digits, "0.") != strlen(digits))
		PUT('+');
	for (size_t k = 0; k < intlen; k++)
	{
		if (k > 0 && (intlen - k) % 3 == 0)
			PUT(',');
		PUT(digits[k]);
	}
	for (const char *p = digits + intlen; *p; p++)
		PUT(*p);
#undef PUT
	buf[n] = '\0';
	return buf;
}

/* a number cell or text: NULL shows as an en dash */
static void
num(FILE *out, double v, int decimals, const char *unit)
{
	char b[64];

	fputs(report_html_number(b, sizeof(b), v, decimals, false), out);
	if (unit)
		fputs(unit, out);
}

static bool
isnull(PGresult *res, int r, int c)
{
	return c >= PQnfields(res) || PQgetisnull(res, r, c);
}

static double
dv(PGresult *res, int r, int c)
{
	return isnull(res, r, c) ? 0 : strtod(PQgetvalue(res, r, c), NULL);
}

static const char *
sv(PGresult *res, int r, int c)
{
	return isnull(res, r, c) ? "" : PQgetvalue(res, r, c);
}

static void
td_num(FILE *out, PGresult *res, int r, int c, int decimals, const char *unit)
{
	fputs("<td class=\"n\">", out);
	if (isnull(res, r, c))
		fputs("&ndash;", out);
	else
		num(out, dv(res, r, c), decimals, unit);
	fputs("</td>", out);
}

static void
td_text(FILE *out, const char *s)
{
	fputs("<td>", out);
	esc(out, s);
	fputs("</td>", out);
}

static void
section(FILE *out, const char *id, const char *title, const char *intro)
{
	fprintf(out, "<section id=\"%s\">\n<h2>", id);
	esc(out, title);
	fputs("</h2>\n", out);
	if (intro)
	{
		fputs("<p class=\"intro\">", out);
		esc(out, intro);
		fputs("</p>\n", out);
	}
}

/* ------------------------------------------------------------------------
 * Charts
 *
 * A chart is rows x series of values: labels[r], names[s], colours[s], and
 * v[r * nser + s].  Grouped bars draw each series as its own bar in the
 * row; stacked bars lay the series end to end; columns stack them upwards,
 * one column per row (the trend).  Each chart is a <figure class="chart">
 * with an id, an SVG and a caption saying what is drawn and in which unit.
 * A chart drawn from a query result (chart_from) names the result's label
 * column and first series column, and its draw function; the rows and
 * values it borrows live only while it is drawn.
 * ------------------------------------------------------------------------ */
struct chart
{
	const char *id;
	const char *caption;
	const char *unit; /* appended to the values shown, e.g. UNIT_LEADS */
	int decimals;
	int nrow, nser;
	const char **labels;
	const char *const *names;
	const char *const *colours;
	const double *v;
	int label_col, first_col; /* drawn from a result (chart_from): its columns */
	void (*draw)(FILE *out, const struct chart *c);
};

static void
chart_open(FILE *out, const struct chart *c, int height)
{
	fprintf(out,
	        "<figure class=\"chart\" id=\"%s\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
	        "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
	        c->id, LABEL_W + BAR_W + 120, height, LABEL_W + BAR_W + 120, height);
	esc(out, c->caption);
	fputs("\">\n", out);
}

static void
chart_close(FILE *out, const struct chart *c)
{
	fputs("</svg>\n", out);
	if (c->nser > 1)
	{
		fputs("<div class=\"legend\">", out);
		for (int s = 0; s < c->nser; s++)
		{
			fprintf(out, "<span><i style=\"background:%s\"></i>", c->colours[s]);
			esc(out, c->names[s]);
			fputs("</span>", out);
		}
		fputs("</div>\n", out);
	}
	fputs("<figcaption>", out);
	esc(out, c->caption);
	fputs("</figcaption>\n</figure>\n", out);
}

static void
svg_text(FILE *out, int x, int y, const char *anchor, const char *cls, const char *s)
{
	fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"%s\" class=\"%s\">", x, y, anchor, cls);
	esc(out, s);
	fputs("</text>\n", out);
}

static void
svg_value(FILE *out, int x, int y, const struct chart *c, double v)
{
	char b[64], t[96];

	snprintf(t, sizeof(t), "%s%s", report_html_number(b, sizeof(b), v, c->decimals, false),
	         c->unit ? c->unit : "");
	svg_text(out, x, y, "start", "v", t);
}

/* horizontal bars, one per series in each row, on a common scale */
static void
chart_grouped(FILE *out, const struct chart *c)
{
	double max = 0;
	int rowh = c->nser * (ROW_H - 6) + 10, y = 4;

	for (int k = 0; k < c->nrow * c->nser; k++)
		max = fmax(max, c->v[k]);
	chart_open(out, c, c->nrow * rowh + 8);
	for (int r = 0; r < c->nrow; r++, y += rowh)
	{
		svg_text(out, LABEL_W - 8, y + rowh / 2 + 2, "end", "l", c->labels[r]);
		for (int s = 0; s < c->nser; s++)
		{
			double v = c->v[r * c->nser + s];
			int w = max > 0 && v > 0 ? (int) lround(BAR_W * v / max) : 0, by = y + s * (ROW_H - 6);

			if (isnan(v))
			{
				svg_text(out, LABEL_W + 5, by + ROW_H - 10, "start", "v", "no data");
				continue;
			}
			fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
			        LABEL_W, by, w > 0 || v <= 0 ? w : 1, ROW_H - 8, c->colours[s]);
			svg_value(out, LABEL_W + w + 5, by + ROW_H - 10, c, v);
		}
	}
	chart_close(out, c);
}

/* horizontal bars, the series end to end, the row's total after the bar */
static void
chart_stacked(FILE *out, const struct chart *c)
{
	double max = 0;

	for (int r = 0; r < c->nrow; r++)
	{
		double t = 0;

		for (int s = 0; s < c->nser; s++)
			t += isnan(c->v[r * c->nser + s]) ? 0 : c->v[r * c->nser + s];
		max = fmax(max, t);
	}
	chart_open(out, c, c->nrow * (ROW_H + 6) + 8);
	for (int r = 0; r < c->nrow; r++)
	{
		int y = 4 + r * (ROW_H + 6);
		double x = LABEL_W, t = 0;

		svg_text(out, LABEL_W - 8, y + ROW_H - 6, "end", "l", c->labels[r]);
		for (int s = 0; s < c->nser; s++)
		{
			double v = c->v[r * c->nser + s], w = max > 0 ? BAR_W * v / max : 0;

			if (!(w > 0)) /* nothing, or no data */
				continue;
			t += v;
			fprintf(out,
			        "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\">"
			        "<title>",
			        x, y, fmax(w, 1), ROW_H, c->colours[s]);
			esc(out, c->names[s]);
			fputs(": ", out);
			num(out, v, c->decimals, c->unit);
			fputs("</title></rect>\n", out);
			x += w;
		}
		svg_value(out, (int) lround(x) + 5, y + ROW_H - 6, c, t);
	}
	chart_close(out, c);
}

/* one column per row, the series stacked upwards; the trend */
static void
chart_columns(FILE *out, const struct chart *c)
{
	const int h = 220, top = 24, base = top + h;
	double max = 0;
	int colw = c->nrow > 0 ? (LABEL_W + BAR_W) / c->nrow : 0;
	char b[64], t[96];

	if (colw > 80)
		colw = 80;
	for (int r = 0; r < c->nrow; r++)
	{
		double sum = 0;

		for (int s = 0; s < c->nser; s++)
			sum += isnan(c->v[r * c->nser + s]) ? 0 : c->v[r * c->nser + s];
		max = fmax(max, sum);
	}
	chart_open(out, c, base + 40);
	fprintf(out, "<line x1=\"40\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#888\"/>\n", base,
	        40 + colw * c->nrow, base);
	snprintf(t, sizeof(t), "%s%s", report_html_number(b, sizeof(b), max, 0, false),
	         c->unit ? c->unit : "");
	svg_text(out, 40, top - 8, "start", "v", t);
	fprintf(out,
	        "<line x1=\"40\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\" "
	        "stroke-dasharray=\"4 3\"/>\n",
	        top, 40 + colw * c->nrow, top);
	for (int r = 0; r < c->nrow; r++)
	{
		double y = base;
		int x = 40 + r * colw + 6;

		for (int s = 0; s < c->nser; s++)
		{
			double v = c->v[r * c->nser + s], hh = max > 0 ? h * v / max : 0;

			if (!(hh > 0)) /* nothing, or no data */
				continue;
			y -= hh;
			fprintf(out,
			        "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\">"
			        "<title>",
			        x, y, colw - 12, fmax(hh, 1), c->colours[s]);
			esc(out, c->labels[r]);
			fputs(", ", out);
			esc(out, c->names[s]);
			fputs(": ", out);
			num(out, v, c->decimals, c->unit);
			fputs("</title></rect>\n", out);
		}
		svg_text(out, x + (colw - 12) / 2, base + 16, "middle", "l", c->labels[r]);
	}
	chart_close(out, c);
}

/* ------------------------------------------------------------------------
 * The run's figures: the same query for the run, its predecessor and the
 * trend.  Assigned leads are the reps' holds after the run (run_reps);
 * waiting = kept - assigned; review: held as a possible opt-out, out of the
 * call lists but not removed; removed = pulled - kept - nurture - customer -
 * review, so that the states add up to the leads pulled.
 * ------------------------------------------------------------------------ */
enum
{
	F_RUN,
	F_STARTED,
	F_PULLED,
	F_ASSIGNED,
	F_WAITING,
	F_NURTURE,
	F_CUSTOMER,
	F_REVIEW,
	F_REMOVED,
	F_NEW,
	F_CHANGED,
	F_VANISHED,
	F_LABEL
};

static const char Q_FIGURES[] =
    "SELECT run_id, started, pulled, assigned, kept - assigned AS waiting, nurture, customer, "
    "review, pulled - kept - nurture - customer - review AS removed, leads_new, leads_changed, "
    "leads_vanished, "
    "'run ' || run_id AS label "
    "FROM (SELECT r.run_id, to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') "
    "AS started, coalesce(r.rows_pulled, 0) AS pulled, coalesce(r.rows_kept, 0) AS kept, "
    "least(coalesce(r.rows_kept, 0), (SELECT coalesce(sum(p.assigned), 0) "
    "FROM refinery.run_reps p WHERE p.run_id = r.run_id))::bigint AS assigned, "
    "coalesce((r.counts ->> 'nurture')::bigint, 0) AS nurture, "
    "coalesce((r.counts ->> 'customer')::bigint, 0) AS customer, "
    "coalesce((r.counts ->> 'review')::bigint, 0) AS review, "
    "r.leads_new, r.leads_changed, r.leads_vanished "
    "FROM refinery.runs r "
    "WHERE r.job = (SELECT job FROM refinery.runs WHERE run_id = $1) AND r.run_id <= $1 "
    "AND (r.status = 'committed' OR r.run_id = $1) "
    "ORDER BY r.run_id DESC LIMIT " TREND_RUNS_TEXT ") f ORDER BY run_id";

/* the states of a run's leads, in the order of F_ASSIGNED..F_REMOVED; they add up to pulled */
#define NSTATES 6
static const char *const verdict_names[NSTATES] = {"assigned", "waiting", "nurture",
                                                   "customer", "review",  "removed"};
static const char *const verdict_colours[NSTATES] = {C_ASSIGNED, C_WAITING, C_NURTURE,
                                                     C_CUSTOMER, C_REVIEW,  C_REMOVED};

static void
tile(FILE *out, const char *name, const char *colour, double v, double of, const char *note)
{
	char b[64];

	fprintf(out, "<div class=\"tile\" style=\"border-color:%s\"><b>", colour);
	fputs(report_html_number(b, sizeof(b), v, 0, false), out);
	fputs("</b><span>", out);
	esc(out, name);
	if (of > 0)
	{
		fputs(" &middot; ", out);
		num(out, 100.0 * v / of, 1, UNIT_PCT);
	}
	fputs("</span>", out);
	if (note)
	{
		fputs("<small>", out);
		esc(out, note);
		fputs("</small>", out);
	}
	fputs("</div>\n", out);
}

static void
where_leads_went(FILE *out, PGresult *fig, int me)
{
	double v[NSTATES], pulled = dv(fig, me, F_PULLED);
	const char *label[1] = {"this run"};
	struct chart c = {.id = "chart-outcome",
	                  .caption = "Leads of the run by what became of them, in leads: assigned "
	                             "to a rep, waiting (kept, no rep had capacity), nurture (kept "
	                             "out of the call lists), customer (won before), review (held "
	                             "out of the call lists as a possible opt-out until a person "
	                             "confirms), removed (black-listed, duplicate, partial or "
	                             "outlier).",
	                  .unit = UNIT_LEADS,
	                  .nrow = 1,
	                  .nser = NSTATES,
	                  .labels = label,
	                  .names = verdict_names,
	                  .colours = verdict_colours,
	                  .v = v};

	for (int s = 0; s < NSTATES; s++)
		v[s] = dv(fig, me, F_ASSIGNED + s);
	section(out, "outcome", "Where the leads went", NULL);
	fputs("<div class=\"tiles\">\n", out);
	tile(out, "pulled", "#555", pulled, 0, "from the source");
	tile(out, "assigned", C_ASSIGNED, v[0], pulled, "in a rep's queue");
	tile(out, "waiting", C_WAITING, v[1], pulled, "kept, over capacity");
	tile(out, "nurture", C_NURTURE, v[2], pulled, "not called now");
	if (v[3] > 0)
		tile(out, "customer", C_CUSTOMER, v[3], pulled, "won already");
	if (v[4] > 0)
		tile(out, "review", C_REVIEW, v[4], pulled, "a possible opt-out, not called");
	tile(out, "removed", C_REMOVED, v[5], pulled, "see the reasons below");
	fputs("</div>\n", out);
	chart_stacked(out, &c);
	fputs("</section>\n", out);
}

/* ------------------------------------------------------------------------
 * Sections drawn from query results
 * ------------------------------------------------------------------------ */

/* a table column: its head, the result column, decimals (-1: text) and unit */
struct tcol
{
	const char *head;
	int col;
	int decimals;
	const char *unit;
};

static void
no_data(FILE *out, const char *why)
{
	fputs("<p class=\"none\">", out);
	esc(out, why);
	fputs("</p>\n", out);
}

/* the rows of res as a table of cols (ended by a NULL head), last row first if asked */
static void
table_from(FILE *out, PGresult *res, const struct tcol *cols, bool last_first)
{
	int n = PQntuples(res);

	fputs("<table>\n<tr>", out);
	for (const struct tcol *t = cols; t->head; t++)
	{
		fputs("<th>", out);
		esc(out, t->head);
		fputs("</th>", out);
	}
	fputs("</tr>\n", out);
	for (int k = 0; k < n; k++)
	{
		int r = last_first ? n - 1 - k : k;

		fputs("<tr>", out);
		for (const struct tcol *t = cols; t->head; t++)
			if (t->decimals < 0)
				td_text(out, sv(res, r, t->col));
			else
				td_num(out, res, r, t->col, t->decimals, t->unit);
		fputs("</tr>\n", out);
	}
	fputs("</table>\n", out);
}

/* draw c from the rows of res: column c->label_col names each row, c->first_col.. its series */
static bool
chart_from(FILE *out, PGresult *res, struct chart *c, struct error *err)
{
	int n = PQntuples(res);
	const char **labels = calloc((size_t) n + 1, sizeof(*labels));
	double *v = calloc((size_t) (n + 1) * (size_t) c->nser, sizeof(*v));

	if (!labels || !v)
	{
		free(labels);
		free(v);
		return error_oom(err);
	}
	for (int r = 0; r < n; r++)
	{
		labels[r] = sv(res, r, c->label_col);
		for (int s = 0; s < c->nser; s++)
			v[r * c->nser + s] =
			    isnull(res, r, c->first_col + s) ? NAN : dv(res, r, c->first_col + s);
	}
	c->nrow = n;
	c->labels = labels;
	c->v = v;
	c->draw(out, c);
	c->labels = NULL;
	c->v = NULL;
	free(labels);
	free(v);
	return true;
}

/*
 * A section's body from one query: chart c, the table of cols, and chart
 * `after` (may be NULL) from the same rows; `empty` when there are none.
 */
static bool
query_section(FILE *out, PGconn *conn, const char *sql, int nparams, const char *const *p,
              struct chart *c, const struct tcol *cols, struct chart *after, const char *empty,
              struct error *err)
{
	PGresult *res = pg_query(conn, "reading the report", sql, nparams, p, err);
	bool ok;

	if (res == NULL)
		return false;
	if (PQntuples(res) == 0)
	{
		no_data(out, empty);
		PQclear(res);
		return true;
	}
	ok = chart_from(out, res, c, err);
	if (ok)
		table_from(out, res, cols, false);
	if (ok && after)
		ok = chart_from(out, res, after, err);
	PQclear(res);
	return ok;
}

/* ------------------------------------------------------------------------
 * Outcomes: what happened to the leads handed out, per cohort, against the
 * cohort's target rate.  Outcomes are read through refinery.outcome_meanings
 * (sql/010_feedback.sql: the [outcomes] map, what counts as answered), as
 * "refinery feedback" reads them; a lead counts in its cohort, or when it
 * has left the cohorts since (won, refused), in the one it had last, which
 * the feedback functions do not do; the interval is refinery.wilson's.
 * ------------------------------------------------------------------------ */
static const char Q_OUTCOMES[] =
    "WITH o AS (SELECT m.lead_id, m.meaning, m.answered, "
    "coalesce(s.cohort, (SELECT c.old_cohort FROM refinery.lead_changes c "
    "WHERE c.job = m.job AND c.lead_id = m.lead_id AND c.old_cohort IS NOT NULL "
    "ORDER BY c.run_id DESC LIMIT 1), '(none)') AS cohort "
    "FROM refinery.outcome_meanings m "
    "LEFT JOIN refinery.lead_state s ON s.job = m.job AND s.lead_id = m.lead_id "
    "WHERE m.job = (SELECT job FROM refinery.runs WHERE run_id = $1) "
    "AND m.meaning IS NOT NULL), "
    "c AS (SELECT cohort, count(DISTINCT lead_id) AS leads, "
    "count(DISTINCT lead_id) FILTER (WHERE meaning = 'won') AS won, count(*) AS calls, "
    "count(*) FILTER (WHERE answered) AS answered FROM o GROUP BY cohort) "
    "SELECT c.cohort, 100.0 * c.won / c.leads AS win_rate, 100 * t.target_rate AS target, "
    "c.leads, c.won, c.calls, c.answered, 100.0 * c.answered / c.calls AS answer_rate, "
    "100 * t.expected_rate AS expected, 100 * w.low, 100 * w.high, "
    "CASE WHEN c.leads < 30 THEN 'few leads worked (' || c.leads || ')' END "
    "FROM c LEFT JOIN refinery.cohort_summary t ON t.run_id = $1 AND t.cohort = c.cohort "
    "CROSS JOIN LATERAL refinery.wilson(c.won, c.leads) w "
    "ORDER BY t.ord NULLS LAST, c.cohort";

/* the job of run $1 */
#define JOB_OF_RUN "(SELECT job FROM refinery.runs WHERE run_id = $1)"

/*
 * The job's outcomes with a meaning, each with the run whose lists were
 * current when it was recorded: the job's last committed run before the run
 * that read it, or, not read yet, the last one begun before it was recorded.
 * (An outcome read from [outcomes] csv is recorded by the run that reads it;
 * the calls were made from the lists of the run before.)
 */
#define OUTCOMES_PER_RUN                                                                           \
	"o AS (SELECT m.lead_id, m.meaning, m.answered, (SELECT max(x.run_id) FROM refinery.runs x "   \
	"WHERE x.job = u.job AND x.status = 'committed' AND CASE WHEN u.read_by_run IS NULL "          \
	"THEN x.started_at <= u.recorded_at ELSE x.run_id < u.read_by_run END) AS run_id "             \
	"FROM refinery.outcomes u JOIN refinery.outcome_meanings m ON m.job = u.job "                  \
	"AND m.lead_id = u.lead_id AND m.rep_id = u.rep_id AND m.outcome = u.outcome AND m.at = u.at " \
	"WHERE u.job = " JOB_OF_RUN " AND m.meaning IS NOT NULL)"

/*
 * The same outcomes per run of the job's last runs, against the run's target
 * rate (its cohorts' target rates weighted by their leads).
 */
static const char Q_OUTCOME_RUNS[] =
    "WITH r AS (SELECT run_id, started_at FROM refinery.runs WHERE job = " JOB_OF_RUN
    " AND status = 'committed' AND run_id <= $1 ORDER BY run_id DESC LIMIT " TREND_RUNS_TEXT
    "), " OUTCOMES_PER_RUN ", "
    "c AS (SELECT run_id, count(DISTINCT lead_id) AS leads, "
    "count(DISTINCT lead_id) FILTER (WHERE meaning = 'won') AS won, count(*) AS calls, "
    "count(*) FILTER (WHERE answered) AS answered FROM o GROUP BY run_id), "
    "t AS (SELECT run_id, sum(leads * target_rate::numeric) / nullif(sum(leads), 0) AS target "
    "FROM refinery.run_cohorts WHERE run_id IN (SELECT run_id FROM r) GROUP BY run_id) "
    "SELECT 'run ' || r.run_id, 100.0 * c.won / nullif(c.leads, 0), 100 * t.target, r.run_id, "
    "to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), coalesce(c.calls, 0), "
    "coalesce(c.leads, 0), coalesce(c.won, 0), 100.0 * c.answered / nullif(c.calls, 0) "
    "FROM r LEFT JOIN c USING (run_id) LEFT JOIN t USING (run_id) ORDER BY r.run_id";

/*
 * The same outcomes per cohort and run, over the job's last COHORT_RUNS
 * runs: a lead counts in the cohort it had in the run whose lists were
 * current (the run's snapshot when it wrote one; else the cohort before the
 * job's next change of the lead, refinery.lead_changes.old_cohort, or, when
 * none changed it since, its state's), so a lead won since, a customer now,
 * keeps the cohort it was called in.  Columns: cohort, run, win rate, target
 * rate (run_cohorts), leads worked, won, calls, label; every cohort of the
 * runs shown has a row per run, with or without outcomes.
 */
#define COHORT_RUNS      30
#define COHORT_RUNS_TEXT "30"
static const char Q_COHORT_RUNS[] =
    "WITH r AS (SELECT run_id, job, snapshot FROM refinery.runs WHERE job = " JOB_OF_RUN
    " AND status = 'committed' AND run_id <= $1 ORDER BY run_id DESC LIMIT " COHORT_RUNS_TEXT
    "), " OUTCOMES_PER_RUN ", "
    "w AS (SELECT o.run_id, o.lead_id, o.meaning, coalesce(CASE WHEN x.found THEN x.cohort "
    "WHEN c.found THEN c.old_cohort ELSE s.cohort END, '(none)') AS cohort "
    "FROM o JOIN r USING (run_id) "
    "LEFT JOIN LATERAL (SELECT true AS found, x.cohort FROM refinery.lead_results x "
    "WHERE r.snapshot AND x.run_id = o.run_id AND x.lead_id = o.lead_id) x ON true "
    "LEFT JOIN LATERAL (SELECT true AS found, c.old_cohort FROM refinery.lead_changes c "
    "WHERE c.job = r.job AND c.lead_id = o.lead_id AND c.run_id > o.run_id "
    "ORDER BY c.run_id LIMIT 1) c ON true "
    "LEFT JOIN refinery.lead_state s ON s.job = r.job AND s.lead_id = o.lead_id), "
    "g AS (SELECT run_id, cohort, count(DISTINCT lead_id) AS leads, "
    "count(DISTINCT lead_id) FILTER (WHERE meaning = 'won') AS won, count(*) AS calls "
    "FROM w GROUP BY run_id, cohort), "
    "k AS (SELECT c.run_id, c.cohort, c.ord, c.target_rate FROM r "
    "JOIN refinery.run_cohorts c USING (run_id)) "
    "SELECT cohort, run_id, 100.0 * g.won / nullif(g.leads, 0), 100 * k.target_rate, "
    "coalesce(g.leads, 0), coalesce(g.won, 0), coalesce(g.calls, 0), 'run ' || run_id "
    "FROM k FULL JOIN g USING (run_id, cohort) "
    "ORDER BY min(k.ord) OVER (PARTITION BY cohort) NULLS LAST, cohort, run_id";

/*
 * The sections that are one query each: a chart of the rows, a table of
 * them, and maybe a second chart.  $1 is the run id.
 */
struct panel
{
	const char *id, *title, *intro;
	const char *sql;
	struct chart chart;
	struct tcol cols[14]; /* ended by a NULL head */
	const char *empty;    /* said when the query has no row */
	struct chart after;   /* drawn after the table when it has a draw function */
};

static const char *const one_leads[] = {"leads"};
static const char *const removed_colour[] = {C_REMOVED};
static const char *const cohort_names[] = {"expected", "target"};
static const char *const cohort_colours[] = {C_EXPECTED, C_TARGET};
static const char *const rep_names[] = {"assigned", "capacity"};
static const char *const rep_colours[] = {C_ASSIGNED, C_TARGET};
static const char *const win_names[] = {"won", "target"};
static const char *const win_colours[] = {C_ACTUAL, C_TARGET};
static const char *const answer_name[] = {"answer rate"};
static const char *const answer_colour[] = {C_EXPECTED};
#define NOT_STORED                                                                                 \
	"the leads of this run are no longer stored (a run without a snapshot that is not its "        \
	"job's latest)"

enum
{
	P_REMOVED,
	P_COHORTS,
	P_SOURCES,
	P_REPS,
	P_OUTCOMES,
	P_OUTCOME_RUNS
};

static const struct panel panels[] = {
    [P_REMOVED] = {"removed",
                   "Why leads were removed or set aside",
                   "Leads taken out of the call lists, per verdict and rule (nurture and review "
                   "included).",
                   "SELECT verdict || ': ' || coalesce(rule_id, '(none)'), verdict, "
                   "coalesce(rule_id, '(none)'), leads, pct_of_pulled "
                   "FROM refinery.run_funnel WHERE run_id = $1 "
                   "AND verdict NOT IN ('pulled', 'kept', 'customer') "
                   "ORDER BY leads DESC, verdict, rule_id",
                   {.id = "chart-removed",
                    .caption = "Leads removed per verdict and rule, in leads (largest first).",
                    .unit = UNIT_LEADS,
                    .nser = 1,
                    .names = one_leads,
                    .colours = removed_colour,
                    .first_col = 3,
                    .draw = chart_grouped},
                   {{"verdict", 1, -1, NULL},
                    {"rule", 2, -1, NULL},
                    {"leads", 3, 0, NULL},
                    {"of pulled", 4, 1, UNIT_PCT}},
                   "No lead was removed, or " NOT_STORED "."},
    [P_COHORTS] = {"cohorts",
                   "Cohorts against target",
                   NULL,
                   "SELECT c.cohort, c.expected_conversions, c.target_conversions, c.leads, "
                   "a.assigned, c.leads - a.assigned, c.sla_hours, 100 * c.target_rate, "
                   "100 * c.expected_rate, c.expected_vs_target, c.channel_plan "
                   "FROM refinery.cohort_summary c LEFT JOIN (SELECT l.cohort, "
                   "count(*) FILTER (WHERE l.rep_id IS NOT NULL) AS assigned "
                   "FROM refinery.results l WHERE l.run_id = $1 AND l.verdict = 'kept' "
                   "GROUP BY l.cohort) a ON a.cohort = c.cohort "
                   "WHERE c.run_id = $1 ORDER BY c.ord, c.cohort",
                   {.id = "chart-cohorts",
                    .caption = "Expected conversions (sum of the assigned leads' close "
                               "probability) against the target (leads x the cohort's target "
                               "rate), per cohort, in conversions.",
                    .decimals = 1,
                    .nser = 2,
                    .names = cohort_names,
                    .colours = cohort_colours,
                    .first_col = 1,
                    .draw = chart_grouped},
                   {{"cohort", 0, -1, NULL},
                    {"leads", 3, 0, NULL},
                    {"assigned", 4, 0, NULL},
                    {"waiting", 5, 0, NULL},
                    {"SLA", 6, 0, UNIT_HOURS},
                    {"target rate", 7, 1, UNIT_PCT},
                    {"expected rate", 8, 1, UNIT_PCT},
                    {"expected", 1, 1, NULL},
                    {"target", 2, 1, NULL},
                    {"expected - target", 9, 1, NULL},
                    {"channels", 10, -1, NULL}},
                   "The run placed no lead in a cohort."},
    [P_SOURCES] = {"sources",
                   "Per source",
                   NULL,
                   /* the states of the run's figures (NSTATES, in their order), per source */
                   "SELECT coalesce(s.source, '(none)'), coalesce(a.assigned, 0), "
                   "s.kept - coalesce(a.assigned, 0), s.nurture, coalesce(a.customer, 0), "
                   "coalesce(a.review, 0), s.pulled - s.kept - s.nurture - coalesce(a.customer, 0) "
                   "- coalesce(a.review, 0), s.pulled, s.pct_kept, s.invalid_phones, "
                   "s.mean_score_kept, s.expected_conversions "
                   "FROM refinery.source_summary s LEFT JOIN (SELECT l.source, "
                   "count(*) FILTER (WHERE l.verdict = 'kept' AND l.rep_id IS NOT NULL) "
                   "AS assigned, count(*) FILTER (WHERE l.verdict = 'customer') AS customer, "
                   "count(*) FILTER (WHERE l.verdict = 'review') AS review "
                   "FROM refinery.results l WHERE l.run_id = $1 GROUP BY l.source) a "
                   "ON a.source IS NOT DISTINCT FROM s.source "
                   "WHERE s.run_id = $1 ORDER BY s.pulled DESC, s.source",
                   {.id = "chart-sources",
                    .caption = "Leads per source, in leads: assigned, waiting, nurture, "
                               "customer, review and removed (black-listed, duplicate, partial, "
                               "outlier), largest source first; each bar adds up to the "
                               "source's leads pulled.",
                    .unit = UNIT_LEADS,
                    .nser = NSTATES,
                    .names = verdict_names,
                    .colours = verdict_colours,
                    .first_col = 1,
                    .draw = chart_stacked},
                   {{"source", 0, -1, NULL},
                    {"pulled", 7, 0, NULL},
                    {"assigned", 1, 0, NULL},
                    {"waiting", 2, 0, NULL},
                    {"nurture", 3, 0, NULL},
                    {"customer", 4, 0, NULL},
                    {"review", 5, 0, NULL},
                    {"removed", 6, 0, NULL},
                    {"kept share", 8, 1, UNIT_PCT},
                    {"invalid phones", 9, 0, NULL},
                    {"mean score (kept)", 10, 1, NULL},
                    {"expected conversions", 11, 1, NULL}},
                   "Nothing to show: " NOT_STORED "."},
    [P_REPS] = {"reps",
                "Reps",
                NULL,
                "SELECT coalesce(rep_name, rep_id::text), assigned, capacity, rep_id, "
                "CASE WHEN active THEN 'yes' ELSE 'no' END, 100 * utilisation, "
                "100 * close_rate, expected_conversions "
                "FROM refinery.rep_load WHERE run_id = $1 ORDER BY rep_id",
                {.id = "chart-reps",
                 .caption = "Leads each rep holds after the run against the rep's capacity, "
                            "in leads.",
                 .unit = UNIT_LEADS,
                 .nser = 2,
                 .names = rep_names,
                 .colours = rep_colours,
                 .first_col = 1,
                 .draw = chart_grouped},
                {{"rep", 0, -1, NULL},
                 {"id", 3, -1, NULL},
                 {"active", 4, -1, NULL},
                 {"assigned", 1, 0, NULL},
                 {"capacity", 2, 0, NULL},
                 {"utilisation", 5, 1, UNIT_PCT},
                 {"close rate", 6, 1, UNIT_PCT},
                 {"expected conversions", 7, 1, NULL}},
                "The run knew no rep."},
    [P_OUTCOMES] = {"outcomes",
                    "Outcomes against target",
                    "What the dialers and the CRM reported for the job's leads "
                    "(refinery.outcomes, all recorded so far, read through the [outcomes] map "
                    "of the job's latest run; values it does not know are left out), per the "
                    "lead's cohort (the last one it had, for a lead won or removed since). A "
                    "cohort with few leads worked says little: read the interval and the "
                    "counts beside the rates.",
                    Q_OUTCOMES,
                    {.id = "chart-wins",
                     .caption = "Leads won per lead worked (with at least one outcome) against "
                                "the cohort's target rate, per cohort, in percent.",
                     .unit = UNIT_PCT,
                     .decimals = 1,
                     .nser = 2,
                     .names = win_names,
                     .colours = win_colours,
                     .first_col = 1,
                     .draw = chart_grouped},
                    {{"cohort", 0, -1, NULL},
                     {"leads worked", 3, 0, NULL},
                     {"won", 4, 0, NULL},
                     {"win rate", 1, 1, UNIT_PCT},
                     {"target rate", 2, 1, UNIT_PCT},
                     {"expected rate", 8, 1, UNIT_PCT},
                     {"calls", 5, 0, NULL},
                     {"answered", 6, 0, NULL},
                     {"answer rate", 7, 1, UNIT_PCT},
                     {"win rate: 95% from", 9, 1, UNIT_PCT},
                     {"to", 10, 1, UNIT_PCT},
                     {"note", 11, -1, NULL}},
                    "The job has no outcomes yet.",
                    {.id = "chart-answers",
                     .caption = "Calls answered (any outcome but no answer or busy) per call, "
                                "per cohort, in percent.",
                     .unit = UNIT_PCT,
                     .decimals = 1,
                     .nser = 1,
                     .names = answer_name,
                     .colours = answer_colour,
                     .first_col = 7,
                     .draw = chart_grouped}},
    [P_OUTCOME_RUNS] = {"outcome-runs",
                        "Per run",
                        NULL,
                        Q_OUTCOME_RUNS,
                        {.id = "chart-outcome-runs",
                         .caption =
                             "Leads won per lead worked among the outcomes recorded "
                             "while each run's lists were current (from its start "
                             "until the next run read them), against the run's target rate (its "
                             "cohorts' rates weighted by their leads), in percent.",
                         .unit = UNIT_PCT,
                         .decimals = 1,
                         .nser = 2,
                         .names = win_names,
                         .colours = win_colours,
                         .first_col = 1,
                         .draw = chart_grouped},
                        {{"run", 3, -1, NULL},
                         {"lists from (UTC)", 4, -1, NULL},
                         {"calls", 5, 0, NULL},
                         {"leads worked", 6, 0, NULL},
                         {"won", 7, 0, NULL},
                         {"win rate", 1, 1, UNIT_PCT},
                         {"target rate", 2, 1, UNIT_PCT},
                         {"answer rate", 8, 1, UNIT_PCT}},
                        "No run of the job."},
};

/* a panel's query, charts and table, in a section opened by the caller */
static bool
panel_body(FILE *out, PGconn *conn, const char *const *p, const struct panel *pn, struct error *err)
{
	struct chart c = pn->chart, after = pn->after;

	return query_section(out, conn, pn->sql, 1, p, &c, pn->cols, after.draw ? &after : NULL,
	                     pn->empty, err);
}

static bool
panel(FILE *out, PGconn *conn, const char *const *p, const struct panel *pn, struct error *err)
{
	section(out, pn->id, pn->title, pn->intro);
	if (!panel_body(out, conn, p, pn, err))
		return false;
	fputs("</section>\n", out);
	return true;
}

/* the figures of this run beside its predecessor's, then the moves between states */
static bool
changes(FILE *out, PGconn *conn, const char *const *p, PGresult *fig, int me, struct error *err)
{
	static const char *const rows[] = {"pulled",   "assigned", "waiting", "nurture",
	                                   "customer", "review",   "removed"};
	static const char *const names[] = {"leads"};
	static const char *const colours[] = {C_EXPECTED};
	static const struct tcol cols[] = {
	    {"from", 1, -1, NULL}, {"to", 2, -1, NULL}, {"leads", 3, 0, NULL}, {NULL, 0, 0, NULL}};
	struct chart c = {.id = "chart-changes",
	                  .caption = "Leads that moved since the job's previous run, from one state "
	                             "to another, in leads (new: first pulled; vanished: no longer "
	                             "in the source).",
	                  .unit = UNIT_LEADS,
	                  .nser = 1,
	                  .names = names,
	                  .colours = colours,
	                  .first_col = 3,
	                  .draw = chart_grouped};
	char b[64];

	section(out, "changes", "Change since the previous run", NULL);
	if (me == 0)
	{
		no_data(out, "This is the job's first run: every lead is new.");
		fputs("</section>\n", out);
		return true;
	}
	fputs("<p class=\"intro\">Run ", out);
	esc(out, sv(fig, me, F_RUN));
	fputs(" against run ", out);
	esc(out, sv(fig, me - 1, F_RUN));
	fputs(" (", out);
	esc(out, sv(fig, me - 1, F_STARTED));
	fputs(" UTC).</p>\n<table>\n<tr><th>leads</th><th>previous run</th><th>this run</th>"
	      "<th>change</th><th>change %</th></tr>\n",
	      out);
	for (int k = 0; k < 1 + NSTATES; k++)
	{
		int col = k == 0 ? F_PULLED : F_ASSIGNED + k - 1;
		double a = dv(fig, me - 1, col), z = dv(fig, me, col);

		fprintf(out, "<tr><td>%s</td>", rows[k]);
		td_num(out, fig, me - 1, col, 0, NULL);
		td_num(out, fig, me, col, 0, NULL);
		fprintf(out, "<td class=\"n\">%s</td><td class=\"n\">",
		        report_html_number(b, sizeof(b), z - a, 0, true));
		if (a > 0)
		{
			fputs(report_html_number(b, sizeof(b), 100 * (z - a) / a, 1, true), out);
			fputs(UNIT_PCT, out);
		}
		else
			fputs("&ndash;", out);
		fputs("</td></tr>\n", out);
	}
	fputs("</table>\n<p class=\"intro\">New leads: ", out);
	num(out, dv(fig, me, F_NEW), 0, NULL);
	fputs("; changed: ", out);
	num(out, dv(fig, me, F_CHANGED), 0, NULL);
	fputs("; vanished from the source: ", out);
	num(out, dv(fig, me, F_VANISHED), 0, NULL);
	fputs(".</p>\n", out);
	/* each lead the run rewrote, as a move between the states a manager counts */
	if (!query_section(
	        out, conn,
	        "WITH c AS (SELECT CASE WHEN change = 'new' THEN 'new' "
	        "WHEN old_verdict = 'kept' AND old_rep_id IS NOT NULL THEN 'assigned' "
	        "WHEN old_verdict = 'kept' THEN 'waiting' "
	        "WHEN old_verdict IN ('blacklisted', 'duplicate', 'partial', 'outlier') "
	        "THEN 'removed (' || old_verdict || ')' "
	        "WHEN change = 'returned' THEN 'vanished' ELSE old_verdict END AS f, "
	        "CASE WHEN change = 'vanished' THEN 'vanished' "
	        "WHEN new_verdict = 'kept' AND new_rep_id IS NOT NULL THEN "
	        "CASE WHEN old_verdict = 'kept' AND old_rep_id IS NOT NULL "
	        "AND old_rep_id <> new_rep_id THEN 'assigned (another rep)' ELSE 'assigned' END "
	        "WHEN new_verdict = 'kept' THEN 'waiting' "
	        "WHEN new_verdict IN ('blacklisted', 'duplicate', 'partial', 'outlier') "
	        "THEN 'removed (' || new_verdict || ')' ELSE new_verdict END AS t "
	        "FROM refinery.lead_changes WHERE run_id = $1) "
	        "SELECT f || ' " ARROW " ' || t, f, t, count(*) FROM c WHERE f IS DISTINCT FROM t "
	        "GROUP BY f, t ORDER BY count(*) DESC, f, t LIMIT 15",
	        1, p, &c, cols, NULL,
	        "No lead moved between states (or the run rewrote every lead: a full run logs its "
	        "changes only when the job's rules stayed the same).",
	        err))
		return false;
	fputs("</section>\n", out);
	return true;
}

static bool
trend(FILE *out, PGresult *fig, struct error *err)
{
	static const struct tcol cols[] = {{"run", F_RUN, -1, NULL},
	                                   {"started (UTC)", F_STARTED, -1, NULL},
	                                   {"pulled", F_PULLED, 0, NULL},
	                                   {"assigned", F_ASSIGNED, 0, NULL},
	                                   {"waiting", F_WAITING, 0, NULL},
	                                   {"nurture", F_NURTURE, 0, NULL},
	                                   {"customer", F_CUSTOMER, 0, NULL},
	                                   {"review", F_REVIEW, 0, NULL},
	                                   {"removed", F_REMOVED, 0, NULL},
	                                   {"new", F_NEW, 0, NULL},
	                                   {"changed", F_CHANGED, 0, NULL},
	                                   {"vanished", F_VANISHED, 0, NULL},
	                                   {NULL, 0, 0, NULL}};
	struct chart c = {.id = "chart-trend",
	                  .caption = "Leads per run over the job's last " TREND_RUNS_TEXT
	                             " runs (oldest left), in leads: assigned, waiting, nurture, "
	                             "customer, review and removed.",
	                  .unit = UNIT_LEADS,
	                  .nser = NSTATES,
	                  .names = verdict_names,
	                  .colours = verdict_colours,
	                  .label_col = F_LABEL,
	                  .first_col = F_ASSIGNED,
	                  .draw = chart_columns};

	section(out, "trend", "Trend over the job's runs", NULL);
	if (!chart_from(out, fig, &c, err))
		return false;
	table_from(out, fig, cols, true);
	fputs("</section>\n", out);
	return true;
}

/*
 * Small multiples of Q_COHORT_RUNS: one panel per cohort, a column per run
 * (oldest left) for the win rate among the outcomes of the run's lists, a
 * grey tick across the column at the cohort's target rate of that run; every
 * panel on the same scale.  Then the figures in a table, folded.
 */
enum
{
	K_COHORT,
	K_RUN,
	K_RATE,
	K_TARGET,
	K_LEADS,
	K_WON,
	K_CALLS
};

#define PANEL_W    420
#define FEW_WORKED 30 /* fewer leads worked: a pale column */
#define PANEL_H    178
#define PLOT_H     110

static void
cohort_panel(FILE *out, PGresult *res, int from, int to, const int64_t *runs, int nrun, double max,
             int px, int py)
{
	const int left = px + 44, top = py + 30, base = top + PLOT_H, plotw = PANEL_W - 56;
	int colw = nrun > 0 ? plotw / nrun : plotw;
	double leads = 0, won = 0;
	char b[64], t[96];

	for (int r = from; r < to; r++)
		leads += dv(res, r, K_LEADS), won += dv(res, r, K_WON);
	if (colw > 40)
		colw = 40;
	fputs("<g class=\"panel\">\n", out);
	/* the heading goes straight to the page: no buffer cuts the name, nor the counts after it */
	fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"start\" class=\"l\">", px, py + 14);
	esc(out, sv(res, from, K_COHORT));
	fputs(": ", out);
	num(out, won, 0, NULL);
	fputs(" won of ", out);
	num(out, leads, 0, NULL);
	fputs(" worked", out);
	if (leads > 0)
	{
		fputs(" (", out);
		num(out, 100 * won / leads, 1, UNIT_PCT);
		fputs(")", out);
	}
	fputs("</text>\n", out);
	snprintf(t, sizeof(t), "%s%s", report_html_number(b, sizeof(b), max, 0, false), UNIT_PCT);
	svg_text(out, left - 4, top + 4, "end", "v", t);
	svg_text(out, left - 4, base, "end", "v", "0" UNIT_PCT);
	fprintf(out,
	        "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ccc\" "
	        "stroke-dasharray=\"4 3\"/>\n<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
	        "stroke=\"#888\"/>\n",
	        left, top, left + colw * nrun, top, left, base, left + colw * nrun, base);
	for (int r = from, k = 0; r < to; r++)
	{
		int64_t run = strtoll(sv(res, r, K_RUN), NULL, 10);
		int x;

		while (k < nrun && runs[k] != run)
			k++;
		x = left + k * colw;
		if (!isnull(res, r, K_RATE))
		{
			double h = max > 0 ? fmin(PLOT_H * dv(res, r, K_RATE) / max, PLOT_H) : 0;

			fprintf(out,
			        "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>run "
			        "%" PRId64 ": ",
			        x + 2, base - fmax(h, 1), colw > 4 ? colw - 4 : 1, fmax(h, 1),
			        dv(res, r, K_LEADS) < FEW_WORKED ? C_ACTUAL_FEW : C_ACTUAL, run);
			num(out, dv(res, r, K_WON), 0, NULL);
			fputs(" won of ", out);
			num(out, dv(res, r, K_LEADS), 0, NULL);
			fputs(" worked, ", out);
			num(out, dv(res, r, K_RATE), 1, UNIT_PCT);
			fputs("</title></rect>\n", out);
		}
		if (!isnull(res, r, K_TARGET))
		{
			double y = base - (max > 0 ? PLOT_H * dv(res, r, K_TARGET) / max : 0);

			fprintf(out,
			        "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#555\" "
			        "stroke-width=\"2\"><title>run %" PRId64 ": target ",
			        x, y, x + colw, y, run);
			num(out, dv(res, r, K_TARGET), 1, UNIT_PCT);
			fputs("</title></line>\n", out);
		}
	}
	snprintf(t, sizeof(t), "run %" PRId64, runs[0]);
	svg_text(out, left, base + 16, "start", "l", t);
	if (nrun > 1)
	{
		snprintf(t, sizeof(t), "run %" PRId64, runs[nrun - 1]);
		svg_text(out, left + colw * nrun, base + 16, "end", "l", t);
	}
	fputs("</g>\n", out);
}

static bool
cohort_runs(FILE *out, PGconn *conn, const char *const *p, struct error *err)
{
	static const char *const names[] = {"won per lead worked", "target rate"};
	static const char *const colours[] = {C_ACTUAL, "#555"};
	static const struct tcol cols[] = {
	    {"cohort", K_COHORT, -1, NULL},     {"run", K_RUN, -1, NULL},
	    {"leads worked", K_LEADS, 0, NULL}, {"won", K_WON, 0, NULL},
	    {"win rate", K_RATE, 1, UNIT_PCT},  {"target rate", K_TARGET, 1, UNIT_PCT},
	    {"calls", K_CALLS, 0, NULL},        {NULL, 0, 0, NULL}};
	struct chart c = {.id = "chart-cohort-runs",
	                  .caption = "Leads won per lead worked, per cohort (one panel each, on one "
	                             "scale) and per run of the job's last " COHORT_RUNS_TEXT
	                             " runs (oldest left), in percent: a green column for the "
	                             "outcomes recorded while the run's lists were current, a grey "
	                             "tick at the cohort's target rate in that run; no column: no "
	                             "outcome; a pale column: fewer than 30 leads worked, drawn no "
	                             "higher than the scale, which such rates do not set. Above each "
	                             "panel, the leads won and worked over "
	                             "those runs.",
	                  .nser = 2,
	                  .names = names,
	                  .colours = colours};
	PGresult *res =
	    pg_query(conn, "reading the report (cohorts per run)", Q_COHORT_RUNS, 1, p, err);
	int n, ncohort = 0, nrun = 0;
	int64_t runs[COHORT_RUNS];
	double max = 0, max_few = 0;

	if (res == NULL)
		return false;
	n = PQntuples(res);
	for (int r = 0; r < n; r++)
	{
		int64_t run = strtoll(sv(res, r, K_RUN), NULL, 10);
		int k = 0;

		if (r == 0 || strcmp(sv(res, r, K_COHORT), sv(res, r - 1, K_COHORT)) != 0)
			ncohort++;
		while (k < nrun && runs[k] < run)
			k++;
		if ((k == nrun || runs[k] != run) && nrun < COHORT_RUNS)
		{
			memmove(runs + k + 1, runs + k, sizeof(*runs) * (size_t) (nrun - k));
			runs[k] = run;
			nrun++;
		}
		max = fmax(max, dv(res, r, K_TARGET));
		if (dv(res, r, K_LEADS) >= FEW_WORKED)
			max = fmax(max, dv(res, r, K_RATE));
		else
			max_few = fmax(max_few, dv(res, r, K_RATE));
	}
	/* a rate of a handful of leads does not set the scale unless nothing else does */
	max = ceil((max > 0 ? max : max_few) / 5) * 5;
	if (n == 0 || nrun == 0)
	{
		PQclear(res);
		return true;
	}
	fputs("<h3>Per cohort and run</h3>\n<p class=\"intro\">The same outcomes per cohort and per "
	      "run, each lead in the cohort it had in the run whose lists it was called from (a "
	      "lead won since keeps that cohort), against the cohort's target rate of that run.</p>\n",
	      out);
	fprintf(out,
	        "<figure class=\"chart\" id=\"%s\">\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
	        "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
	        c.id, 2 * PANEL_W + 30, ((ncohort + 1) / 2) * PANEL_H, 2 * PANEL_W + 30,
	        ((ncohort + 1) / 2) * PANEL_H);
	esc(out, c.caption);
	fputs("\">\n", out);
	for (int r = 0, k = 0; r < n; k++)
	{
		int end = r + 1;

		while (end < n && strcmp(sv(res, end, K_COHORT), sv(res, r, K_COHORT)) == 0)
			end++;
		cohort_panel(out, res, r, end, runs, nrun, max, (k % 2) * (PANEL_W + 30),
		             (k / 2) * PANEL_H);
		r = end;
	}
	chart_close(out, &c);
	fputs("<details><summary>The figures per cohort and run</summary>\n", out);
	table_from(out, res, cols, false);
	fputs("</details>\n", out);
	PQclear(res);
	return true;
}

/* the outcome panels; the one per run only once the job has outcomes */
static bool
outcomes(FILE *out, PGconn *conn, const char *const *p, struct error *err)
{
	const struct panel *pn = &panels[P_OUTCOMES], *per_run = &panels[P_OUTCOME_RUNS];
	PGresult *res = pg_query(conn, "reading the report (outcomes)",
	                         "SELECT EXISTS (SELECT 1 FROM refinery.outcomes o "
	                         "JOIN refinery.runs r ON r.job = o.job WHERE r.run_id = $1)",
	                         1, p, err);
	bool ok, any;

	if (res == NULL)
		return false;
	any = strcmp(sv(res, 0, 0), "t") == 0;
	PQclear(res);
	section(out, pn->id, pn->title, pn->intro);
	ok = panel_body(out, conn, p, pn, err);
	if (ok && any)
	{
		fputs("<h3>", out);
		esc(out, per_run->title);
		fputs("</h3>\n", out);
		ok = panel_body(out, conn, p, per_run, err) && cohort_runs(out, conn, p, err);
	}
	fputs("</section>\n", out);
	return ok;
}

/* the run's warnings (refinery.runs.warnings), in the order the run gave them; none: nothing */
static bool
warnings(FILE *out, PGconn *conn, const char *const *p, struct error *err)
{
	PGresult *res =
	    pg_query(conn, "reading the report (warnings)",
	             "SELECT w.warning FROM refinery.runs r, "
	             "unnest(coalesce(r.warnings, '{}')) WITH ORDINALITY AS w(warning, ord) "
	             "WHERE r.run_id = $1 ORDER BY w.ord",
	             1, p, err);

	if (res == NULL)
		return false;
	if (PQntuples(res) > 0)
	{
		section(out, "warnings", "Warnings",
		        "What the run found odd in its own rule files (it ran all the same).");
		fputs("<ul class=\"warnings\">\n", out);
		for (int r = 0; r < PQntuples(res); r++)
		{
			fputs("<li>", out);
			esc(out, sv(res, r, 0));
			fputs("</li>\n", out);
		}
		fputs("</ul>\n</section>\n", out);
	}
	PQclear(res);
	return true;
}

/* ------------------------------------------------------------------------
 * The page
 * ------------------------------------------------------------------------ */
static const char STYLE[] =
    "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;"
    "color:#222}"
    "header{background:#24364b;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}"
    "header p{margin:4px 0 0;color:#c9d3df;font-size:13px}"
    "main{max-width:1000px;margin:0 auto;padding:8px 24px 32px}"
    "section{background:#fff;border-radius:6px;margin:18px 0;padding:14px 22px;"
    "box-shadow:0 1px 2px rgba(0,0,0,.12)}"
    "h2{font-size:18px;margin:4px 0 10px}h3{font-size:15px;margin:14px 0 "
    "6px}.intro,.none{color:#555;font-size:13px}"
    ".tiles{display:flex;flex-wrap:wrap;gap:10px;margin-bottom:12px}"
    ".tile{border-left:6px solid;padding:6px 12px;min-width:120px;background:#fafafa}"
    ".tile b{display:block;font-size:24px}.tile span{font-size:13px}"
    ".tile small{display:block;color:#777;font-size:11px}"
    "figure{margin:8px 0 14px}figcaption{font-size:12px;color:#555;margin-top:4px}"
    "svg text{font-size:12px;fill:#222}svg text.v{fill:#444;font-size:11px}"
    ".legend{font-size:12px}.legend span{margin-right:14px}"
    ".legend i{display:inline-block;width:11px;height:11px;margin-right:4px;"
    "vertical-align:-1px}"
    "table{border-collapse:collapse;font-size:13px;margin:6px 0}"
    "td,th{border-bottom:1px solid #e1e4e8;padding:3px 10px;text-align:left}"
    "th{background:#eef1f5;font-weight:600}td.n{text-align:right;"
    "font-variant-numeric:tabular-nums}"
    "ul.warnings{font-size:13px;color:#8a4b00;padding-left:20px}";

bool
report_html_write(PGconn *conn, int64_t run_id, FILE *out, struct error *err)
{
	char id[32];
	const char *p[1] = {id};
	PGresult *run = NULL, *fig = NULL;
	int me;
	bool ok = false;

	snprintf(id, sizeof(id), "%" PRId64, run_id);
	run = pg_query(conn, "reading the report (run)",
	               "SELECT job, status, to_char(started_at AT TIME ZONE 'UTC', "
	               "'YYYY-MM-DD HH24:MI'), round(seconds_total::numeric, 1), source_desc, "
	               "left(rules_sha256, 12), engine_version FROM refinery.runs WHERE run_id = $1",
	               1, p, err);
	if (run == NULL || PQntuples(run) != 1)
	{
		if (run)
			error_set(err, EXIT_DATA, "there is no run %s", id);
		goto out;
	}
	if ((fig = pg_query(conn, "reading the report (figures)", Q_FIGURES, 1, p, err)) == NULL)
		goto out;
	me = PQntuples(fig) - 1;
	if (me < 0)
	{
		error_set(err, EXIT_DATA, "there is no run %s", id);
		goto out;
	}
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>", out);
	fprintf(out, "Lead Refinery: job ");
	esc(out, sv(run, 0, 0));
	fprintf(out, ", run %s</title>\n<style>%s</style>\n</head><body>\n<header><h1>", id, STYLE);
	fputs("Leads of job &ldquo;", out);
	esc(out, sv(run, 0, 0));
	fprintf(out, "&rdquo;, run %s</h1>\n<p>Started ", id);
	esc(out, sv(run, 0, 2));
	fputs(" UTC &middot; ", out);
	esc(out, sv(run, 0, 3));
	fputs(" s &middot; source ", out);
	esc(out, sv(run, 0, 4));
	fputs(" &middot; rules ", out);
	esc(out, sv(run, 0, 5));
	fputs(" &middot; refinery ", out);
	esc(out, sv(run, 0, 6));
	fputs("</p></header>\n<main>\n", out);
	where_leads_went(out, fig, me);
	if (!warnings(out, conn, p, err) || !panel(out, conn, p, &panels[P_REMOVED], err) ||
	    !panel(out, conn, p, &panels[P_COHORTS], err) ||
	    !panel(out, conn, p, &panels[P_SOURCES], err) || !changes(out, conn, p, fig, me, err) ||
	    !trend(out, fig, err) || !panel(out, conn, p, &panels[P_REPS], err) ||
	    !outcomes(out, conn, p, err))
		goto out;
	fputs("</main>\n</body></html>\n", out);
	ok = true;
out:
	PQclear(fig);
	PQclear(run);
	return ok;
}
