/*
 * tap.h
 *    A minimal Test Anything Protocol emitter for the unit tests.
 *
 * Each test program includes this header, calls the ok()/is_*() macros, and
 * returns done_testing() from main.  Output goes to stdout in TAP 13 form and
 * is read by automake's tap-driver.  Header-only; state is file-static, so a
 * program must be built from one translation unit that includes it.
 */
#ifndef REFINERY_TAP_H
#define REFINERY_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count;
static int tap_failed;

static int
tap_result(int pass, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	tap_count++;
	printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!pass)
	{
		tap_failed++;
		printf("#   failed at %s line %d\n", file, line);
	}
	fflush(stdout);
	return pass;
}

#define ok(cond, ...) tap_result(!!(cond), __FILE__, __LINE__, __VA_ARGS__)

#define is_int(got, want, ...)                                                                     \
	do                                                                                             \
	{                                                                                              \
		long long g_ = (long long) (got), w_ = (long long) (want);                                 \
		if (!tap_result(g_ == w_, __FILE__, __LINE__, __VA_ARGS__))                                \
			printf("#          got: %lld\n#     expected: %lld\n", g_, w_);                        \
	} while (0)

#define is_str(got, want, ...)                                                                     \
	do                                                                                             \
	{                                                                                              \
		const char *g_ = (got), *w_ = (want);                                                      \
		int p_ = (g_ == NULL && w_ == NULL) || (g_ && w_ && strcmp(g_, w_) == 0);                  \
		if (!tap_result(p_, __FILE__, __LINE__, __VA_ARGS__))                                      \
			printf("#          got: \"%s\"\n#     expected: \"%s\"\n", g_ ? g_ : "(null)",         \
			       w_ ? w_ : "(null)");                                                            \
	} while (0)

#define is_double(got, want, eps, ...)                                                             \
	do                                                                                             \
	{                                                                                              \
		double g_ = (got), w_ = (want);                                                            \
		if (!tap_result(fabs(g_ - w_) <= (eps), __FILE__, __LINE__, __VA_ARGS__))                  \
			printf("#          got: %.9g\n#     expected: %.9g\n", g_, w_);                        \
	} while (0)

static inline void
diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static inline void
skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
}

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif /* REFINERY_TAP_H */
