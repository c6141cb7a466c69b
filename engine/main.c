/*
 * main.c
 *    The refinery command: options, sub-commands, exit statuses.
 *
 * This is the only file that exits, and with cmd_*.c and log.c the only
 * code that prints.  Options follow PostgreSQL's client programs (-d takes a
 * database name, a conninfo string or a URI; -h -p -U -w -W; the PG*
 * variables, ~/.pgpass and service files work because libpq reads them).
 * A password written into -d is wiped from the argument vector once copied,
 * so it does not stay visible in the process list.  SIGPIPE is ignored: a
 * reader that went away shows as a failed write of standard output, checked
 * once at the end (close_stdout), never as a death by signal after a commit.
 * The command table says which options each command takes: any other is
 * refused with exit status 2 before the command does anything, and
 * "refinery COMMAND --help" lists the command's options and no others.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cmd.h"
#include "fault.h"
#include "log.h"
#include "migrate.h"
#include "outfile.h"
#include "pg.h"
#include "pipeline.h"
#include "pull.h"
#include "ruleset.h"
#include "writeback.h"

/*
 * What each command takes.  An option is one bit; the general options
 * (--log-format, -q, -V, --help) go with every command.  The command table
 * says which options a command takes, so a command refuses the others
 * instead of ignoring them, and its --help lists only its own.
 */
#define OPT_RULES        (UINT64_C(1) << 0) /* -c */
#define OPT_DRY_RUN      (UINT64_C(1) << 1)
#define OPT_JOBS         (UINT64_C(1) << 2) /* -j: threads */
#define OPT_OUTPUT       (UINT64_C(1) << 3)
#define OPT_FORCE        (UINT64_C(1) << 4)
#define OPT_JOB          (UINT64_C(1) << 5) /* --job: a job's name */
#define OPT_RUN          (UINT64_C(1) << 6)
#define OPT_CSV          (UINT64_C(1) << 7)
#define OPT_VERDICT      (UINT64_C(1) << 8)
#define OPT_REP          (UINT64_C(1) << 9)
#define OPT_HTML         (UINT64_C(1) << 10)
#define OPT_TABLE        (UINT64_C(1) << 11)
#define OPT_REJECT       (UINT64_C(1) << 12)
#define OPT_PHONE        (UINT64_C(1) << 13)
#define OPT_EMAIL        (UINT64_C(1) << 14)
#define OPT_LEAD_ID      (UINT64_C(1) << 15)
#define OPT_CHECK        (UINT64_C(1) << 16)
#define OPT_MAX_AGE      (UINT64_C(1) << 17)
#define OPT_KEEP         (UINT64_C(1) << 18)
#define OPT_FILE_MODE    (UINT64_C(1) << 19)
#define OPT_CONN         (UINT64_C(1) << 20) /* -d -h -p -U -w -W */
#define OPT_FULL         (UINT64_C(1) << 21)
#define OPT_FORMAT       (UINT64_C(1) << 22)
#define OPT_COHORT       (UINT64_C(1) << 23)
#define OPT_DEFAULTS     (UINT64_C(1) << 24) /* check-rules --defaults */
#define OPT_MAX_REJECTS  (UINT64_C(1) << 25)
#define OPT_TRUNCATE     (UINT64_C(1) << 26)
#define OPT_SINCE        (UINT64_C(1) << 32) /* feedback --since */
#define OPT_CLAIMS       (UINT64_C(1) << 33) /* export --claims */
#define OPT_SUPPLIER     (UINT64_C(1) << 34) /* export --claims --supplier */
#define OPT_PROGRESS     (UINT64_C(1) << 38) /* run --progress=SEC */
#define OPT_VERBOSE      (UINT64_C(1) << 48) /* explain --verbose */
#define OPT_KEEP_COHORTS (UINT64_C(1) << 42) /* calibrate --keep-cohorts */
#define OPT_NO_SHIPPED   (UINT64_C(1) << 43) /* calibrate --no-shipped */
#define OPT_TENANT       (UINT64_C(1) << 50) /* run --tenant */
#define OPT_TENANTS      (UINT64_C(1) << 51) /* run --tenants */
#define OPT_GENERAL      (UINT64_C(1) << 63) /* the last bit: new options take the next free one below */

/* what the commands that read a committed run (export, explain, report) share */
#define OPT_READ (OPT_CONN | OPT_JOB | OPT_RUN)

