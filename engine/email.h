/*
 * email.h
 *    E-mail addresses: cleaning, a syntax check, domain typo repair and an
 *    identity key under configurable provider rules.
 *
 * email_normalize() trims and lower-cases an address, checks its shape,
 * fixes a mistyped domain from the rules' typo map (gmial.com -> gmail.com)
 * and builds the identity key: the address as the provider delivers it
 * (gmail ignores dots and "+tags" in the local part and treats
 * googlemail.com as gmail.com, so "Yossi.Cohen+fb@googlemail.com" and
 * "yossicohen@gmail.com" share a key).  Rules are built once, then only
 * read; every function is safe in any number of threads and allocates
 * nothing while normalising.
 */
#ifndef REFINERY_EMAIL_H
#define REFINERY_EMAIL_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

/*
 * RFC 5321: 254 bytes of address; buffers need one more for the NUL.  A
 * key may be longer than its address when the provider's canonical domain
 * is longer than the one written: a 64-byte local part, "@", 253 bytes.
 */
#define EMAIL_MAX     254
#define EMAIL_BUF     (EMAIL_MAX + 1)
#define EMAIL_KEY_BUF 320

enum email_result
{
	EMAIL_NONE = 0, /* no address: NULL, empty or white space only */
	EMAIL_VALID,
	EMAIL_INVALID /* given, but not an address */
};

/* What email_normalize() changed beyond trimming and case (bits). */
enum email_fix
{
	EMAIL_FIX_DOMAIN_TYPO = 1 << 0 /* the domain was in the typo map */
};

struct email_rules;

/* Empty rules: local parts lower-cased, no typos, no providers. NULL on OOM. */
struct email_rules *email_rules_new(void);
void email_rules_free(struct email_rules *er); /* NULL is a no-op */

/* Keep the case of local parts in the normalised address (the key folds it anyway). */
void email_rules_set_lower_local(struct email_rules *er, bool on);

/*
 * A mistyped domain and its correction ("gmial.com", "gmail.com").  Both
 * must be valid domains.  `where` prefixes messages ("rules.ini:40:
 * [email_typos] gmial.com"); EXIT_RULES for bad values.
 */
bool email_rules_add_typo(struct email_rules *er, const char *wrong, const char *right,
                          const char *where, struct error *err);

/*
 * A provider: the domains it serves, whether it ignores dots in local
 * parts, whether it delivers "local+tag" to "local", and the domain its
 * keys use (NULL or "" keeps each address's own domain).  A domain may
 * belong to one provider only.
 */
bool email_rules_add_provider(struct email_rules *er, const char *name, char *const *domains,
                              int ndomains, bool ignore_dots, bool plus_tags,
                              const char *canonical_domain, const char *where, struct error *err);

/* After the last add: sort for lookup; checks that no domain is both a typo and a provider's. */
bool email_rules_finish(struct email_rules *er, struct error *err);

/*
 * Normalise one address (`in` may be NULL).  On EMAIL_VALID, `norm` holds
 * the trimmed address with a lower-case domain (and local part, unless
 * turned off) and the typo fixed (EMAIL_BUF bytes), and `key` the identity key
 * (EMAIL_KEY_BUF bytes).  *fixes gets enum email_fix bits.  On EMAIL_NONE and
 * EMAIL_INVALID both buffers hold "".
 */
enum email_result email_normalize(const struct email_rules *er, const char *in, char *norm,
                                  char *key, unsigned *fixes);

/* True when `s` (len bytes) is a syntactically valid domain name of two labels or more. */
bool email_valid_domain(const char *s, size_t len);

/*
 * The key of the do-not-call lists, for an address from outside the rules
 * (a list, a lead's address): trimmed, lower case, "+tag" dropped for any
 * domain, and for gmail.com and googlemail.com the dots of the local part
 * dropped and the domain gmail.com.  No syntax check beyond one "@" with
 * text on both sides: matching a little too much is the safe side for a
 * do-not-call list.  Writes into out (`size` bytes, EMAIL_KEY_BUF will do);
 * false when the text is no address or is EMAIL_KEY_BUF bytes or longer.
 */
bool email_loose_key(const char *s, char *out, size_t size);

/*
 * De-duplication's test for one mailbox written with and without dots on
 * any provider: email_without_dots() writes the address without the dots
 * of its local part (at most `size` bytes, no NUL) and returns the length;
 * email_same_but_dots() is true when two addresses have the same domain
 * and the same local part once its dots are left out.
 */
size_t email_without_dots(const char *s, char *out, size_t size);
bool email_same_but_dots(const char *a, const char *b);

#endif /* REFINERY_EMAIL_H */
