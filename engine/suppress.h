/*
 * suppress.h
 *    People erased on request (`refinery forget`) are never imported again.
 *
 * The database keeps no contact of an erased person, only salted SHA-256
 * hashes of them in refinery.suppressed (the salt in refinery.forget_salt).
 * A run loads the set before its stages, and the black-list stage first
 * marks every lead carrying a suppressed phone or e-mail address: verdict
 * blacklisted, rule "suppress.forgotten", and every field but the lead id
 * cleared, so no stage reads and no writer writes the person's data.  The
 * write-back locks the list against a concurrent `forget` and fails the run
 * (nothing written) if a person was erased while it worked.
 *
 * A hash is SHA-256(salt || kind || ":" || value), kind "phone" with the
 * E.164 digits (no "+") or "email" with the normalised address.
 */
#ifndef REFINERY_SUPPRESS_H
#define REFINERY_SUPPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "batch.h"
#include "error.h"

#define SUPPRESS_SALT_BYTES 32
#define SUPPRESS_HASH_BYTES 32
#define SUPPRESS_HEX_BYTES  (2 * SUPPRESS_HASH_BYTES + 1) /* a hash as text, with its NUL */
#define SUPPRESS_RULE       "suppress.forgotten"

struct suppress_set
{
	unsigned char salt[SUPPRESS_SALT_BYTES];
	size_t n;
	unsigned char (*hash)[SUPPRESS_HASH_BYTES]; /* sorted */
};

/* hash of one contact; kind is "phone" or "email" */
void suppress_hash(const unsigned char *salt, const char *kind, const char *value,
                   unsigned char out[SUPPRESS_HASH_BYTES]);
void suppress_hash_phone(const unsigned char *salt, uint64_t e164,
                         unsigned char out[SUPPRESS_HASH_BYTES]);

/* The database's salt (refinery.forget_salt); EXIT_DATA when it is missing. */
bool suppress_read_salt(PGconn *conn, unsigned char salt[SUPPRESS_SALT_BYTES], struct error *err);
/* A hash as refinery.suppressed stores it: 64 lower-case hex digits. */
void suppress_hex(const unsigned char h[SUPPRESS_HASH_BYTES], char out[SUPPRESS_HEX_BYTES]);

/* Read the set from the database (it may be empty). */
bool suppress_load(PGconn *conn, struct suppress_set **out, struct error *err);

/*
 * In the write transaction: lock the list against `forget` until commit and
 * fail (EXIT_DATA) if it grew since s was loaded.  NULL s: nothing to check.
 */
bool suppress_unchanged(PGconn *conn, const struct suppress_set *s, struct error *err);
void suppress_free(struct suppress_set *s); /* NULL is a no-op */

/* whether a phone (E.164 as a number) is suppressed */
bool suppress_has_phone(const struct suppress_set *s, uint64_t e164);
/* whether a lead (its normalised phones and e-mail) carries a suppressed contact */
bool suppress_row_hit(const struct suppress_set *s, const struct batch *b, size_t i);

/*
 * Mark and clear every lead of b that carries a suppressed contact and is
 * not yet marked, and once clusters exist every other record of its
 * cluster; returns how many were marked now, SIZE_MAX when out of memory.
 * `nthreads` threads share the work (stage_threads()).
 */
size_t suppress_apply(const struct suppress_set *s, struct batch *b, int nthreads);

#endif /* REFINERY_SUPPRESS_H */