static const struct command
{
	const char *name;
	bool (*fn)(const struct cmd_opts *o, struct error *err);
	uint64_t options;  /* OPT_* bits besides OPT_GENERAL */
	const char *usage; /* what follows "refinery NAME" */
	const char *summary;
} commands[] = {
    {"run", cmd_run,
     OPT_RULES | OPT_DRY_RUN | OPT_JOBS | OPT_FORCE | OPT_FULL | OPT_PROGRESS | OPT_CONN |
         OPT_TENANT | OPT_TENANTS,
     "[OPTION]...", "pull leads, refine, score, assign reps, write the run back"},
    {"init-db", cmd_init_db, OPT_CONN, "[OPTION]...", "create or upgrade the refinery schema"},
    {"check-rules", cmd_check_rules, OPT_RULES | OPT_DEFAULTS, "[OPTION]... [FILE]...",
     "check rule files without connecting"},
    {"export", cmd_export,
     OPT_READ | OPT_CSV | OPT_VERDICT | OPT_REP | OPT_COHORT | OPT_FORMAT | OPT_FILE_MODE |
         OPT_CLAIMS | OPT_SUPPLIER,
     "--csv=FILE [OPTION]...", "write a run's results (or refund claims) to a CSV file"},
    {"explain", cmd_explain, OPT_READ | OPT_VERBOSE, "[OPTION]... LEAD_ID",
     "show why one lead got its verdict, score and rep"},
    {"report", cmd_report, OPT_READ | OPT_HTML | OPT_FILE_MODE, "[OPTION]...",
     "summarise a run (funnel, cohorts, reps; --html for a file)"},
    {"import", cmd_import,
     OPT_CONN | OPT_CSV | OPT_TABLE | OPT_REJECT | OPT_MAX_REJECTS | OPT_TRUNCATE | OPT_FILE_MODE,
     "--csv=FILE --table=NAME [OPTION]...", "load a CSV file of leads into a table"},
    {"calibrate", cmd_calibrate,
     OPT_RULES | OPT_JOBS | OPT_OUTPUT | OPT_FILE_MODE | OPT_CONN | OPT_JOB | OPT_KEEP_COHORTS |
         OPT_NO_SHIPPED,
     "[OPTION]...", "fit scoring points from historical outcomes"},
    {"forget", cmd_forget,
     OPT_RULES | OPT_DRY_RUN | OPT_PHONE | OPT_EMAIL | OPT_LEAD_ID | OPT_JOB | OPT_CONN,
     "[OPTION]...", "erase a person on request; never import them again"},
    {"jobs", cmd_jobs, OPT_CONN | OPT_JOB | OPT_CHECK | OPT_MAX_AGE, "[OPTION]...",
     "list the jobs and their last committed runs"},
    {"revert", cmd_revert, OPT_CONN | OPT_JOB | OPT_RUN, "--run=ID [OPTION]...",
     "undo a job's latest run (its changes to the job's state)"},
    {"feedback", cmd_feedback, OPT_CONN | OPT_JOB | OPT_SINCE | OPT_CSV | OPT_FILE_MODE,
     "[OPTION]...", "conversion against targets, answer rates, cost per source"},
    {"prune", cmd_prune, OPT_CONN | OPT_RULES | OPT_JOB | OPT_KEEP, "[OPTION]...",
     "drop a job's old runs now ([output] keep_runs or --keep)"},
};

#define NCOMMANDS ((int) (sizeof(commands) / sizeof(commands[0])))

/*
 * The help line of each option, in the order --help shows them.  A line
 * naming a command is that command's own wording and comes before the
 * general line (command NULL) of the same option.
 */
