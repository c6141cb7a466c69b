/*
 * log.c
 *    Printing errors and messages as text or JSON lines on stderr.
 */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"
#include "strbuf.h"

bool log_json = false;
bool log_quiet = false;

void
log_json_head(struct strbuf *sb, const char *level)
{
	char ts[40];
	time_t now = time(NULL);
	struct tm tm;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	sb_printf(sb, "{\"ts\": \"%s\", \"program\": \"refinery\", \"level\": \"%s\"", ts, level);
}

static void
json_line(const char *level, const char *msg, const char *detail, const char *hint,
          const char *sqlstate, int code)
{
	struct strbuf sb;

	sb_init(&sb);
	log_json_head(&sb, level);
	sb_puts(&sb, ", \"message\": ");
	sb_json_str(&sb, msg);
	if (detail && *detail)
	{
		sb_puts(&sb, ", \"detail\": ");
		sb_json_str(&sb, detail);
	}
	if (hint && *hint)
	{
		sb_puts(&sb, ", \"hint\": ");
		sb_json_str(&sb, hint);
	}
	if (sqlstate && *sqlstate)
	{
		sb_puts(&sb, ", \"sqlstate\": ");
		sb_json_str(&sb, sqlstate);
	}
	if (code)
		sb_printf(&sb, ", \"exit_code\": %d", code);
	sb_puts(&sb, "}\n");
	if (!sb.oom)
		fputs(sb.data, stderr);
	sb_free(&sb);
}

void
log_error(const struct error *err)
{
	if (log_json)
	{
		json_line("error", err->msg, err->detail, err->hint, err->sqlstate, (int) err->code);
		return;
	}
	fprintf(stderr, "refinery: error: %s\n", err->msg);
	if (err->detail[0])
		fprintf(stderr, "refinery: detail: %s\n", err->detail);
	if (err->hint[0])
		fprintf(stderr, "refinery: hint: %s\n", err->hint);
}

static void
vlog(const char *level, const char *fmt, va_list ap)
{
	char buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (log_json)
		json_line(level, buf, NULL, NULL, NULL, 0);
	else
		fprintf(stderr, "refinery: %s: %s\n", level, buf);
}

void
log_warning(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("warning", fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("info", fmt, ap);
	va_end(ap);
}

void
log_server(const char *severity, const char *sqlstate, const char *msg, const char *detail,
           const char *hint)
{
	char level[16];
	size_t k = 0;

	if (severity == NULL || *severity == '\0')
		severity = "NOTICE";
	if (msg == NULL)
		msg = "";
	if (log_json)
	{
		for (; severity[k] && k < sizeof(level) - 1; k++)
			level[k] = (char) tolower((unsigned char) severity[k]);
		level[k] = '\0';
		json_line(level, msg, detail, hint, sqlstate, 0);
		return;
	}
	fprintf(stderr, "%s:  %s\n", severity, msg);
	if (detail && *detail)
		fprintf(stderr, "DETAIL:  %s\n", detail);
	if (hint && *hint)
		fprintf(stderr, "HINT:  %s\n", hint);
}
