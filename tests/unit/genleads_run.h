/*
 * genleads_run.h
 *    Test-only: run the project's data generator, fixtures/genleads.
 *
 * make check exports GENLEADS, the generator's path; a test run by hand
 * falls back to $top_builddir/fixtures/genleads, then to fixtures/genleads
 * under the working directory.  genleads_run() makes a new temporary
 * folder, has the generator write leads.csv, truth.csv, reps.csv and
 * rep_source_stats.csv into it, and returns the folder in dir; the caller
 * removes it with genleads_cleanup().  Header-only (static functions) so
 * each test program stays one translation unit.
 */
#ifndef REFINERY_GENLEADS_RUN_H
#define REFINERY_GENLEADS_RUN_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The generator's path into buf; false when no executable is found. */
static bool
genleads_path(char *buf, size_t size)
{
	const char *env = getenv("GENLEADS");
	const char *top = getenv("top_builddir");

	if (env != NULL && env[0] != '\0')
		snprintf(buf, size, "%s", env);
	else if (top != NULL && top[0] != '\0')
		snprintf(buf, size, "%s/fixtures/genleads", top);
	else
		snprintf(buf, size, "fixtures/genleads");
	return access(buf, X_OK) == 0;
}

/*
 * Generate rows leads with seed (and nreps reps, 0 = the generator's
 * default) into a new folder under $TMPDIR or /tmp, returned in dir (at
 * least 64 bytes).  False, with the reason in why, when the generator is
 * missing or fails.
 */
static bool
genleads_run(long rows, long seed, int nreps, char *dir, size_t size, char *why, size_t why_size)
{
	char gen[4000], cmd[8400], reps[32] = "";
	const char *tmp = getenv("TMPDIR");

	if (!genleads_path(gen, sizeof(gen)))
	{
		snprintf(why, why_size, "no generator at \"%s\" (set GENLEADS)", gen);
		return false;
	}
	snprintf(dir, size, "%s/genleads.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL)
	{
		snprintf(why, why_size, "could not make a temporary folder");
		return false;
	}
	if (nreps > 0)
		snprintf(reps, sizeof(reps), " --nreps %d", nreps);
	snprintf(cmd, sizeof(cmd), "'%s' --rows %ld --seed %ld%s --out-dir '%s' >/dev/null", gen, rows,
	         seed, reps, dir);
	if (system(cmd) != 0)
	{
		snprintf(why, why_size, "\"%s\" --rows %ld --seed %ld failed", gen, rows, seed);
		return false;
	}
	return true;
}

/* Remove the files genleads_run() wrote and their folder. */
static void
genleads_cleanup(const char *dir)
{
	static const char *const files[] = {"leads.csv", "truth.csv", "reps.csv",
	                                    "rep_source_stats.csv", NULL};
	char path[4400];

	for (int k = 0; files[k]; k++)
	{
		snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
		unlink(path);
	}
	rmdir(dir);
}

#endif /* REFINERY_GENLEADS_RUN_H */
