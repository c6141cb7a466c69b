/*
 * fuzz.h
 *    What the libFuzzer harnesses share: check(), and the replay main().
 *
 * check() aborts with the harness's name when a promise is broken, which
 * libFuzzer reports as a crash.  Built without -DFUZZING, main() reads each
 * file named on the command line whole (engine/strbuf.h) and passes it to
 * the harness's LLVMFuzzerTestOneInput(), so a crash found by fuzzing can be
 * replayed under gdb or valgrind with the ordinary build.  Include it once,
 * before the harness's code, with FUZZ_NAME defined as the harness's name.
 */
#ifndef REFINERY_FUZZ_H
#define REFINERY_FUZZ_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool cond, const char *what)
{
	if (!cond)
	{
		fprintf(stderr, "%s: broken promise: %s\n", FUZZ_NAME, what);
		abort();
	}
}

#ifndef FUZZING

int
main(int argc, char **argv)
{
	int n = 0;

	for (int i = 1; i < argc; i++)
	{
		FILE *fp = fopen(argv[i], "rb");
		struct strbuf sb;
		char buf[65536];
		size_t got;

		if (fp == NULL)
		{
			fprintf(stderr, "%s: could not open file \"%s\"\n", FUZZ_NAME, argv[i]);
			return 1;
		}
		sb_init(&sb);
		while ((got = fread(buf, 1, sizeof(buf), fp)) > 0)
			sb_putn(&sb, buf, got);
		fclose(fp);
		LLVMFuzzerTestOneInput((const uint8_t *) (sb.data ? sb.data : ""), sb.len);
		sb_free(&sb);
		n++;
	}
	printf("%s: %d inputs replayed, no broken promise\n", FUZZ_NAME, n);
	return 0;
}
#endif

#endif
