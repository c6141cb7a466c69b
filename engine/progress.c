/*
 * progress.c
 *    Progress lines while a run goes on (progress.h).
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pipeline.h"
#include "progress.h"
#include "strbuf.h"

#define TTY_INTERVAL 0.5 /* seconds between rewrites of the terminal line */

static struct
{
	bool on;  /* started and not stopped; written by the run's thread only */
	bool tty; /* the terminal form, else log lines */
	double interval;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool quit;         /* under mu: the thread is to end */
	const char *stage; /* under mu: the stage running, NULL none */
	size_t rows;       /* under mu: its rows */
	bool counting;     /* under mu: rows are those done so far (progress_done) */
	double t0;         /* under mu: when it began (pipeline_clock) */
	bool shown;        /* the terminal line holds text */
} P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/*
 * One report of the stage running (done: it has ended, after `secs`); P.mu
 * held.  A rate is given once it means something: the stage has ended, or
 * its rows are those done so far.
 */
static void
report(const char *stage, size_t rows, double secs, bool done)
{
	bool rated = done || P.counting;
	double rate = secs > 0 ? (double) rows / secs : 0;
	char tail[64] = "";

	if (P.tty)
	{
		if (rated)
			snprintf(tail, sizeof(tail), ", %.0f rows/s", rate);
		if (rows == 0 && !done)
			fprintf(stderr, "\rrefinery: %s: %.1f s\033[K", stage, secs);
		else
			fprintf(stderr, "\rrefinery: %s: %zu rows, %.1f s%s%s\033[K", stage, rows, secs, tail,
			        done ? ", done" : "");
		fflush(stderr);
		P.shown = true;
	}
	else if (log_json)
	{
		struct strbuf sb;

		sb_init(&sb);
		log_json_head(&sb, "info");
		sb_printf(&sb,
		          ", \"event\": \"progress\", \"stage\": \"%s\", \"done\": %s, \"rows\": %zu, "
		          "\"seconds\": %.3f",
		          stage, done ? "true" : "false", rows, secs);
		if (rated)
			sb_printf(&sb, ", \"rows_per_second\": %.0f", rate);
		sb_puts(&sb, "}\n");
		if (!sb.oom)
			fputs(sb.data, stderr);
		sb_free(&sb);
	}
	else
	{
		if (rated)
			snprintf(tail, sizeof(tail), " (%.0f rows/s)", rate);
		if (done)
			fprintf(stderr, "refinery: progress: %s done: %zu rows in %.3f s%s\n", stage, rows,
			        secs, tail);
		else
			fprintf(stderr, "refinery: progress: %s: %zu rows, %.1f s so far%s\n", stage, rows,
			        secs, tail);
	}
}

static void *
progress_main(void *arg)
{
	(void) arg;
	pthread_mutex_lock(&P.mu);
	while (!P.quit)
	{
		struct timespec ts;
		double wake;

		clock_gettime(CLOCK_REALTIME, &ts);
		wake = (double) ts.tv_sec + (double) ts.tv_nsec / 1e9 + P.interval;
		ts.tv_sec = (time_t) wake;
		ts.tv_nsec = (long) ((wake - (double) ts.tv_sec) * 1e9);
		pthread_cond_timedwait(&P.cv, &P.mu, &ts);
		if (!P.quit && P.stage)
			report(P.stage, P.rows, pipeline_clock() - P.t0, false);
	}
	pthread_mutex_unlock(&P.mu);
	return NULL;
}

void
progress_start(double interval, bool tty)
{
	if (P.on || (interval <= 0 && !tty))
		return;
	P.tty = interval <= 0;
	P.interval = interval > 0 ? interval : TTY_INTERVAL;
	P.quit = false;
	P.stage = NULL;
	P.shown = false;
	/* without the thread the stage lines still come, only the periodic ones do not */
	P.on = true;
	if (pthread_create(&P.thread, NULL, progress_main, NULL) != 0)
		P.quit = true;
}

/* The stage running has ended: its last report; P.mu held. */
static void
end_stage(void)
{
	if (P.stage)
		report(P.stage, P.rows, pipeline_clock() - P.t0, true);
	P.stage = NULL;
}

bool
progress_on(void)
{
	return P.on;
}

void
progress_stage(const char *name)
{
	if (!P.on)
		return;
	pthread_mutex_lock(&P.mu);
	end_stage();
	P.stage = name;
	P.rows = 0;
	P.counting = false;
	P.t0 = pipeline_clock();
	if (P.tty)
		report(P.stage, 0, 0, false);
	pthread_mutex_unlock(&P.mu);
}

void
progress_rows(size_t rows)
{
	if (!P.on)
		return;
	pthread_mutex_lock(&P.mu);
	P.rows = rows;
	if (P.tty && P.stage)
		report(P.stage, rows, pipeline_clock() - P.t0, false);
	pthread_mutex_unlock(&P.mu);
}

void
progress_done(size_t rows)
{
	if (!P.on)
		return;
	pthread_mutex_lock(&P.mu);
	P.rows = rows;
	P.counting = true;
	pthread_mutex_unlock(&P.mu);
}

void
progress_stop(bool finished)
{
	bool joined = !P.quit;

	if (!P.on)
		return;
	pthread_mutex_lock(&P.mu);
	if (finished)
		end_stage();
	P.stage = NULL;
	P.quit = true;
	pthread_cond_signal(&P.cv);
	pthread_mutex_unlock(&P.mu);
	if (joined)
		pthread_join(P.thread, NULL);
	if (P.tty && P.shown)
		fputs("\r\033[K", stderr); /* the summary line says the rest */
	P.on = false;
}