static const struct
{
	uint64_t bit;
	const char *command; /* NULL: every command that takes the option */
	const char *text;
} option_help[] = {
    {OPT_RULES, "check-rules",
     "  -c, --rules=FILE       rule file, as are the FILE arguments (later wins)"},
    {OPT_DEFAULTS, NULL,
     "      --defaults         print the compiled-in default.ini (every section\n"
     "                         and key, with its default) and exit"},
    {OPT_VERBOSE, NULL,
     "      --verbose          after the story, every field of the lead's row in\n"
     "                         refinery.lead_explain"},
    {OPT_RULES, "forget",
     "  -c, --rules=FILE       rule file: its numbering plan, e-mail rules, [job]\n"
     "                         name and [output] lock_timeout_ms"},
    {OPT_RULES, "prune",
     "  -c, --rules=FILE       rule file: its [job] name and [output] keep_runs"},
    {OPT_RULES, NULL, "  -c, --rules=FILE       rule file; repeat to layer files (later wins)"},
    {OPT_DRY_RUN, "forget", "  -n, --dry-run          erase, print what went, then roll back"},
    {OPT_DRY_RUN, NULL, "  -n, --dry-run          do everything, print the funnel, roll back"},
    {OPT_JOBS, NULL, "  -j, --jobs=N           worker threads (default: all cores)"},
    {OPT_OUTPUT, NULL,
     "  -o, --output=FILE      write the fitted rules here (else standard output)"},
    {OPT_FORCE, NULL, "      --force            commit even when the [job] guards refuse the run"},
    {OPT_FULL, NULL, "      --full             re-resolve every lead and rewrite its state row"},
    {OPT_PROGRESS, NULL,
     "      --progress=SEC     a progress line every SEC s and as each stage ends"},
    {OPT_TENANT, NULL,
     "      --tenant=ID        refine one tenant ([source] tenant_column) as job\n"
     "                         NAME@ID, on its server of [cluster] map"},
    {OPT_TENANTS, NULL,
     "      --tenants=FILE|QUERY  each tenant of FILE (one a line) or of QUERY's\n"
     "                         first column in turn, each in its own transaction"},
    {OPT_JOB, "jobs", "      --job=NAME         only this job"},
    {OPT_JOB, "revert", "      --job=NAME         the run's job (else the only one)"},
    {OPT_RUN, "revert", "      --run=ID           the run to undo: the job's latest committed"},
    {OPT_JOB, "calibrate",
     "      --job=NAME         fit from this job's outcomes (refinery.outcomes)"},
    {OPT_KEEP_COHORTS, NULL,
     "      --keep-cohorts     keep the cohorts' bounds; print how their shares move"},
    {OPT_NO_SHIPPED, NULL,
     "      --no-shipped       switch the shipped scoring parameters off, fit yours"},
    {OPT_JOB, "prune",
     "      --job=NAME         the job to prune (else the rules' or the only one)"},
    {OPT_JOB, "forget",
     "      --job=NAME         the job of --lead-id's lead (else the rules' [job]\n"
     "                         name, or the only job with a lead of that id)"},
    {OPT_JOB, NULL,
     "      --job=NAME         the job to read (needed when several jobs have runs)"},
    {OPT_RUN, NULL, "      --run=ID           run to read (default: the job's latest committed)"},
    {OPT_SINCE, NULL, "      --since=DATE       only outcomes at or after DATE (e.g. 2026-11-01)"},
    {OPT_CSV, "import", "      --csv=FILE         CSV file to read (header row required)"},
    {OPT_CSV, "feedback",
     "      --csv=FILE         write the conversion rows as CSV instead of tables"},
    {OPT_CSV, NULL, "      --csv=FILE         CSV file to write (\"-\" for standard output)"},
    {OPT_VERDICT, NULL, "      --verdict=V        only leads with this verdict"},
    {OPT_REP, NULL, "      --rep=ID           only this rep's call list, in call order"},
    {OPT_COHORT, NULL, "      --cohort=NAME      only leads of this cohort"},
    {OPT_FORMAT, NULL,
     "      --format=FMT       raw (default: every result column), dialer (the call\n"
     "                         list, one row per number) or sheet (for spreadsheets)"},
    {OPT_CLAIMS, NULL,
     "      --claims           refund claims: leads of --supplier that proved\n"
     "                         invalid within its claim window, with evidence"},
    {OPT_SUPPLIER, NULL, "      --supplier=NAME    with --claims: a [supplier.NAME] of the rules"},
    {OPT_HTML, NULL,
     "      --html=FILE        also write the run's dashboard as an HTML page\n"
     "                         (\"-\": the page alone on standard output, no tables)"},
    {OPT_TABLE, NULL,
     "      --table=NAME       target table (created with text columns if absent)"},
    {OPT_REJECT, NULL,
     "      --reject=FILE      set rows the file or the server rejects aside here,\n"
     "                         with line and reason, and load the rest"},
    {OPT_MAX_REJECTS, NULL,
     "      --max-rejects=N    with --reject: fail, loading nothing, past N rejects"},
    {OPT_TRUNCATE, NULL, "      --truncate         empty the table first, in the same transaction"},
    {OPT_PHONE, NULL, "      --phone=NUMBER     the person's phone number"},
    {OPT_EMAIL, NULL, "      --email=ADDRESS    the person's e-mail address"},
    {OPT_LEAD_ID, NULL, "      --lead-id=ID       one of the person's leads, of one job (--job)"},
    {OPT_CHECK, NULL, "      --check            fail (status 5) when a job is overdue"},
    {OPT_MAX_AGE, NULL,
     "      --max-age=AGE      with --check: overdue when its last run is older"},
    {OPT_KEEP, NULL, "      --keep=N           keep the newest N committed runs of the job"},
    {OPT_FILE_MODE, NULL,
     "      --file-mode=MODE   permission bits of the files written, in octal\n"
     "                         (default: [output] file_mode, 0600 as shipped)"},
};

