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
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
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

static void
usage(FILE *out)
{
	fprintf(out, "refinery turns historical sales leads into worked, prioritised call lists.\n"
	             "\n"
	             "Usage:\n"
	             "  refinery COMMAND [OPTION]...\n"
	             "\n"
	             "Commands:\n"
	             "  run          pull leads, refine, score, assign reps, write the run back\n"
	             "  init-db      create or upgrade the refinery schema\n"
	             "  check-rules  check rule files without connecting\n"
	             "  export       write a run's results to a CSV file\n"
	             "  explain      show why one lead got its verdict, score and rep\n"
	             "  report       summarise a run (funnel, cohorts, reps; --html for a file)\n"
	             "  import       load a CSV file of leads into a table\n"
	             "  calibrate    fit scoring points from historical outcomes\n"
	             "  forget       erase a person on request; never import them again\n"
	             "  jobs         list the jobs and their last committed runs\n"
	             "  prune        drop a job's old runs now ([output] keep_runs or --keep)\n"
	             "\n"
	             "Run options:\n"
	             "  -c, --rules=FILE       rule file; repeat to layer files (later wins)\n"
	             "  -n, --dry-run          do everything, print the funnel, roll back\n"
	             "  -j, --jobs=N           worker threads (default: all cores)\n"
	             "  -o, --output=FILE      calibrate: write the fitted rules here (else stdout)\n"
	             "      --force            commit even when the [job] guards refuse the run\n"
	             "\n"
	             "Export, explain, report, jobs and prune options:\n"
	             "      --job=NAME         the job to read (needed when several jobs have runs)\n"
	             "      --run=ID           run to read (default: the job's latest committed)\n"
	             "      --csv=FILE         CSV file to write (\"-\" for standard output)\n"
	             "      --verdict=V        export only leads with this verdict\n"
	             "      --rep=ID           export only this rep's call list, in call order\n"
	             "      --html=FILE        report: also write an HTML report with charts\n"
	             "      --check            jobs: fail (status 5) when a job is overdue\n"
	             "      --max-age=AGE      jobs --check: overdue when its last run is older (26h)\n"
	             "      --keep=N           prune: keep the newest N committed runs of the job\n"
	             "\n"
	             "Files written (export, report --html, import --reject, calibrate -o):\n"
	             "      --file-mode=MODE   permission bits, in octal (default: [output]\n"
	             "                         file_mode of the rules, 0600 as shipped)\n"
	             "\n"
	             "Import options:\n"
	             "      --csv=FILE         CSV file to read (header row required)\n"
	             "      --table=NAME       target table (created with text columns if absent)\n"
	             "      --reject=FILE      write rejected rows here instead of failing\n"
	             "\n"
	             "Forget options (with -c for the numbering plan, -n to roll back):\n"
	             "      --phone=NUMBER     the person's phone number\n"
	             "      --email=ADDRESS    the person's e-mail address\n"
	             "      --lead-id=ID       one of the person's leads\n"
	             "\n"
	             "Connection options:\n"
	             "  -d, --dbname=DBNAME    database name, conninfo string or URI\n"
	             "  -h, --host=HOSTNAME    database server host or socket directory\n"
	             "  -p, --port=PORT        database server port\n"
	             "  -U, --username=NAME    database user name\n"
	             "  -w, --no-password      never prompt for a password\n"
	             "  -W, --password         force a password prompt\n"
	             "\n"
	             "General options:\n"
	             "      --log-format=FMT   text (default) or json: one object per line\n"
	             "  -q, --quiet            no summary line on success\n"
	             "  -V, --version          output version information, then exit\n"
	             "  -?, --help             show this help, then exit\n"
	             "\n"
	             "Stages of a run, in order:\n  pull");
	for (int k = 0; pipeline_stage_name(k); k++)
		fprintf(out, ", %s", pipeline_stage_name(k));
	fprintf(out, ", write.\n"
	             "\n"
	             "Exit status: 0 success, 1 internal error, 2 usage, 3 rules, 4 connection,\n"
	             "5 data or SQL error (also: a [job] guard refused the run; jobs --check\n"
	             "found an overdue job), 6 another run of the job holds its lease, 7 interrupted.\n"
	             "See refinery(1) for the rule files and the refinery schema.\n");
}

static int
fail(const struct error *err)
{
	log_error(err);
	return err->code == EXIT_OK ? EXIT_INTERNAL : (int) err->code;
}

static int
bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "refinery: error: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
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

/*
 * Everything main() does once the options' storage exists; every return
 * path leaves the freeing to main().
 */
