/*
 * replay.h
 *    The replay main() of the libFuzzer harnesses, built without -DFUZZING.
 *
 * Each file named on the command line is read whole (engine/strbuf.h) and
 * passed to the harness's LLVMFuzzerTestOneInput(), which aborts on any
 * broken promise; so a crash found by fuzzing can be replayed under gdb or
 * valgrind with the ordinary build.  Include it once, after the harness,
 * with FUZZ_NAME defined as the harness's name.
 */
#ifndef REFINERY_FUZZ_REPLAY_H
#define REFINERY_FUZZ_REPLAY_H

#ifndef FUZZING
#include <stdint.h>
#include <stdio.h>

#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
