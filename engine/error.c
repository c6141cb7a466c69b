/*
 * error.c
 *    Filling a struct error.
 *
 * Messages are truncated to the fixed buffers rather than allocated, so that
 * an out-of-memory error can always be reported.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

bool
error_set(struct error *err, enum exit_code code, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return false;
	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	err->detail[0] = '\0';
	err->hint[0] = '\0';
	err->sqlstate[0] = '\0';
	return false;
}

bool
error_oom(struct error *err)
{
	return error_set(err, EXIT_INTERNAL, "out of memory");
}

bool
error_detail(struct error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return false;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return false;
}

bool
error_hint(struct error *err, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL)
		return false;
	va_start(ap, fmt);
	vsnprintf(err->hint, sizeof(err->hint), fmt, ap);
	va_end(ap);
	return false;
}

void
error_clear(struct error *err)
{
	if (err == NULL)
		return;
	err->code = EXIT_OK;
	err->msg[0] = err->detail[0] = err->hint[0] = err->sqlstate[0] = '\0';
}