static int
dispatch(int argc, char **argv, struct cmd_opts *o)
{
	static const struct option long_opts[] = {
	    {"rules", required_argument, NULL, 'c'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"jobs", required_argument, NULL, 'j'},
	    {"dbname", required_argument, NULL, 'd'},
	    {"host", required_argument, NULL, 'h'},
	    {"port", required_argument, NULL, 'p'},
	    {"username", required_argument, NULL, 'U'},
	    {"no-password", no_argument, NULL, 'w'},
	    {"password", no_argument, NULL, 'W'},
	    {"quiet", no_argument, NULL, 'q'},
	    {"version", no_argument, NULL, 'V'},
	    {"help", no_argument, NULL, 9},
	    {"log-format", required_argument, NULL, 1},
	    {"run", required_argument, NULL, 2},
	    {"csv", required_argument, NULL, 3},
	    {"verdict", required_argument, NULL, 4},
	    {"rep", required_argument, NULL, 5},
	    {"html", required_argument, NULL, 6},
	    {"table", required_argument, NULL, 7},
	    {"reject", required_argument, NULL, 8},
	    {"output", required_argument, NULL, 'o'},
	    {"file-mode", required_argument, NULL, 10},
	    {"phone", required_argument, NULL, 20},
	    {"email", required_argument, NULL, 21},
	    {"lead-id", required_argument, NULL, 22},
	    {"job", required_argument, NULL, 30},
	    {"force", no_argument, NULL, 31},
	    {"check", no_argument, NULL, 32},
	    {"max-age", required_argument, NULL, 33},
	    {"keep", required_argument, NULL, 34},
	    {NULL, 0, NULL, 0},
	};
	const char *command;
	int c;

	if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-?") == 0))
	{
		usage(stdout);
		return EXIT_OK;
	}
	if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0))
	{
		printf("refinery %s\n", PACKAGE_VERSION);
		if (FAULT_COMPILED_IN)
			printf("built with fault injection (REFINERY_FAULT): for tests only\n");
		return EXIT_OK;
	}
	if (argc < 2 || argv[1][0] == '-')
		return bad_usage("%s", argc < 2 ? "no command given" : "the command must come first");
	command = argv[1];
	optind = 2;
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "-?") == 0)
		{
			usage(stdout);
			return EXIT_OK;
		}
	while ((c = getopt_long(argc, argv, "c:nj:d:h:p:U:wWqVo:", long_opts, NULL)) != -1)
	{
		switch (c)
		{
			case 'c': o->files[o->nfiles++] = optarg; break;
			case 'n': o->dry_run = true; break;
			case 'j':
			{
				char *end;
				long j = strtol(optarg, &end, 10);

				if (*end || j < 1 || j > 1024)
					return bad_usage("invalid number of jobs: \"%s\"", optarg);
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
			case 'V':
				printf("refinery %s\n", PACKAGE_VERSION);
				if (FAULT_COMPILED_IN)
					printf("built with fault injection (REFINERY_FAULT): for tests only\n");
				return EXIT_OK;
			case 9: usage(stdout); return EXIT_OK;
			case 1:
				if (strcmp(optarg, "json") == 0)
					log_json = true;
				else if (strcmp(optarg, "text") != 0)
					return bad_usage("invalid log format \"%s\" (use text or json)", optarg);
				break;
			case 2:
			{
				char *end;

				o->run_id = strtoll(optarg, &end, 10);
				if (*end || o->run_id < 1)
					return bad_usage("invalid run id: \"%s\"", optarg);
				break;
			}
			case 3: o->csv = optarg; break;
			case 4: o->verdict = optarg; break;
			case 5:
			{
				char *end;

				o->rep_id = strtoll(optarg, &end, 10);
				o->has_rep = true;
				if (*end)
					return bad_usage("invalid rep id: \"%s\"", optarg);
				break;
			}
			case 6: o->html = optarg; break;
			case 7: o->table = optarg; break;
			case 8: o->reject = optarg; break;
			case 'o': o->output = optarg; break;
			case 20: o->forget_phone = optarg; break;
			case 21: o->forget_email = optarg; break;
			case 22: o->forget_lead = optarg; break;
			case 10:
				if (!outfile_parse_mode(optarg, &o->file_mode))
					return bad_usage("invalid --file-mode \"%s\" (use octal bits such as 0600 "
					                 "or 0640)",
					                 optarg);
				o->has_file_mode = true;
				break;
			case 30:
				if (!ruleset_job_name_ok(optarg))
					return bad_usage("invalid job name: \"%s\"", optarg);
				o->job = optarg;
				break;
			case 31: o->force = true; break;
			case 32: o->check = true; break;
			case 33:
				if ((o->max_age = cmd_parse_age(optarg)) <= 0)
					return bad_usage("invalid age: \"%s\" (e.g. 26h, 90m, 2d)", optarg);
				o->max_age_text = optarg;
				break;
			case 34:
			{
				char *end;

				o->keep = strtol(optarg, &end, 10);
				if (*end || o->keep < 1 || o->keep > 1000000)
					return bad_usage("invalid number of runs to keep: \"%s\"", optarg);
				break;
			}
			default:
				fprintf(stderr, "Try \"refinery --help\" for more information.\n");
				return EXIT_USAGE;
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
		bool ok;

		error_clear(&err);
		if (strcmp(command, "run") == 0)
			ok = cmd_run(o, &err);
		else if (strcmp(command, "init-db") == 0)
			ok = cmd_init_db(o, &err);
		else if (strcmp(command, "check-rules") == 0)
			ok = cmd_check_rules(o, &err);
		else if (strcmp(command, "export") == 0)
			ok = cmd_export(o, &err);
		else if (strcmp(command, "explain") == 0)
			ok = cmd_explain(o, &err);
		else if (strcmp(command, "report") == 0)
			ok = cmd_report(o, &err);
		else if (strcmp(command, "import") == 0)
			ok = cmd_import(o, &err);
		else if (strcmp(command, "calibrate") == 0)
			ok = cmd_calibrate(o, &err);
		else if (strcmp(command, "forget") == 0)
			ok = cmd_forget(o, &err);
		else if (strcmp(command, "jobs") == 0)
			ok = cmd_jobs(o, &err);
		else if (strcmp(command, "prune") == 0)
			ok = cmd_prune(o, &err);
		else
			return bad_usage("unknown command \"%s\"", command);
		if (!ok)
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

int
main(int argc, char **argv)
{
	struct cmd_opts o;
	int rc;

	signal(SIGPIPE, SIG_IGN);
	memset(&o, 0, sizeof(o));
	o.files = calloc((size_t) argc + 1, sizeof(char *));
	if (o.files == NULL)
		return EXIT_INTERNAL;
	rc = dispatch(argc, argv, &o);
	free((void *) o.conn.dbname);
	free(o.files);
	return close_stdout(argc > 1 && argv[1][0] != '-' ? argv[1] : NULL, rc);
}