static const char *const connection_help =
    "Connection options:\n"
    "  -d, --dbname=DBNAME    database name, conninfo string or URI\n"
    "  -h, --host=HOSTNAME    database server host or socket directory\n"
    "  -p, --port=PORT        database server port\n"
    "  -U, --username=NAME    database user name\n"
    "  -w, --no-password      never prompt for a password\n"
    "  -W, --password         force a password prompt\n";

static const char *const general_help =
    "General options:\n"
    "      --log-format=FMT   text (default) or json: one object per line\n"
    "  -q, --quiet            no summary line on success\n"
    "  -V, --version          output version information, then exit\n"
    "  -?, --help             show this help, then exit\n";

static const struct command *
find_command(const char *name)
{
	for (int k = 0; k < NCOMMANDS; k++)
		if (strcmp(commands[k].name, name) == 0)
			return &commands[k];
	return NULL;
}

static void
usage(FILE *out)
{
	fprintf(out, "refinery turns historical sales leads into worked, prioritised call lists.\n"
	             "\n"
	             "Usage:\n"
	             "  refinery COMMAND [OPTION]...\n"
	             "\n"
	             "Commands:\n");
	for (int k = 0; k < NCOMMANDS; k++)
		fprintf(out, "  %-12s %s\n", commands[k].name, commands[k].summary);
	fprintf(out,
	        "\n"
	        "\"refinery COMMAND --help\" shows the options a command takes.\n"
	        "\n"
	        "%s\n%s\n"
	        "Stages of a run, in order:\n",
	        connection_help, general_help);
	/* pull, state, the stages of stagelist.h, write; wrapped to fit 80 columns */
	for (int k = -2, col = 0;; k++)
	{
		const char *name = k == -2 ? "pull" : k == -1 ? "state" : pipeline_stage_name(k);
		bool last = name == NULL;

		if (last)
			name = "write";
		if (col > 0 && col + 1 + (int) strlen(name) + 1 > 79)
		{
			fprintf(out, "\n");
			col = 0;
		}
		col += fprintf(out, "%s%s%s", col == 0 ? "  " : " ", name, last ? "." : ",");
		if (last)
			break;
	}
	fprintf(out, "\n"
	             "\n"
	             "Exit status: 0 success, 1 internal error, 2 usage, 3 rules, 4 connection,\n"
	             "5 data or SQL error (also: a [job] guard refused the run; jobs --check\n"
	             "found an overdue job), 6 another run of the job holds its lease, 7 interrupted.\n"
	             "See refinery(1) for the rule files and the refinery schema.\n");
}

/* One command's help: its usage and the options it takes, no others. */
static void
command_usage(const struct command *c, FILE *out)
{
	uint64_t shown = 0;

	fprintf(out,
	        "refinery %s: %s.\n"
	        "\n"
	        "Usage:\n"
	        "  refinery %s %s\n",
	        c->name, c->summary, c->name, c->usage);
	if (c->options & ~OPT_CONN)
	{
		fprintf(out, "\nOptions:\n");
		for (size_t k = 0; k < sizeof(option_help) / sizeof(option_help[0]); k++)
		{
			uint64_t bit = option_help[k].bit;

			if (!(c->options & bit) || (shown & bit) ||
			    (option_help[k].command && strcmp(option_help[k].command, c->name) != 0))
				continue;
			fprintf(out, "%s\n", option_help[k].text);
			shown |= bit;
		}
	}
	if (c->options & OPT_CONN)
		fprintf(out, "\n%s", connection_help);
	fprintf(out, "\n%s\nSee refinery(1) for the command's description.\n", general_help);
}

static int
fail(const struct error *err)
{
	log_error(err);
	return err->code == EXIT_OK ? EXIT_INTERNAL : (int) err->code;
}

