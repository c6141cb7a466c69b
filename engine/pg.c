/*
 * pg.c
 *    Connecting, running statements, quoting, and cancelling on signals.
 *
 * The cancel handle of the first connection still open (the run's own,
 * whatever opens beside it later) is kept in a static so the signal
 * handler can use PQcancel(), which is safe there; this and the interrupt
 * flag are the only process-wide state.  libpq's connection
 * errors can quote parts of a malformed conninfo; they are scrubbed of the
 * password (or withheld) before they reach a message.
 *
 * Every connection gets a notice receiver that passes what the server says
 * outside a result (NOTICE, WARNING, and the FATAL of a session ended while
 * idle) to log.c, so that --log-format=json holds for them too.  A failed
 * statement counts as a lost connection, whichever statement it was, when
 * libpq has given the connection up, when an error of libpq's own is
 * followed by a connection that proves dead when read, or when the server
 * ended the session (FATAL or PANIC, a shutdown or connection SQLSTATE).
 */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "log.h"
#include "pg.h"

static _Atomic(PGcancel *) cancel_handle;
static PGconn *cancel_conn; /* the connection cancel_handle cancels */
static volatile sig_atomic_t interrupted;

/* the sessions pg_connect_again() opened beside the run's, cancelled with it */
#define PG_MORE_SESSIONS 8
static _Atomic(PGcancel *) more_cancel[PG_MORE_SESSIONS];
static PGconn *more_conn[PG_MORE_SESSIONS];

/* signal handlers between taking a cancel handle and their last use of it (drop_cancel) */
static atomic_int handlers_busy;

static void
on_signal(int signo)
{
	char buf[256];
	PGcancel *c;

	(void) signo;
	interrupted = 1;
	atomic_fetch_add(&handlers_busy, 1);
	if ((c = atomic_load(&cancel_handle)) != NULL)
		(void) PQcancel(c, buf, sizeof(buf));
	for (int k = 0; k < PG_MORE_SESSIONS; k++)
		if ((c = atomic_load(&more_cancel[k])) != NULL)
			(void) PQcancel(c, buf, sizeof(buf));
	atomic_fetch_sub(&handlers_busy, 1);
}

/*
 * Free a cancel handle no signal handler may be using meanwhile.  The
 * signals are blocked on this thread, so no handler runs here; one that
 * runs on another thread (the run's workers and readers take signals too)
 * either counted itself in handlers_busy before the handle left its slot,
 * and is waited for, or finds the slot empty.
 */
static void
drop_cancel(_Atomic(PGcancel *) *slot)
{
	PGcancel *c;
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	c = atomic_exchange(slot, NULL);
	while (atomic_load(&handlers_busy) > 0)
		sched_yield(); /* a PQcancel() in flight elsewhere: one round trip to the server */
	if (c)
		PQfreeCancel(c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

void
pg_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool
pg_interrupted(void)
{
	return interrupted != 0;
}

/* What the server says outside a result goes through the program's logger. */
static void
on_notice(void *arg, const PGresult *res)
{
	(void) arg;
	log_server(PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED),
	           PQresultErrorField(res, PG_DIAG_SQLSTATE),
	           PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
	           PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
	           PQresultErrorField(res, PG_DIAG_MESSAGE_HINT));
}

/* Read a password from the terminal without echo; NULL when there is none. */
static char *
prompt_password(void)
{
	FILE *tty = fopen("/dev/tty", "r+");
	struct termios old, noecho;
	bool have_old = false;
	char buf[1024];
	char *res = NULL;

	if (tty == NULL)
		return NULL;
	fputs("Password: ", tty);
	fflush(tty);
	if (tcgetattr(fileno(tty), &old) == 0)
	{
		have_old = true;
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t) ECHO;
		tcsetattr(fileno(tty), TCSAFLUSH, &noecho);
	}
	if (fgets(buf, sizeof(buf), tty) != NULL)
	{
		buf[strcspn(buf, "\r\n")] = '\0';
		res = strdup(buf);
	}
	if (have_old)
		tcsetattr(fileno(tty), TCSAFLUSH, &old);
	fputs("\n", tty);
	fclose(tty);
	explicit_bzero(buf, sizeof(buf));
	return res;
}

