/*
 * error.h
 *    The error value every module fills instead of printing or exiting.
 *
 * A function that can fail takes a `struct error *` as its last argument,
 * returns false (or NULL) on failure and fills it with error_set().  Only
 * main.c prints errors and chooses the exit status, from err->code.  Message
 * wording follows PostgreSQL's client programs: lower case, no final period,
 * values in double quotes; `detail` and `hint` are optional extra lines.
 */
#ifndef REFINERY_ERROR_H
#define REFINERY_ERROR_H

#include <stdbool.h>

/* Exit statuses; documented in refinery(1).  The numbers are a contract. */
enum exit_code
{
	EXIT_OK = 0,
	EXIT_INTERNAL = 1,    /* a bug or out of memory */
	EXIT_USAGE = 2,       /* bad command line */
	EXIT_RULES = 3,       /* a rule file is missing or invalid */
	EXIT_CONNECTION = 4,  /* cannot connect, or the connection was lost */
	EXIT_DATA = 5,        /* bad input data or a failed SQL statement */
	EXIT_LOCKED = 6,      /* another run holds the target's lock */
	EXIT_INTERRUPTED = 7, /* SIGINT or SIGTERM; everything rolled back */
};

struct error
{
	enum exit_code code; /* EXIT_OK when no error was set */
	char msg[1024];
	char detail[1024];
	char hint[512];
	char sqlstate[6]; /* the server's SQLSTATE when a statement failed, else "" */
};

/* Set code and message (printf-style); clears detail, hint and sqlstate. Returns false. */
bool error_set(struct error *err, enum exit_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* error_set(err, EXIT_INTERNAL, "out of memory"), the one wording. Returns false. */
bool error_oom(struct error *err);
/* Add a detail or a hint line to an error already set. Return false. */
bool error_detail(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool error_hint(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reset to "no error". */
void error_clear(struct error *err);

#endif /* REFINERY_ERROR_H */
