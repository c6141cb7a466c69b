/*
 * blacklist.h
 *    The black-list stage: remove dead leads and mark the people who opted
 *    out, by the [blacklist.<id>] rules of the rule files.
 *
 * A rule states one or more tests (statuses, a pattern on a field, the
 * built-in fake-phone and keyboard-mash checks, a do-not-call list); it hits
 * a lead when every test it states holds.  Rules run in file order; the
 * first rule that hits decides the lead's rule_id and reason.  A rule is
 * either record-level (only this contact is dead: wrong number,
 * disconnected, junk) or person-level (refusal, denial, do-not-call): a
 * person-level hit sets b->optout[i] even when a record-level rule decided
 * the verdict, because the dedupe stage must remove every record of that
 * person.  A pattern that hits a limit on a lead's value sets that lead
 * aside as an outlier (regex.h).  Before the rules, the stage marks the
 * leads of the people erased with "refinery forget" (suppress.c, rule
 * suppress.forgotten).  The config is built by blacklist_config_load() and
 * then only read; the do-not-call values the run reads are kept beside the
 * leads, in b->dnc (struct blacklist_dnc below).
 */
#ifndef REFINERY_BLACKLIST_H
#define REFINERY_BLACKLIST_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "error.h"
#include "rules.h"
#include "stage.h"

enum blacklist_level
{
	BLACKLIST_RECORD,
	BLACKLIST_PERSON
};

struct blacklist_rule;
struct phone_plan;
struct blacklist_config; /* opaque; owned by the ruleset */

/*
 * `plan` is the leads' numbering plan (the normaliser's): do-not-call phones
 * are read with it, so they match the leads' numbers.  Borrowed: it must
 * outlive the config.
 */
bool blacklist_config_load(struct rules *r, const struct phone_plan *plan,
                           struct blacklist_config **out, struct error *err);
void blacklist_config_free(struct blacklist_config *c); /* NULL is a no-op */

bool blacklist_stage(struct batch *b, const struct ruleset *rs, struct stage_stats *st,
                     struct error *err);

/* Rules in file order (enabled ones only); the unit tests read them. */
int blacklist_rule_count(const struct blacklist_config *c);
const char *blacklist_rule_id(const struct blacklist_config *c, int k); /* "blacklist.<id>" */

/*
 * The do-not-call values of a run: side data, read by sidedata.c after the
 * rules are loaded and kept apart from the config, which is not changed
 * after loading.  A struct blacklist_dnc holds one set of phones and one of
 * e-mail keys per rule of the config it was made for (borrowed: the config
 * must be alive while values are added or the stage reads them; freeing
 * does not read it).  The batch owns the run's (b->dnc), and the stage
 * reads it there.  NULL on out of memory; blacklist_dnc_free(NULL) is a
 * no-op.
 */
struct blacklist_dnc;
struct blacklist_dnc *blacklist_dnc_new(const struct blacklist_config *c);
void blacklist_dnc_free(struct blacklist_dnc *d);

/*
 * Do-not-call lists fed from the database.  A rule with "query = SELECT ..."
 * asks the caller to run that query (sidedata.c does, after the pull and
 * before the pipeline) and to hand every value of its result to the add
 * functions with the same index q.
 *
 *     for (q = 0; q < blacklist_query_count(c); q++)
 *         sql = blacklist_query(c, q, &rule_id);
 *         for each row: blacklist_add_dnc_value(d, q, PQgetvalue(res, row, col), &err)
 *         blacklist_query_done(d, q)
 *
 * The query returns one or two columns: phones, e-mails, or both (a value
 * holding "@" is taken as an e-mail).  NULL and empty values are skipped.
 */
int blacklist_query_count(const struct blacklist_config *c);
const char *blacklist_query(const struct blacklist_config *c, int q, const char **rule_id);

/*
 * Call after the last value of query q was added.  The stage refuses to run
 * while a query is not done, so a list that was never read cannot silently
 * match nobody.
 */
void blacklist_query_done(struct blacklist_dnc *d, int q);

/*
 * Do-not-call files: "phone_list = PATH" and "email_list = PATH".  Loading
 * the rules only records them; sidedata.c reads each file and hands every
 * value to blacklist_add_file_value(), then calls blacklist_file_done().
 * blacklist_file() returns file f's path (resolved against the rule file
 * that named it), its rule, whether it is an e-mail list, and where the
 * rules set it ("r.ini:2: [blacklist.x] phone_list").  The stage refuses to
 * run while a file is not done.
 */
int blacklist_file_count(const struct blacklist_config *c);
const char *blacklist_file(const struct blacklist_config *c, int f, const char **rule_id,
                           bool *emails, const char **where);
/* A phone (email false) or an e-mail as text; one that does not parse is an error (EXIT_DATA). */
bool blacklist_add_file_value(struct blacklist_dnc *d, int f, const char *text, bool email,
                              struct error *err);
void blacklist_file_done(struct blacklist_dnc *d, int f);
bool blacklist_file_is_done(const struct blacklist_dnc *d, int f);

/* One phone already in canonical E.164 form as a number (972521234567). */
bool blacklist_add_dnc_phone(struct blacklist_dnc *d, int q, uint64_t e164, struct error *err);
/*
 * One e-mail address as text.  It is reduced to the key the stage compares:
 * trimmed, lower case, "+tag" dropped, and for gmail.com / googlemail.com the
 * dots of the local part dropped; the lead's e-mail is reduced the same way,
 * and its email_key (the normaliser's) is compared as well.
 */
bool blacklist_add_dnc_email(struct blacklist_dnc *d, int q, const char *email, struct error *err);
/* A phone or an e-mail as text (see above); a phone that does not parse is an error. */
bool blacklist_add_dnc_value(struct blacklist_dnc *d, int q, const char *text, struct error *err);
/* Whether any rule's do-not-call list of d holds the phone (E.164 as a number). */
bool blacklist_dnc_has_phone(const struct blacklist_dnc *d, uint64_t e164);

#endif /* REFINERY_BLACKLIST_H */
