/*
 * strbuf.c
 *    A growable byte buffer with the escapes the engine writes.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

void
sb_init(struct strbuf *sb)
{
	memset(sb, 0, sizeof(*sb));
}

void
sb_free(struct strbuf *sb)
{
	free(sb->data);
	memset(sb, 0, sizeof(*sb));
}

void
sb_reset(struct strbuf *sb)
{
	sb->len = 0;
	if (sb->data)
		sb->data[0] = '\0';
}

static bool
sb_reserve(struct strbuf *sb, size_t more)
{
	size_t ncap;
	char *nd;

	if (sb->oom)
		return false;
	if (sb->len + more + 1 <= sb->cap)
		return true;
	ncap = sb->cap ? sb->cap : 256;
	while (ncap < sb->len + more + 1)
		ncap *= 2;
	if ((nd = realloc(sb->data, ncap)) == NULL)
	{
		sb->oom = true;
		return false;
	}
	sb->data = nd;
	sb->cap = ncap;
	return true;
}

void
sb_putn(struct strbuf *sb, const char *s, size_t n)
{
	if (!sb_reserve(sb, n))
		return;
	memcpy(sb->data + sb->len, s, n);
	sb->len += n;
	sb->data[sb->len] = '\0';
}

void
sb_puts(struct strbuf *sb, const char *s)
{
	sb_putn(sb, s, strlen(s));
}

void
sb_putc(struct strbuf *sb, char c)
{
	sb_putn(sb, &c, 1);
}

void
sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	int n;

	/* one formatting pass for the short texts that are nearly all of them */
	va_start(ap, fmt);
	n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t) n < sizeof(small))
	{
		sb_putn(sb, small, (size_t) n);
		return;
	}
	if (!sb_reserve(sb, (size_t) n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t) n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t) n;
}

void
sb_fixed2(struct strbuf *sb, double x)
{
	double h = x * 100.0, r = nearbyint(h);

	/*
	 * Within 1e-6 of a whole number of hundredths (every score and point
	 * the stages round), the exact value rounds to r / 100 as printf
	 * rounds it, so the digits of r are the answer; anything else (NaN,
	 * infinities, other fractions, huge values) goes to printf.
	 */
	if (fabs(h - r) < 1e-6 && fabs(r) < 1e15)
	{
		char tmp[24];
		int k = (int) sizeof(tmp);
		uint64_t u = (uint64_t) fabs(r);

		tmp[--k] = (char) ('0' + u % 10);
		u /= 10;
		tmp[--k] = (char) ('0' + u % 10);
		u /= 10;
		tmp[--k] = '.';
		do
		{
			tmp[--k] = (char) ('0' + u % 10);
			u /= 10;
		} while (u > 0);
		if (signbit(x))
			tmp[--k] = '-'; /* printf writes -0.00 for a negative that rounds to 0 */
		sb_putn(sb, tmp + k, sizeof(tmp) - (size_t) k);
		return;
	}
	sb_printf(sb, "%.2f", x);
}

void
sb_copy_text(struct strbuf *sb, const char *s)
{
	const char *run;

	if (s == NULL)
	{
		sb_putn(sb, "\\N", 2);
		return;
	}
	for (run = s; *s; s++)
	{
		const char *esc = NULL;

		switch (*s)
		{
			case '\\': esc = "\\\\"; break;
			case '\t': esc = "\\t"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			default: continue;
		}
		sb_putn(sb, run, (size_t) (s - run));
		sb_putn(sb, esc, 2);
		run = s + 1;
	}
	sb_putn(sb, run, (size_t) (s - run));
}

void
sb_json_str(struct strbuf *sb, const char *s)
{
	if (s == NULL)
	{
		sb_puts(sb, "null");
		return;
	}
	sb_putc(sb, '"');
	for (; *s; s++)
	{
		unsigned char c = (unsigned char) *s;

		if (c == '"' || c == '\\')
		{
			sb_putc(sb, '\\');
			sb_putc(sb, (char) c);
		}
		else if (c == '\n')
			sb_puts(sb, "\\n");
		else if (c == '\t')
			sb_puts(sb, "\\t");
		else if (c == '\r')
			sb_puts(sb, "\\r");
		else if (c < 0x20)
			sb_printf(sb, "\\u%04x", c);
		else
			sb_putc(sb, (char) c);
	}
	sb_putc(sb, '"');
}

void
sb_time(struct strbuf *sb, int64_t t)
{
	int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
	int64_t secs = t - days * 86400;
	/* civil_from_days (Howard Hinnant's method) */
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned) (z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = (int64_t) yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	unsigned d = doy - (153 * mp + 2) / 5 + 1;
	unsigned m = mp < 10 ? mp + 3 : mp - 9;

	y += m <= 2;
	sb_printf(sb, "%04lld-%02u-%02u %02d:%02d:%02d", (long long) y, m, d, (int) (secs / 3600),
	          (int) (secs / 60 % 60), (int) (secs % 60));
}