/* the conninfo keywords of the keepalives, the engine's values, and the socket options */
static const char *const keepalive_key[PG_KEEPALIVES] = {"keepalives_idle", "keepalives_interval",
                                                         "keepalives_count"};
static const long keepalive_default[PG_KEEPALIVES] = {30, 10, 3};
static const int keepalive_opt[PG_KEEPALIVES] = {TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT};

/*
 * The values in effect (see pg.h); set[k] (may be NULL) says whether the
 * conninfo or the service set keepalive k.
 */
static bool
keepalives_in_effect(PGconn *conn, long out[PG_KEEPALIVES], bool set[PG_KEEPALIVES])
{
	PQconninfoOption *opts = PQconninfo(conn);
	bool on = true;

	for (int k = 0; k < PG_KEEPALIVES; k++)
	{
		out[k] = keepalive_default[k];
		if (set)
			set[k] = false;
	}
	if (opts == NULL)
		return on; /* out of memory: the defaults, which is what the socket has */
	for (PQconninfoOption *o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0')
			continue;
		if (strcmp(o->keyword, "keepalives") == 0 && strcmp(o->val, "0") == 0)
			on = false;
		for (int k = 0; k < PG_KEEPALIVES; k++)
			if (strcmp(o->keyword, keepalive_key[k]) == 0)
			{
				/* only digits go into a statement (runconn.c) */
				size_t n = strlen(o->val);

				out[k] =
				    strspn(o->val, "0123456789") == n && n <= 9 ? strtol(o->val, NULL, 10) : -1;
				if (set)
					set[k] = true;
			}
		/* the options hold the password the session used */
		if (strcmp(o->keyword, "password") == 0)
			explicit_bzero(o->val, strlen(o->val));
	}
	PQconninfoFree(opts);
	return on;
}

bool
pg_keepalives(PGconn *conn, long out[PG_KEEPALIVES])
{
	return keepalives_in_effect(conn, out, NULL);
}

bool
pg_set_keepalives(int fd, const long v[PG_KEEPALIVES], struct error *err)
{
	for (int k = 0; k < PG_KEEPALIVES; k++)
	{
		int val = (int) v[k];

		if (v[k] < 0)
			continue;
		if (setsockopt(fd, IPPROTO_TCP, keepalive_opt[k], &val, sizeof(val)) != 0)
			return error_set(err, EXIT_CONNECTION, "could not set the connection's %s to %ld: %s",
			                 keepalive_key[k], v[k], strerror(errno));
	}
	return true;
}

/*
 * The engine's keepalives on a new TCP connection, for those its conninfo
 * and service file left unset (libpq has set theirs, and SO_KEEPALIVE).
 * A Unix socket has none.  False + EXIT_CONNECTION.
 */
static bool
default_keepalives(PGconn *conn, struct error *err)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	long v[PG_KEEPALIVES];
	bool set[PG_KEEPALIVES];
	int fd = PQsocket(conn);

	if (fd < 0 || getsockname(fd, (struct sockaddr *) &sa, &len) != 0 ||
	    (sa.ss_family != AF_INET && sa.ss_family != AF_INET6))
		return true;
	if (!keepalives_in_effect(conn, v, set))
		return true; /* keepalives=0 */
	for (int k = 0; k < PG_KEEPALIVES; k++)
		if (set[k])
			v[k] = -1; /* libpq set it */
	return pg_set_keepalives(fd, v, err);
}

/*
 * libpq quotes parts of a malformed connection string in its messages, and
 * those parts may hold the password.  Blank out every occurrence of the
 * password of `conninfo` in `msg`; false when the string does not even parse
 * (the message may then quote anything, so the caller must not print it).
 */
static bool
scrub_secret(const char *conninfo, char *msg)
{
	PQconninfoOption *opts;
	char *perr = NULL;
	bool ok = true;

	if (conninfo == NULL || (strchr(conninfo, '=') == NULL && strstr(conninfo, "://") == NULL))
		return true; /* a plain database name */
	opts = PQconninfoParse(conninfo, &perr);
	PQfreemem(perr);
	if (opts == NULL)
		return false;
	for (PQconninfoOption *op = opts; op->keyword; op++)
	{
		size_t len;
		char *hit;

		if (strcmp(op->keyword, "password") != 0 || op->val == NULL || (len = strlen(op->val)) == 0)
			continue;
		while ((hit = strstr(msg, op->val)) != NULL)
			memset(hit, '*', len);
	}
	PQconninfoFree(opts);
	return ok;
}

