/*
 * phone.h
 *    Telephone numbers: a configurable numbering plan, parsing of the many
 *    ways people write a number, repairs, and the canonical E.164 form.
 *
 * A plan (Israel's by default) lists, per line type, the national prefixes
 * and the length of a national number.  phone_normalize() reads one number
 * as written ("052-442 3268", "+972 (0)52...", "4-8123456", "*6700") and
 * returns its type and its E.164 digits as an integer (972524423268), with
 * the repairs it needed as bits.  Everything here is pure: a finished plan
 * is read-only and may be shared by any number of threads.
 */
#ifndef REFINERY_PHONE_H
#define REFINERY_PHONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "error.h"

/* Longest run of digits looked at; longer text is not a phone number. */
#define PHONE_MAX_DIGITS 20
/* Longest national prefix and typo pattern, in digits. */
#define PHONE_MAX_PREFIX 6
/* How many numbers phone_parse_field() reads from one field at most. */
#define PHONE_FIELD_MAX 8

/* What was repaired to make a number valid (bits of phone_number.repairs). */
enum phone_repair
{
	PHONE_REPAIR_MISSING_ZERO = 1 << 0,   /* "524423268": the trunk 0 was lost */
	PHONE_REPAIR_DOUBLE_CC = 1 << 1,      /* "972972...": the country code twice */
	PHONE_REPAIR_TRUNK_AFTER_CC = 1 << 2, /* "+9720...": trunk 0 kept after 972 */
	PHONE_REPAIR_TYPO = 1 << 3,           /* a typo rule of the plan (index in .typo) */
	PHONE_REPAIR_CITY = 1 << 4,           /* a local number completed from the city */
	PHONE_REPAIR_EXTENSION = 1 << 5       /* "ext 12", "x12", "שלוחה 12" dropped */
};
#define PHONE_REPAIR_KINDS 6

/* One number as read. */
struct phone_number
{
	uint64_t e164;        /* E.164 digits, e.g. 972524423268; 0 when invalid */
	enum phone_type type; /* never PHONE_NONE */
	unsigned repairs;     /* enum phone_repair bits */
	int typo;             /* the plan's typo rule applied, or -1 */
};

/* A numbering plan: opaque; built, finished, then read-only. */
struct phone_plan;

/*
 * An empty plan: country code 972, trunk prefix 0, international prefix 00,
 * no prefixes, no star numbers, missing-zero repair on.  Add prefixes, then
 * call phone_plan_finish().  NULL on out of memory.
 */
struct phone_plan *phone_plan_new(void);

/*
 * Israel's plan as shipped in rules/normalize.ini.part: mobile 050-059 and
 * VoIP 072-079 (10 digits), landline 02/03/04/08/09 (9 digits), special
 * 1599/1700/1800 (10 digits), star numbers *NNNN, typo rules "0972 => 972",
 * "06 => 04", "07 => 08"; no city map.  Finished.  NULL on out of memory.
 */
struct phone_plan *phone_plan_israel(void);
void phone_plan_free(struct phone_plan *p); /* NULL is a no-op */

/*
 * Setting up a plan.  `where` prefixes error messages (e.g. "rules.ini:12:
 * [phone_plan] mobile"); errors are EXIT_RULES, out of memory EXIT_INTERNAL.
 *
 * phone_plan_set_codes: country code (1-3 digits), trunk prefix (0-2 digits,
 *   "" for none) and international prefix (1-4 digits).
 * phone_plan_add_prefixes: one item, a national prefix as dialled at home
 *   ("052", "1700") or a range of them ("050-059"), and the length in digits
 *   of a whole national number with that prefix, trunk prefix included.
 * phone_plan_add_typo: "from => to", digit strings: a number that is not
 *   valid as written and begins with `from` is tried with `to` instead.
 * phone_plan_add_city: a city (any script) whose local 7-digit numbers take
 *   `area` ("04") in front.  Cities compare case- and space-insensitively.
 */
bool phone_plan_set_codes(struct phone_plan *p, const char *country, const char *trunk,
                          const char *intl, const char *where, struct error *err);
bool phone_plan_add_prefixes(struct phone_plan *p, enum phone_type type, const char *item,
                             int length, const char *where, struct error *err);
bool phone_plan_add_typo(struct phone_plan *p, const char *rule, const char *where,
                         struct error *err);
bool phone_plan_add_city(struct phone_plan *p, const char *city, const char *area,
                         const char *where, struct error *err);
void phone_plan_set_star_length(struct phone_plan *p, int digits); /* 0 = none */
void phone_plan_set_repair_missing_zero(struct phone_plan *p, bool on);
/* Check the whole plan (a city's area code must be a landline prefix, ...). */
bool phone_plan_finish(struct phone_plan *p, const char *where, struct error *err);