/* A usage error; `c` is the command, for the help it points to (NULL: none yet). */
static int
bad_usage(const struct command *c, const char *fmt, const char *arg)
{
	fprintf(stderr, "refinery: error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	if (c)
		fprintf(stderr, "Try \"refinery %s --help\" for more information.\n", c->name);
	else
		fprintf(stderr, "Try \"refinery --help\" for more information.\n");
	return EXIT_USAGE;
}

/* Wipe a secret-bearing argument in place once it has been copied. */
static char *
take_conninfo(char *arg)
{
	char *copy = strdup(arg);

	if (copy && (strstr(arg, "password") != NULL || strstr(arg, "://") != NULL))
		memset(arg, 'x', strlen(arg));
	return copy;
}

/* getopt_long's value of each option without a short form */
enum
{
	LONG_LOG_FORMAT = 256,
	LONG_HELP,
	LONG_RUN,
	LONG_CSV,
	LONG_VERDICT,
	LONG_REP,
	LONG_HTML,
	LONG_TABLE,
	LONG_REJECT,
	LONG_MAX_REJECTS,
	LONG_TRUNCATE,
	LONG_FILE_MODE,
	LONG_PHONE,
	LONG_EMAIL,
	LONG_LEAD_ID,
	LONG_JOB,
	LONG_FORCE,
	LONG_CHECK,
	LONG_MAX_AGE,
	LONG_KEEP,
	LONG_FULL,
	LONG_FORMAT,
	LONG_COHORT,
	LONG_DEFAULTS,
	LONG_SINCE,
	LONG_CLAIMS,
	LONG_SUPPLIER,
	LONG_PROGRESS,
	LONG_VERBOSE,
	LONG_KEEP_COHORTS,
	LONG_NO_SHIPPED,
	LONG_TENANT,
	LONG_TENANTS
};

/* Every option, and which OPT_* bit of the command table it is. */
static const struct
{
	struct option opt;
	uint64_t bit;
} options[] = {
    {{"rules", required_argument, NULL, 'c'}, OPT_RULES},
    {{"dry-run", no_argument, NULL, 'n'}, OPT_DRY_RUN},
    {{"jobs", required_argument, NULL, 'j'}, OPT_JOBS},
    {{"output", required_argument, NULL, 'o'}, OPT_OUTPUT},
    {{"force", no_argument, NULL, LONG_FORCE}, OPT_FORCE},
    {{"full", no_argument, NULL, LONG_FULL}, OPT_FULL},
    {{"defaults", no_argument, NULL, LONG_DEFAULTS}, OPT_DEFAULTS},
    {{"progress", required_argument, NULL, LONG_PROGRESS}, OPT_PROGRESS},
    {{"verbose", no_argument, NULL, LONG_VERBOSE}, OPT_VERBOSE},
    {{"job", required_argument, NULL, LONG_JOB}, OPT_JOB},
    {{"run", required_argument, NULL, LONG_RUN}, OPT_RUN},
    {{"csv", required_argument, NULL, LONG_CSV}, OPT_CSV},
    {{"verdict", required_argument, NULL, LONG_VERDICT}, OPT_VERDICT},
    {{"rep", required_argument, NULL, LONG_REP}, OPT_REP},
    {{"cohort", required_argument, NULL, LONG_COHORT}, OPT_COHORT},
    {{"format", required_argument, NULL, LONG_FORMAT}, OPT_FORMAT},
    {{"html", required_argument, NULL, LONG_HTML}, OPT_HTML},
    {{"table", required_argument, NULL, LONG_TABLE}, OPT_TABLE},
    {{"reject", required_argument, NULL, LONG_REJECT}, OPT_REJECT},
    {{"max-rejects", required_argument, NULL, LONG_MAX_REJECTS}, OPT_MAX_REJECTS},
    {{"truncate", no_argument, NULL, LONG_TRUNCATE}, OPT_TRUNCATE},
    {{"keep-cohorts", no_argument, NULL, LONG_KEEP_COHORTS}, OPT_KEEP_COHORTS},
    {{"no-shipped", no_argument, NULL, LONG_NO_SHIPPED}, OPT_NO_SHIPPED},
    {{"phone", required_argument, NULL, LONG_PHONE}, OPT_PHONE},
    {{"email", required_argument, NULL, LONG_EMAIL}, OPT_EMAIL},
    {{"lead-id", required_argument, NULL, LONG_LEAD_ID}, OPT_LEAD_ID},
    {{"check", no_argument, NULL, LONG_CHECK}, OPT_CHECK},
    {{"max-age", required_argument, NULL, LONG_MAX_AGE}, OPT_MAX_AGE},
    {{"keep", required_argument, NULL, LONG_KEEP}, OPT_KEEP},
    {{"file-mode", required_argument, NULL, LONG_FILE_MODE}, OPT_FILE_MODE},
    {{"since", required_argument, NULL, LONG_SINCE}, OPT_SINCE},
    {{"claims", no_argument, NULL, LONG_CLAIMS}, OPT_CLAIMS},
    {{"supplier", required_argument, NULL, LONG_SUPPLIER}, OPT_SUPPLIER},
    {{"tenant", required_argument, NULL, LONG_TENANT}, OPT_TENANT},
    {{"tenants", required_argument, NULL, LONG_TENANTS}, OPT_TENANTS},
    {{"dbname", required_argument, NULL, 'd'}, OPT_CONN},
    {{"host", required_argument, NULL, 'h'}, OPT_CONN},
    {{"port", required_argument, NULL, 'p'}, OPT_CONN},
    {{"username", required_argument, NULL, 'U'}, OPT_CONN},
    {{"no-password", no_argument, NULL, 'w'}, OPT_CONN},
    {{"password", no_argument, NULL, 'W'}, OPT_CONN},
    {{"log-format", required_argument, NULL, LONG_LOG_FORMAT}, OPT_GENERAL},
    {{"quiet", no_argument, NULL, 'q'}, OPT_GENERAL},
    {{"version", no_argument, NULL, 'V'}, OPT_GENERAL},
    {{"help", no_argument, NULL, LONG_HELP}, OPT_GENERAL},
};

#define NOPTIONS ((int) (sizeof(options) / sizeof(options[0])))

/* The entry of options[] that getopt_long returned `val` for; NULL for none. */
static const struct option *
option_of(int val, uint64_t *bit)
{
	for (int k = 0; k < NOPTIONS; k++)
		if (options[k].opt.val == val)
		{
			*bit = options[k].bit;
			return &options[k].opt;
		}
	return NULL;
}

static void
print_version(void)
{
	printf("refinery %s\n", PACKAGE_VERSION);
	if (FAULT_COMPILED_IN)
		printf("built with fault injection (REFINERY_FAULT): for tests only\n");
}

/*
 * Everything main() does once the options' storage exists; every return
 * path leaves the freeing to main().
 */
static int
dispatch(int argc, char **argv, struct cmd_opts *o)
{
	struct option long_opts[NOPTIONS + 1];
	const struct command *cmd;
	int c;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage(stdout);
		return EXIT_OK;
	}
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0))
	{
		print_version();
		return EXIT_OK;
	}
	if (argc < 2 || argv[1][0] == '-')
		return bad_usage(NULL, "%s", argc < 2 ? "no command given" : "the command must come first");
	if ((cmd = find_command(argv[1])) == NULL)
		return bad_usage(NULL, "unknown command \"%s\"", argv[1]);
	/* getopt_long reports an unknown option as '?': find -? first */
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "-?") == 0)
		{
			command_usage(cmd, stdout);
			return EXIT_OK;
		}
	for (int k = 0; k < NOPTIONS; k++)
		long_opts[k] = options[k].opt;
	memset(&long_opts[NOPTIONS], 0, sizeof(long_opts[NOPTIONS]));
	optind = 2;
	while ((c = getopt_long(argc, argv, "c:nj:d:h:p:U:wWqVo:", long_opts, NULL)) != -1)
	{
		const struct option *opt;
		uint64_t bit = 0;

		if ((opt = option_of(c, &bit)) == NULL)
		{
			/* getopt_long has said what is wrong */
			fprintf(stderr, "Try \"refinery %s --help\" for more information.\n", cmd->name);
			return EXIT_USAGE;
		}
		if (bit != OPT_GENERAL && !(cmd->options & bit))
		{
			fprintf(stderr, "refinery: error: %s does not take option \"--%s\"\n", cmd->name,
			        opt->name);
			if (c == LONG_JOB && strcmp(cmd->name, "run") == 0)
				/* the job is part of the rules, and so of the run's rules_sha256 */
				fprintf(stderr, "hint: Set \"[job]\" and \"name = %s\" in a rules file.\n", optarg);
			fprintf(stderr, "Try \"refinery %s --help\" for the options it takes.\n", cmd->name);
			return EXIT_USAGE;
		}
		switch (c)
		{
			case 'c': o->files[o->nfiles++] = optarg; break;
			case 'n': o->dry_run = true; break;
			case 'j':
			{
				char *end;
				long j = strtol(optarg, &end, 10);

				if (*end || j < 1 || j > 1024)
					return bad_usage(cmd, "invalid number of jobs: \"%s\"", optarg);
				o->jobs = (int) j;
				break;
			}
			case 'd': o->conn.dbname = take_conninfo(optarg); break;
			case 'h': o->conn.host = optarg; break;
			case 'p': o->conn.port = optarg; break;
			case 'U': o->conn.user = optarg; break;
			case 'w': o->conn.password = PG_PASSWORD_NEVER; break;
			case 'W': o->conn.password = PG_PASSWORD_PROMPT; break;
			case 'q': log_quiet = true; break;
			case 'V': print_version(); return EXIT_OK;
			case LONG_HELP: command_usage(cmd, stdout); return EXIT_OK;
			case LONG_LOG_FORMAT:
				if (strcmp(optarg, "json") == 0)
					log_json = true;
				else if (strcmp(optarg, "text") != 0)
					return bad_usage(cmd, "invalid log format \"%s\" (use text or json)", optarg);
				break;
			case LONG_RUN:
			{
				char *end;

				o->run_id = strtoll(optarg, &end, 10);
				if (*end || o->run_id < 1)
					return bad_usage(cmd, "invalid run id: \"%s\"", optarg);
				break;
			}
			case LONG_CSV: o->csv = optarg; break;
			case LONG_VERDICT: o->verdict = optarg; break;
			case LONG_REP:
			{
				char *end;

				o->rep_id = strtoll(optarg, &end, 10);
				o->has_rep = true;
				if (*end)
					return bad_usage(cmd, "invalid rep id: \"%s\"", optarg);
				break;
			}
			case LONG_COHORT: o->cohort = optarg; break;
			case LONG_FORMAT:
				if (strcmp(optarg, "raw") != 0 && strcmp(optarg, "dialer") != 0 &&
				    strcmp(optarg, "sheet") != 0)
					return bad_usage(cmd, "invalid export format \"%s\" (use raw, dialer or sheet)",
					                 optarg);
				o->format = optarg;
				break;
			case LONG_HTML: o->html = optarg; break;
			case LONG_TABLE: o->table = optarg; break;
			case LONG_REJECT: o->reject = optarg; break;
			case LONG_MAX_REJECTS:
			{
				char *end;

				o->max_rejects = strtol(optarg, &end, 10);
				if (end == optarg || *end || o->max_rejects < 1 || o->max_rejects == LONG_MAX)
					return bad_usage(cmd, "invalid --max-rejects \"%s\" (a whole number from 1)",
					                 optarg);
				break;
			}
			case LONG_TRUNCATE: o->truncate = true; break;
			case 'o': o->output = optarg; break;
			case LONG_PHONE: o->forget_phone = optarg; break;
			case LONG_EMAIL: o->forget_email = optarg; break;
			case LONG_LEAD_ID: o->forget_lead = optarg; break;
			case LONG_FILE_MODE:
				if (!outfile_parse_mode(optarg, &o->file_mode))
					return bad_usage(cmd,
					                 "invalid --file-mode \"%s\" (use octal bits such as 0600 "
					                 "or 0640)",
					                 optarg);
				o->has_file_mode = true;
				break;
			case LONG_JOB:
				if (!ruleset_job_ref_ok(optarg))
					return bad_usage(cmd, "invalid job name: \"%s\"", optarg);
				o->job = optarg;
				break;
			case LONG_FORCE: o->force = true; break;
			case LONG_SINCE: o->since = optarg; break;
			case LONG_CLAIMS: o->claims = true; break;
			case LONG_SUPPLIER: o->supplier = optarg; break;
			case LONG_FULL: o->full = true; break;
			case LONG_TENANT:
				if (!ruleset_job_name_ok(optarg))
					return bad_usage(cmd, "invalid tenant ID: \"%s\"", optarg);
				o->tenant = optarg;
				break;
			case LONG_TENANTS: o->tenants = optarg; break;
			case LONG_DEFAULTS: o->defaults = true; break;
			case LONG_VERBOSE: o->verbose = true; break;
			case LONG_PROGRESS:
			{
				char *end;

				o->progress = strtod(optarg, &end);
				if (end == optarg || *end || !(o->progress > 0 && o->progress <= 86400))
					return bad_usage(cmd, "invalid --progress \"%s\" (seconds, more than 0)",
					                 optarg);
				break;
			}
			case LONG_KEEP_COHORTS: o->keep_cohorts = true; break;
			case LONG_NO_SHIPPED: o->no_shipped = true; break;
			case LONG_CHECK: o->check = true; break;
			case LONG_MAX_AGE:
				if ((o->max_age = cmd_parse_age(optarg)) <= 0)
					return bad_usage(cmd, "invalid age: \"%s\" (e.g. 26h, 90m, 2d)", optarg);
				o->max_age_text = optarg;
				break;
			case LONG_KEEP:
			{
				char *end;

				o->keep = strtol(optarg, &end, 10);
				if (*end || o->keep < 1 || o->keep > 1000000)
					return bad_usage(cmd, "invalid number of runs to keep: \"%s\"", optarg);
				break;
			}
		}
	}
	o->args = (const char *const *) argv + optind;
	o->nargs = argc - optind;