PGconn *
pg_connect(const struct conn_opts *o, struct error *err)
{
	const char *keys[13];
	const char *vals[13];
	char *password = NULL;
	PGconn *conn;
	int n;

	for (;;)
	{
		n = 0;
		keys[n] = "host", vals[n++] = o->host;
		keys[n] = "port", vals[n++] = o->port;
		keys[n] = "user", vals[n++] = o->user;
		keys[n] = "password", vals[n++] = password;
		keys[n] = "fallback_application_name", vals[n++] = "refinery";
		/* every string the engine handles is UTF-8, whatever the server's encoding */
		keys[n] = "client_encoding", vals[n++] = "UTF8";
		/*
		 * A run holds its job's lease as long as its connection lives: with
		 * keepalives the client notices a dead server, and (the same values
		 * set on the server's side by the run: runconn.c) the server a dead
		 * client, in about a minute, and frees the lease.  Not given here:
		 * libpq would let them override a service file's; set once
		 * connected (default_keepalives()).
		 */
		keys[n] = "dbname", vals[n++] = o->dbname;
		keys[n] = NULL, vals[n] = NULL;
		if (o->password == PG_PASSWORD_PROMPT && password == NULL)
		{
			if ((password = prompt_password()) == NULL)
				return error_set(err, EXIT_CONNECTION, "could not read a password: no terminal"),
				       NULL;
			continue;
		}
		conn = PQconnectdbParams(keys, vals, 1);
		if (conn == NULL)
		{
			free(password);
			return error_set(err, EXIT_INTERNAL, "out of memory"), NULL;
		}
		if (PQstatus(conn) == CONNECTION_BAD && PQconnectionNeedsPassword(conn) &&
		    password == NULL && o->password == PG_PASSWORD_AUTO && isatty(STDIN_FILENO))
		{
			PQfinish(conn);
			if ((password = prompt_password()) != NULL)
				continue;
			return error_set(err, EXIT_CONNECTION, "could not read a password"), NULL;
		}
		break;
	}
	if (password)
	{
		explicit_bzero(password, strlen(password));
		free(password);
	}
	if (PQstatus(conn) == CONNECTION_BAD)
	{
		char msg[900];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
		msg[strcspn(msg, "\n")] = '\0';
		PQfinish(conn);
		if (!scrub_secret(o->dbname, msg))
		{
			error_set(err, EXIT_CONNECTION,
			          "could not connect to the database: the connection "
			          "string given with -d is malformed");
			return error_detail(err, "Its text is not shown, since it may hold a password."), NULL;
		}
		return error_set(err, EXIT_CONNECTION, "could not connect to the database: %s", msg), NULL;
	}
	if (!default_keepalives(conn, err))
	{
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeReceiver(conn, on_notice, NULL);
	if (atomic_load(&cancel_handle) == NULL)
	{
		cancel_conn = conn;
		atomic_store(&cancel_handle, PQgetCancel(conn));
	}
	return conn;
}

PGconn *
pg_connect_again(PGconn *conn, struct error *err)
{
	PQconninfoOption *opts = PQconninfo(conn);
	const char **keys, **vals;
	PGconn *again = NULL;
	int n = 0, slot;

	for (slot = 0; slot < PG_MORE_SESSIONS && more_conn[slot] != NULL; slot++)
		;
	if (slot == PG_MORE_SESSIONS)
		return error_set(err, EXIT_INTERNAL, "too many sessions at once"), NULL;
	if (opts == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory"), NULL;
	for (PQconninfoOption *o = opts; o->keyword; o++)
		n++;
	keys = calloc((size_t) n + 3, sizeof(*keys));
	vals = calloc((size_t) n + 3, sizeof(*vals));
	if (keys && vals)
	{
		n = 0;
		/* the server this session reached, not the first of a list of hosts */
		keys[n] = "host", vals[n++] = PQhost(conn);
		keys[n] = "port", vals[n++] = PQport(conn);
		for (PQconninfoOption *o = opts; o->keyword; o++)
			if (o->val && *o->val && strcmp(o->keyword, "host") != 0 &&
			    strcmp(o->keyword, "hostaddr") != 0 && strcmp(o->keyword, "port") != 0)
				keys[n] = o->keyword, vals[n++] = o->val;
		keys[n] = NULL, vals[n] = NULL;
		again = PQconnectdbParams(keys, vals, 0);
	}
	/* the options hold the password the first session used */
	for (PQconninfoOption *o = opts; o->keyword; o++)
		if (o->val && strcmp(o->keyword, "password") == 0)
			explicit_bzero(o->val, strlen(o->val));
	PQconninfoFree(opts);
	free(keys);
	free(vals);
	if (again == NULL)
		return error_set(err, EXIT_INTERNAL, "out of memory"), NULL;
	if (PQstatus(again) == CONNECTION_BAD)
	{
		char msg[900];

		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(again));
		msg[strcspn(msg, "\n")] = '\0';
		PQfinish(again);
		return error_set(err, EXIT_CONNECTION, "could not open another session: %s", msg), NULL;
	}
	if (!default_keepalives(again, err))
	{
		PQfinish(again);
		return NULL;
	}
	PQsetNoticeReceiver(again, on_notice, NULL);
	more_conn[slot] = again;
	atomic_store(&more_cancel[slot], PQgetCancel(again));
	return again;
}

void
pg_disconnect(PGconn *conn)
{
	if (conn == NULL)
		return;
	for (int k = 0; k < PG_MORE_SESSIONS; k++)
		if (more_conn[k] == conn)
		{
			drop_cancel(&more_cancel[k]);
			more_conn[k] = NULL;
		}
	if (conn == cancel_conn)
	{
		/* no signal handler may use the cancel handle while it is freed */
		drop_cancel(&cancel_handle);
		cancel_conn = NULL;
	}
	PQfinish(conn);
}

/*
 * Did the failed statement lose the session?  Whatever the statement was:
 * libpq gave the connection up; or the error is libpq's own (no SQLSTATE)
 * and the connection turns out dead when read from -- after the server
 * died between statements, libpq can fail the next one with "server closed
 * the connection unexpectedly" and still call the connection OK; or the
 * server said it ends the session (FATAL or PANIC, a connection exception,
 * a shutdown or a terminated backend) before libpq read the end of the
 * stream.
 */
static bool
session_lost(PGconn *conn, const char *state, const char *severity)
{
	if (PQstatus(conn) == CONNECTION_BAD)
		return true;
	if (state == NULL)
		return PQconsumeInput(conn) == 0 || PQstatus(conn) == CONNECTION_BAD;
	if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
		return true;
	return strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0 ||
	       strcmp(state, "57P02") == 0 || strcmp(state, "57P03") == 0;
}

bool
pg_fail(PGconn *conn, PGresult *res, const char *phase, struct error *err)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *severity = res ? PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
	char text[700];
	enum exit_code code = EXIT_DATA;

	if (msg == NULL)
	{
		snprintf(text, sizeof(text), "%s", PQerrorMessage(conn));
		text[strcspn(text, "\n")] = '\0';
		msg = text[0] ? text : "unknown error";
	}
	if (session_lost(conn, state, severity))
		code = EXIT_CONNECTION;
	if (state && strcmp(state, "57014") == 0 && pg_interrupted())
		code = EXIT_INTERRUPTED;
	error_set(err, code, "%s failed: %s", phase, msg);
	if (state && err)
		snprintf(err->sqlstate, sizeof(err->sqlstate), "%s", state);
	if (detail)
		error_detail(err, "%s", detail);
	if (hint)
		error_hint(err, "%s", hint);
	else if (code == EXIT_CONNECTION)
		error_hint(err, "The connection to the server was lost; nothing of this run was "
		                "committed.");
	return false;
}