/*
 * The plan's typo rules: their count, the reason text of rule k ("typo 06 =>
 * 04") and a counter name for it ("phone_typo:06=>04"); owned by the plan.
 */
int phone_plan_ntypos(const struct phone_plan *p);
const char *phone_plan_typo_reason(const struct phone_plan *p, int k);
const char *phone_plan_typo_counter(const struct phone_plan *p, int k);

/*
 * Read one number written as text (`len` bytes, need not be NUL-terminated).
 * Spaces, dashes, dots and brackets are ignored; a trailing extension is
 * dropped and recorded.  `city` (may be NULL) completes a 7-digit local
 * number when the plan maps it to an area code.  Returns PHONE_NONE when the
 * text holds no digit (out untouched), else the type stored in out->type:
 * PHONE_INVALID when no reading fits the plan.  Validity is by the plan
 * only: 050-0000000 is a valid mobile here (see phone_fake_digits()).
 */
enum phone_type phone_normalize(const char *in, size_t len, const struct phone_plan *p,
                                const char *city, struct phone_number *out);

/*
 * Read every number of one field: numbers are separated by "/", ",", ";",
 * "|", a line break, " or " or " או ".  When a piece is invalid but the
 * whole field read as one number is valid ("052/4423268"), that one number
 * is the result.  Stores up to `max` numbers in order (valid and invalid);
 * returns how many the field holds (may exceed `max`).
 */
int phone_parse_field(const char *in, const struct phone_plan *p, const char *city,
                      struct phone_number *out, int max);

/* Where phone_national_digits() found a number to belong. */
enum phone_reach
{
	PHONE_REACH_HOME,    /* the plan's country, or no sign of another */
	PHONE_REACH_SERVICE, /* a star code, or it begins as the plan's special numbers only do */
	PHONE_REACH_ABROAD   /* another country's: its digits from the country code on */
};

/* Room for what phone_national_digits() writes. */
#define PHONE_NATIONAL_BUF 32

/*
 * The digits of a number as written, in the form dialled at home under the
 * plan (trunk prefix in front where the plan dials one), whether or not the
 * plan accepts the number: for checks that judge what people typed, such
 * as the black-list's fake-phone check, where phone_normalize() would only
 * say "invalid".  Reads leniently: every character but digits, a leading
 * "+" or "*" is skipped until the first digit, and a letter, "#" or any
 * non-ASCII byte after it ends the number ("ext 12", "שלוחה 12").  The
 * country code (after "+", the international prefix, or bare on a number
 * too long to be dialled at home) is replaced by the trunk prefix; a number
 * as long as a national number without its trunk prefix gets it back; a
 * "+" or the international prefix before another country code makes it
 * PHONE_REACH_ABROAD, left as its digits.  Writes the digits and a NUL into
 * out (PHONE_NATIONAL_BUF bytes) and returns their count, 0 when the text
 * holds no digit; *reach says whose number it is.
 */
int phone_national_digits(const struct phone_plan *p, const char *in, size_t len, char *out,
                          size_t size, enum phone_reach *reach);

/*
 * Text of a canonical number: "+972524423268", or "*6700" for a star
 * number.  phone_format_national gives the form dialled at home
 * ("0524423268", "1800800800", "*6700").  Both write at most size-1 bytes
 * and a NUL and return the length of the whole text (as snprintf does).
 */
size_t phone_format(const struct phone_plan *p, uint64_t e164, char *buf, size_t size);
size_t phone_format_national(const struct phone_plan *p, uint64_t e164, char *buf, size_t size);

/* The type of a canonical number under the plan (PHONE_INVALID if none fits). */
enum phone_type phone_classify(const struct phone_plan *p, uint64_t e164);

/*
 * The black-list's fake-phone test: why a number looks made up, or NULL.
 * `digits` and `reach` are what phone_national_digits() gave for it.  Fake
 * is a number ending in `run` equal digits ("050-0000000") or holding `run`
 * digits up or down in a row anywhere ("050-1234568"), or, at home, one
 * whose subscriber part (the digits after the plan's prefix, when the plan
 * has one that fits the number and leaves at least five) is one digit
 * repeated or a run up or down: under a plan with the prefix 01632,
 * "01632 999999".  Service numbers are never called fake here.
 */
const char *phone_fake_digits(const struct phone_plan *p, const char *digits,
                              enum phone_reach reach, int run);

/*
 * The reason text of one repair bit ("missing leading zero", ...); for
 * PHONE_REPAIR_TYPO the plan's rule `typo`.  Static or owned by the plan.
 */
const char *phone_repair_reason(const struct phone_plan *p, unsigned bit, int typo);

#endif /* REFINERY_PHONE_H */