#ifdef _OPENMP
	if (o->jobs > 0)
		omp_set_num_threads(o->jobs);
	o->threads = omp_get_max_threads();
#else
	o->threads = 1;
#endif

	{
		struct error err;

		error_clear(&err);
		if (!cmd->fn(o, &err))
			return fail(&err);
	}
	return EXIT_OK;
}

/*
 * Flush and close standard output, and say so when anything written to it
 * was lost (a closed pipe, a full disk).  For the commands whose standard
 * output is only a summary line the work is done -- a run is committed by
 * then -- so it is a warning and the command's own status stands; for the
 * others standard output is the result, so it is an error.
 */
static int
close_stdout(const char *command, int rc)
{
	static const char *const summary_only[] = {"run", "init-db", "check-rules", "import", NULL};
	bool lost, summary = false;
	int saved;

	errno = 0;
	lost = fflush(stdout) != 0 || ferror(stdout);
	saved = errno;
	if (fclose(stdout) != 0 && !lost)
	{
		lost = true;
		saved = errno;
	}
	if (!lost)
		return rc;
	for (int k = 0; command && summary_only[k]; k++)
		summary = summary || strcmp(command, summary_only[k]) == 0;
	if (summary || rc != EXIT_OK)
	{
		log_warning("could not write to standard output: %s; the %s command itself %s",
		            saved ? strerror(saved) : "write error", command ? command : "refinery",
		            rc == EXIT_OK ? "succeeded" : "failed");
		return rc;
	}
	{
		struct error err;

		error_set(&err, EXIT_DATA, "could not write to standard output: %s",
		          saved ? strerror(saved) : "write error");
		return fail(&err);
	}
}

