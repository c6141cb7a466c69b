/*
 * pg.h
 *    The PostgreSQL connection: connecting the way PostgreSQL's own clients
 *    do, running statements with errors turned into struct error, quoting,
 *    and cancelling the running query on SIGINT / SIGTERM.
 */
#ifndef REFINERY_PG_H
#define REFINERY_PG_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "error.h"

enum pg_password
{
	PG_PASSWORD_AUTO,  /* prompt if the server asks and a terminal is there */
	PG_PASSWORD_NEVER, /* -w */
	PG_PASSWORD_PROMPT /* -W */
};

struct conn_opts
{
	const char *dbname; /* a name, a conninfo string or a URI; NULL = libpq default */
	const char *host;
	const char *port;
	const char *user;
	enum pg_password password;
};

/* Connect (application_name "refinery" unless set otherwise); NULL + EXIT_CONNECTION. */
PGconn *pg_connect(const struct conn_opts *o, struct error *err);
/*
 * Another session beside conn: the same server (the host conn reached),
 * database, role and connection options, password included, which never
 * reaches a message.  A stop signal cancels its statement as it cancels
 * the run's.  NULL + EXIT_CONNECTION when it cannot connect.
 */
PGconn *pg_connect_again(PGconn *conn, struct error *err);
/* Close the connection and forget its cancel handle. NULL is a no-op. */
void pg_disconnect(PGconn *conn);

/*
 * TCP keepalives: keepalives_idle, keepalives_interval, keepalives_count
 * (seconds, seconds, probes).  A run holds its job's lease as long as its
 * connection lives, so every connection has them: what its conninfo or
 * its service file (service=, PGSERVICE) sets, else the engine's defaults,
 * 30, 10 and 3.  libpq lets parameters given to it override a service
 * file, so the defaults are not given to libpq: pg_connect() and
 * pg_connect_again() set them on the socket of a TCP connection after it
 * is made, for each the conninfo and the service left unset.
 * pg_keepalives() gives the values in effect (-1: one libpq took that is
 * not a plain number); false when the connection turns keepalives off
 * (keepalives=0).  pg_set_keepalives() sets v[k] >= 0 on a TCP socket.
 */
#define PG_KEEPALIVES 3
bool pg_keepalives(PGconn *conn, long out[PG_KEEPALIVES]);
bool pg_set_keepalives(int fd, const long v[PG_KEEPALIVES], struct error *err);

/*
 * Signals: after pg_signals_install(), SIGINT and SIGTERM set a flag and
 * send a cancel request for the connection given to pg_connect.
 */
void pg_signals_install(void);
bool pg_interrupted(void);

/*
 * After a COPY's data (in or out): read the statement's result, which says
 * whether the server took it all, and drain the rest.  false with err
 * filled (naming phase) when it did not.
 */
bool pg_copy_result(PGconn *conn, const char *phase, struct error *err);

/*
 * Run one statement (or several, with no parameters) and expect success.
 * `phase` names what the engine was doing, for the message.  On failure the
 * error names the phase, carries the server's message, detail and hint, and
 * its code says whether the connection was lost.
 */
bool pg_exec(PGconn *conn, const char *phase, const char *sql, struct error *err);
/* Same with parameters (text format); returns the result (caller clears) or NULL. */
PGresult *pg_query(PGconn *conn, const char *phase, const char *sql, int nparams,
                   const char *const *params, struct error *err);
/* Fill err from a failed result (or the connection state when res is NULL). Returns false. */
bool pg_fail(PGconn *conn, PGresult *res, const char *phase, struct error *err);

/*
 * How a run begins its transactions, whatever default_transaction_isolation
 * the server or role sets: each statement must see what the pull queue
 * committed before it (the write finds rows changed since the run read
 * them by their version), and COPY ... FREEZE into the run's own new tables
 * needs a transaction that holds no older snapshot.
 */
#define RUN_BEGIN "BEGIN ISOLATION LEVEL READ COMMITTED"

/* longest identifier the server keeps whole (NAMEDATALEN - 1) */
#define PG_IDENT_MAX 63

/*
 * Split a name that may be qualified ("schema.table") into its parts as
 * the server reads them: an unquoted part folded to lower case, a
 * double-quoted one kept as written ("" stands for one quote).  At most
 * `max_parts` parts, each 1 to PG_IDENT_MAX bytes, into parts[k].  Needs no
 * connection, so rules can be checked without a server.  False +
 * EXIT_RULES (the message names the name, not where it was set).
 */
bool pg_ident_split(const char *name, int max_parts, char parts[][PG_IDENT_MAX + 1], int *nparts,
                    struct error *err);

/*
 * Quote an identifier that may be qualified ("schema.table", each part
 * quoted separately; parts already double-quoted are kept as one part).
 * Rejects names over 63 bytes (the server would truncate them, so two
 * names could alias) and invalid UTF-8.  malloc'd; NULL + EXIT_RULES.
 */
char *pg_quote_ident(PGconn *conn, const char *name, struct error *err);

/* A literal for SQL text (malloc'd, quoted), NULL on invalid input / OOM. */
char *pg_quote_literal(PGconn *conn, const char *value, struct error *err);

#endif /* REFINERY_PG_H */