bool
pg_copy_result(PGconn *conn, const char *phase, struct error *err)
{
	PGresult *res = PQgetResult(conn);
	bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

	if (!ok)
		pg_fail(conn, res, phase, err);
	PQclear(res);
	while ((res = PQgetResult(conn)) != NULL)
		PQclear(res);
	return ok;
}

bool
pg_exec(PGconn *conn, const char *phase, const char *sql, struct error *err)
{
	PGresult *res = PQexec(conn, sql);
	bool ok =
	    res && (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);

	if (!ok)
		pg_fail(conn, res, phase, err);
	PQclear(res);
	return ok;
}

PGresult *
pg_query(PGconn *conn, const char *phase, const char *sql, int nparams, const char *const *params,
         struct error *err)
{
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

	if (res && (PQresultStatus(res) == PGRES_TUPLES_OK || PQresultStatus(res) == PGRES_COMMAND_OK))
		return res;
	pg_fail(conn, res, phase, err);
	PQclear(res);
	return NULL;
}

bool
pg_ident_split(const char *name, int max_parts, char parts[][PG_IDENT_MAX + 1], int *nparts,
               struct error *err)
{
	const char *p = name;
	int np = 0;

	*nparts = 0;
	while (*p)
	{
		const char *start = p;
		size_t len = 0;
		char buf[PG_IDENT_MAX + 2]; /* one byte more tells "too long" */

		if (np == max_parts)
		{
			error_set(err, EXIT_RULES, "too many dotted parts in the name \"%s\"", name);
			return error_detail(err, "At most %d are allowed here.", max_parts);
		}
		if (*p == '"')
		{
			/* a quoted part: "" stands for one quote */
			for (p++; *p && !(*p == '"' && p[1] != '"'); p++)
			{
				if (*p == '"')
					p++;
				if (len < sizeof(buf) - 1)
					buf[len] = *p;
				len++;
			}
			if (*p != '"')
				return error_set(err, EXIT_RULES, "unterminated quoted identifier in \"%s\"", name);
			p++;
		}
		else
		{
			while (*p && *p != '.')
			{
				/* an unquoted name means what SQL makes of it: folded to lower case */
				if (len < sizeof(buf) - 1)
					buf[len] = (*p >= 'A' && *p <= 'Z') ? (char) (*p - 'A' + 'a') : *p;
				len++;
				p++;
			}
		}
		if (len == 0)
			return error_set(err, EXIT_RULES, "empty identifier in \"%s\"", name);
		if (len > PG_IDENT_MAX)
		{
			error_set(err, EXIT_RULES, "identifier \"%.*s\" is longer than %d bytes",
			          (int) (p - start), start, PG_IDENT_MAX);
			return error_detail(err, "PostgreSQL would truncate it, and two long names could "
			                         "then mean the same object.");
		}
		memcpy(parts[np], buf, len);
		parts[np][len] = '\0';
		np++;
		if (*p == '.')
		{
			p++;
			if (*p == '\0')
				return error_set(err, EXIT_RULES, "name \"%s\" ends with a dot", name);
		}
		else if (*p)
			return error_set(err, EXIT_RULES, "unexpected character after a quoted name in \"%s\"",
			                 name);
	}
	if (np == 0)
		return error_set(err, EXIT_RULES, "empty name");
	*nparts = np;
	return true;
}

