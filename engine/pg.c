/*
 * pg.c
 *    Connecting, running statements, quoting, and cancelling on signals.
 *
 * The cancel handle of the one open connection is kept in a static so the
 * signal handler can use PQcancel(), which is safe there; this and the
 * interrupt flag are the only process-wide state.  libpq's connection
 * errors can quote parts of a malformed conninfo; they are scrubbed of the
 * password (or withheld) before they reach a message.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "pg.h"

static PGcancel *volatile cancel_handle;
static volatile sig_atomic_t interrupted;

static void
on_signal(int signo)
{
	char buf[256];
	PGcancel *c = cancel_handle;

	(void) signo;
	interrupted = 1;
	if (c != NULL)
		(void) PQcancel(c, buf, sizeof(buf));
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
		 * keepalives the server notices a dead client in about a minute and
		 * frees it.  Before dbname, so a conninfo that sets them wins.
		 */
		keys[n] = "keepalives_idle", vals[n++] = "30";
		keys[n] = "keepalives_interval", vals[n++] = "10";
		keys[n] = "keepalives_count", vals[n++] = "3";
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
	cancel_handle = PQgetCancel(conn);
	return conn;
}

void
pg_disconnect(PGconn *conn)
{
	PGcancel *c = cancel_handle;
	sigset_t block, old;

	if (conn == NULL)
		return;
	/* no signal handler may use the cancel handle while it is freed */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	cancel_handle = NULL;
	if (c)
		PQfreeCancel(c);
	sigprocmask(SIG_SETMASK, &old, NULL);
	PQfinish(conn);
}

bool
pg_fail(PGconn *conn, PGresult *res, const char *phase, struct error *err)
{
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
	const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	char text[700];
	enum exit_code code = EXIT_DATA;

	if (msg == NULL)
	{
		snprintf(text, sizeof(text), "%s", PQerrorMessage(conn));
		text[strcspn(text, "\n")] = '\0';
		msg = text[0] ? text : "unknown error";
	}
	if (PQstatus(conn) == CONNECTION_BAD || (state && strncmp(state, "08", 2) == 0) ||
	    (state && (strcmp(state, "57P01") == 0 || strcmp(state, "57P02") == 0 ||
	               strcmp(state, "57P03") == 0)))
		code = EXIT_CONNECTION;
	if (state && strcmp(state, "57014") == 0 && pg_interrupted())
		code = EXIT_INTERRUPTED;
	error_set(err, code, "%s failed: %s", phase, msg);
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

/* One identifier part, quoted; `len` bytes of `s`. */
static bool
quote_part(PGconn *conn, const char *s, size_t len, char **out, struct error *err)
{
	char *q;

	if (len == 0)
		return error_set(err, EXIT_RULES, "empty identifier in \"%s\"", s);
	if (len > 63)
	{
		error_set(err, EXIT_RULES, "identifier \"%.*s\" is longer than 63 bytes", (int) len, s);
		return error_detail(err, "PostgreSQL would truncate it, and two long names could then "
		                         "mean the same object.");
	}
	q = PQescapeIdentifier(conn, s, len);
	if (q == NULL)
		return error_set(err, EXIT_RULES, "identifier \"%.*s\" is not valid UTF-8", (int) len, s);
	*out = q;
	return true;
}

char *
pg_quote_ident(PGconn *conn, const char *name, struct error *err)
{
	char *parts[3] = {0};
	int np = 0;
	const char *p = name;
	char *res = NULL;
	size_t total = 1;

	while (*p)
	{
		const char *start = p;
		size_t len;
		char buf[260];

		if (np == 3)
		{
			error_set(err, EXIT_RULES, "too many dotted parts in the name \"%s\"", name);
			goto out;
		}
		if (*p == '"')
		{
			/* a quoted part: "" stands for one quote */
			size_t k = 0;

			for (p++; *p && !(*p == '"' && p[1] != '"'); p++)
			{
				if (*p == '"')
					p++;
				if (k < sizeof(buf) - 1)
					buf[k++] = *p;
			}
			if (*p != '"')
			{
				error_set(err, EXIT_RULES, "unterminated quoted identifier in \"%s\"", name);
				goto out;
			}
			p++;
			buf[k] = '\0';
			if (!quote_part(conn, buf, k, &parts[np], err))
				goto out;
		}
		else
		{
			while (*p && *p != '.')
				p++;
			len = (size_t) (p - start);
			if (len >= sizeof(buf))
				len = sizeof(buf) - 1;
			memcpy(buf, start, len);
			buf[len] = '\0';
			/* an unquoted name means what SQL makes of it: folded to lower case */
			for (char *q = buf; *q; q++)
				if (*q >= 'A' && *q <= 'Z')
					*q = (char) (*q - 'A' + 'a');
			if (!quote_part(conn, buf, strlen(buf) == len ? len : 0, &parts[np], err))
				goto out;
		}
		total += strlen(parts[np]) + 1;
		np++;
		if (*p == '.')
		{
			p++;
			if (*p == '\0')
			{
				error_set(err, EXIT_RULES, "name \"%s\" ends with a dot", name);
				goto out;
			}
		}
		else if (*p)
		{
			error_set(err, EXIT_RULES, "unexpected character after a quoted name in \"%s\"", name);
			goto out;
		}
	}
	if (np == 0)
	{
		error_set(err, EXIT_RULES, "empty name");
		goto out;
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
		strcat(res, parts[i]);
	}
out:
	for (int i = 0; i < 3; i++)
		PQfreemem(parts[i]);
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