#if defined(__GLIBC__)
/*
 * Large arrays in huge pages.  Every block of 128 kB or more is mapped on
 * its own (main()), so each stage's arrays are fresh pages the kernel
 * gives one 4 kB fault at a time: about 390,000 faults for a million
 * leads, a tenth of the run's processor time.  The kernel's transparent
 * huge pages are commonly given only where a program asks (madvise), and
 * glibc asks for its mappings only with the tunable glibc.malloc.hugetlb=1,
 * which it reads when a program starts.  So the program starts itself once
 * more with the tunable added, unless GLIBC_TUNABLES names it already (the
 * user's choice, or this second start), the kernel's setting is not
 * madvise, the program runs set-user-id (glibc then ignores tunables) or
 * under valgrind.
 * If that start fails, the program goes on as it is.
 */
static void
start_with_huge_pages(char **argv)
{
	const char *old = getenv("GLIBC_TUNABLES");
	const char *preload = getenv("LD_PRELOAD");
	char mode[128] = "", *value;
	FILE *f;
	size_t len;

	if (getauxval(AT_SECURE) || (old != NULL && strstr(old, "glibc.malloc.hugetlb") != NULL))
		return;
	/* under valgrind the second start would run outside it */
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		return;
	if ((f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r")) == NULL)
		return;
	if (fgets(mode, sizeof(mode), f) == NULL)
		mode[0] = '\0';
	fclose(f);
	if (strstr(mode, "[madvise]") == NULL)
		return;
	len = (old ? strlen(old) + 1 : 0) + sizeof("glibc.malloc.hugetlb=1");
	if ((value = malloc(len)) == NULL)
		return;
	snprintf(value, len, "glibc.malloc.hugetlb=1%s%s", old ? ":" : "", old ? old : "");
	if (setenv("GLIBC_TUNABLES", value, 1) == 0)
	{
		execv("/proc/self/exe", argv);
		/* not started: go on with small pages */
		if (old)
			(void) setenv("GLIBC_TUNABLES", old, 1);
		else
			(void) unsetenv("GLIBC_TUNABLES");
	}
	free(value);
}
#endif

int
main(int argc, char **argv)
{
	struct cmd_opts o;
	int rc;

#if defined(__GLIBC__)
	start_with_huge_pages(argv);
#endif
	signal(SIGPIPE, SIG_IGN);
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
	/*
	 * Every block of 128 kB or more is mapped on its own and given back
	 * when freed.  glibc's default raises that bound after each such free
	 * (up to 32 MB), so the stages' large arrays, freed one stage and
	 * allocated the next, would come from a heap that keeps what it had:
	 * a --full run over a million leads peaked 26 MB higher.
	 */
	(void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
	memset(&o, 0, sizeof(o));
	o.files = calloc((size_t) argc + 1, sizeof(char *));
	if (o.files == NULL)
		return EXIT_INTERNAL;
	rc = dispatch(argc, argv, &o);
	free((void *) o.conn.dbname);
	free(o.files);
	return close_stdout(argc > 1 && argv[1][0] != '-' ? argv[1] : NULL, rc);
}
