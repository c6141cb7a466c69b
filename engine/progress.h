/*
 * progress.h
 *    Where a long run is: the stage that runs, its rows, the time it has
 *    taken and its rate, on standard error while the run goes on.
 *
 * Two forms.  On a terminal (standard error a TTY, neither -q nor
 * --log-format=json), one line rewritten in place ("\r") twice a second
 * and at each stage's start and end, cleared when the run is done.  For
 * logs (run --progress=SEC), one line every SEC seconds while a stage runs
 * and one as each stage ends ("refinery: progress: dedupe done: ..."), or
 * one JSON object each with --log-format=json.
 *
 * The stages say nothing themselves: pipeline_add() (pipeline.c), which
 * every stage of a run passes through (pull, state, the stages, write),
 * tells progress_stage() that a stage begins and so that the one before
 * has ended; the pull and the pipeline give the rows with progress_rows().
 * A thread of its own prints; it reads only what these calls hand it under
 * a lock, never the batch, so the run's results are the same with or
 * without it.  Before progress_start() every call is a no-op (calibrate,
 * the unit tests).
 */
#ifndef REFINERY_PROGRESS_H
#define REFINERY_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Start reporting: every `interval` seconds as log lines when interval > 0,
 * else in place on a terminal when `tty`; neither: stays off.
 */
void progress_start(double interval, bool tty);
/* Whether progress_start() has started reporting (and progress_stop() not ended it). */
bool progress_on(void);
/* Stage `name` (a static string) begins; the one running, if any, has ended. */
void progress_stage(const char *name);
/* The rows the running stage works on (a stage of the pipeline). */
void progress_rows(size_t rows);
/* The rows the running stage has read so far (the pull): its lines then give a rate. */
void progress_done(size_t rows);
/* The run is done (`finished`: its last stage ended; else it failed): stop the thread. */
void progress_stop(bool finished);

#endif /* REFINERY_PROGRESS_H */
