/*
 * strbuf.h
 *    A growable byte buffer for building COPY data, JSON and SQL text.
 *
 * The buffer owns its memory; sb_free() releases it.  Appends that fail to
 * grow set `oom` and are then ignored, so a caller checks once at the end.
 */
#ifndef REFINERY_STRBUF_H
#define REFINERY_STRBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf
{
	char *data;
	size_t len;
	size_t cap;
	bool oom;
};

void sb_init(struct strbuf *sb);
void sb_free(struct strbuf *sb);
void sb_reset(struct strbuf *sb); /* keep the memory, drop the text */
void sb_putn(struct strbuf *sb, const char *s, size_t n);
void sb_puts(struct strbuf *sb, const char *s);
void sb_putc(struct strbuf *sb, char c);
void sb_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* x with two decimals, exactly as printf's "%.2f" writes it, faster for whole hundredths */
void sb_fixed2(struct strbuf *sb, double x);
/* s escaped for COPY text format (\\ \t \n \r); NULL writes \N */
void sb_copy_text(struct strbuf *sb, const char *s);
/* s as a JSON string with quotes; NULL writes null */
void sb_json_str(struct strbuf *sb, const char *s);
/* seconds since epoch as "YYYY-MM-DD HH:MM:SS" (no zone) */
void sb_time(struct strbuf *sb, int64_t t);

#endif /* REFINERY_STRBUF_H */