char *
pg_quote_ident(PGconn *conn, const char *name, struct error *err)
{
	char parts[3][PG_IDENT_MAX + 1];
	char *quoted[3] = {0};
	int np = 0;
	char *res = NULL;
	size_t total = 1;

	if (!pg_ident_split(name, 3, parts, &np, err))
		return NULL;
	for (int i = 0; i < np; i++)
	{
		if ((quoted[i] = PQescapeIdentifier(conn, parts[i], strlen(parts[i]))) == NULL)
		{
			error_set(err, EXIT_RULES, "identifier \"%s\" is not valid UTF-8", parts[i]);
			goto out;
		}
		total += strlen(quoted[i]) + 1;
	}
	if ((res = malloc(total)) == NULL)
	{
		error_set(err, EXIT_INTERNAL, "out of memory");
		goto out;
	}
	res[0] = '\0';
	for (int i = 0; i < np; i++)
	{
		if (i)
			strcat(res, ".");
		strcat(res, quoted[i]);
	}
out:
	for (int i = 0; i < 3; i++)
		PQfreemem(quoted[i]);
	return res;
}

char *
pg_quote_literal(PGconn *conn, const char *value, struct error *err)
{
	char *q = PQescapeLiteral(conn, value, strlen(value));
	char *res;

	if (q == NULL)
		return error_set(err, EXIT_DATA, "value is not valid UTF-8"), NULL;
	res = strdup(q);
	PQfreemem(q);
	if (res == NULL)
		error_set(err, EXIT_INTERNAL, "out of memory");
	return res;
}
