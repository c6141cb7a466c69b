/*
 * test_phone.c
 *    Unit tests of phone.c: reading numbers under a numbering plan.
 *
 * Every expected value below is the number worked out by hand from the
 * input: the canonical form of 052-4423268 is +972524423268 however it is
 * written, and each repair is the one a person would name.  The inputs are
 * the fourteen formats gen_leads.py writes, its junk numbers, and the
 * repairs of [001-5]; then the plan builder's errors, formatting, the
 * fake-number helper, and a second country's plan to show that nothing is
 * tied to Israel.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"
#include "tap.h"

/* Read `in` and compare type, canonical text and repair bits. */
static void
check(const struct phone_plan *p, const char *in, const char *city, const char *want_type,
      const char *want_num, unsigned want_rep)
{
	struct phone_number o = {0};
	enum phone_type t = phone_normalize(in, strlen(in), p, city, &o);
	char got[32] = "";
	const char *tn = t == PHONE_NONE ? "none" : phone_type_name(t);

	if (t != PHONE_NONE)
		phone_format(p, o.e164, got, sizeof(got));
	is_str(tn, want_type, "\"%s\"%s%s: type", in, city ? " in " : "", city ? city : "");
	if (t == PHONE_NONE)
		return;
	is_str(got, want_num, "\"%s\": number", in);
	is_int(o.repairs, want_rep, "\"%s\": repairs", in);
	if (t == PHONE_INVALID)
		is_int((long long) o.e164, 0, "\"%s\": invalid has no value", in);
}

static void
test_generator_formats(const struct phone_plan *p)
{
	/* fmt_phone(): the same mobile 0524423268 in each of its formats */
	static const char *const mobile[] = {"0524423268",     "052-4423268",     "+972524423268",
	                                     "972524423268",   "972-52-442-3268", "052-442-3268",
	                                     "052 4423268",    "+972-52-4423268", "(052) 4423268",
	                                     "00972524423268", " 0524423268 ",    "052.442.3268"};
	/* and the landline 048123456 */
	static const char *const landline[] = {"048123456",     "04-8123456",     "+97248123456",
	                                       "97248123456",   "972-4-812-3456", "04-812-3456",
	                                       "04 8123456",    "+972-4-8123456", "(04) 8123456",
	                                       "0097248123456", " 048123456 ",    "04.812.3456"};

	for (size_t k = 0; k < sizeof(mobile) / sizeof(mobile[0]); k++)
		check(p, mobile[k], NULL, "mobile", "+972524423268", 0);
	for (size_t k = 0; k < sizeof(landline) / sizeof(landline[0]); k++)
		check(p, landline[k], NULL, "landline", "+97248123456", 0);
	/* formats 4 and 11: the leading zero lost */
	check(p, "524423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_MISSING_ZERO);
	check(p, "52-4423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_MISSING_ZERO);
	check(p, "48123456", NULL, "landline", "+97248123456", PHONE_REPAIR_MISSING_ZERO);
	check(p, "4-8123456", NULL, "landline", "+97248123456", PHONE_REPAIR_MISSING_ZERO);
	check(p, "2-6234567", NULL, "landline", "+97226234567", PHONE_REPAIR_MISSING_ZERO);
	check(p, "9-7654321", NULL, "landline", "+97297654321", PHONE_REPAIR_MISSING_ZERO);
	check(p, "773456789", NULL, "voip", "+972773456789", PHONE_REPAIR_MISSING_ZERO);
	/* every other mobile and landline prefix, and VoIP */
	check(p, "050-1112233", NULL, "mobile", "+972501112233", 0);
	check(p, "0591234560", NULL, "mobile", "+972591234560", 0);
	check(p, "03-5551234", NULL, "landline", "+97235551234", 0);
	check(p, "08-6123456", NULL, "landline", "+97286123456", 0);
	check(p, "09-7654321", NULL, "landline", "+97297654321", 0);
	check(p, "072-2345678", NULL, "voip", "+972722345678", 0);
	check(p, "077 9876543", NULL, "voip", "+972779876543", 0);
	/* other separators and invisible marks */
	check(p,
	      "\xC2\xA0"
	      "052\xE2\x80\x93"
	      "4423268\xE2\x80\x8F",
	      NULL, "mobile", "+972524423268", 0);
	check(p,
	      "052\xD6\xBE"
	      "4423268",
	      NULL, "mobile", "+972524423268", 0);
	check(p, "[052] 442 32 68", NULL, "mobile", "+972524423268", 0);
}

static void
test_repairs(const struct phone_plan *p)
{
	/* the trunk zero kept after the country code */
	check(p, "+972 (0) 52-442-3268", NULL, "mobile", "+972524423268", PHONE_REPAIR_TRUNK_AFTER_CC);
	check(p, "+9720524423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_TRUNK_AFTER_CC);
	check(p, "9720524423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_TRUNK_AFTER_CC);
	check(p, "009720524423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_TRUNK_AFTER_CC);
	check(p, "+972 04-8123456", NULL, "landline", "+97248123456", PHONE_REPAIR_TRUNK_AFTER_CC);
	/* the country code twice */
	check(p, "972972524423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_DOUBLE_CC);
	check(p, "+972 972 52 442 3268", NULL, "mobile", "+972524423268", PHONE_REPAIR_DOUBLE_CC);
	check(p, "+972-972-0524423268", NULL, "mobile", "+972524423268",
	      PHONE_REPAIR_DOUBLE_CC | PHONE_REPAIR_TRUNK_AFTER_CC);
	/* the shipped typo rules: 0972 => 972, 06 => 04, 07 => 08 */
	check(p, "0972524423268", NULL, "mobile", "+972524423268", PHONE_REPAIR_TYPO);
	check(p, "06-6123456", NULL, "landline", "+97246123456", PHONE_REPAIR_TYPO);
	check(p, "07-6234567", NULL, "landline", "+97286234567", PHONE_REPAIR_TYPO);
	/* a 10-digit 07x is VoIP as written: the typo rule must not touch it */
	check(p, "0762345678", NULL, "voip", "+972762345678", 0);
	/* extensions are dropped and recorded */
	check(p, "0524423268 ext 123", NULL, "mobile", "+972524423268", PHONE_REPAIR_EXTENSION);
	check(p, "052-4423268 Ext. 5", NULL, "mobile", "+972524423268", PHONE_REPAIR_EXTENSION);
	check(p, "03-5551234 x12", NULL, "landline", "+97235551234", PHONE_REPAIR_EXTENSION);
	check(p, "03-5551234 extension: 12", NULL, "landline", "+97235551234", PHONE_REPAIR_EXTENSION);
	check(p, "03-5551234 #7", NULL, "landline", "+97235551234", PHONE_REPAIR_EXTENSION);
	check(p, "03-5551234 שלוחה 204", NULL, "landline", "+97235551234", PHONE_REPAIR_EXTENSION);
	check(p, "524423268 ext 9", NULL, "mobile", "+972524423268",
	      PHONE_REPAIR_EXTENSION | PHONE_REPAIR_MISSING_ZERO);
	/* an "extension" without digits is not one */
	check(p, "03-5551234 ext", NULL, "invalid", "", 0);

	{
		struct phone_number o;

		phone_normalize("06-6123456", 10, p, NULL, &o);
		is_str(phone_repair_reason(p, PHONE_REPAIR_TYPO, o.typo), "typo 06 => 04",
		       "the typo's reason names the rule");
		is_str(phone_repair_reason(p, PHONE_REPAIR_MISSING_ZERO, -1), "missing leading zero",
		       "reason: missing leading zero");
		is_str(phone_repair_reason(p, PHONE_REPAIR_DOUBLE_CC, -1), "doubled country code",
		       "reason: doubled country code");
		is_str(phone_repair_reason(p, PHONE_REPAIR_TRUNK_AFTER_CC, -1),
		       "trunk zero after country code", "reason: trunk zero after country code");
		is_str(phone_repair_reason(p, PHONE_REPAIR_CITY, -1), "area code from city",
		       "reason: area code from city");
		is_str(phone_repair_reason(p, PHONE_REPAIR_EXTENSION, -1), "extension dropped",
		       "reason: extension dropped");
		is_str(phone_plan_typo_counter(p, o.typo), "phone_typo:06=>04", "typo counter name");
		is_int(phone_plan_ntypos(p), 3, "the built-in plan has three typo rules");
	}
}

static void
test_invalid_and_none(const struct phone_plan *p)
{
	/* gen_leads.py's JUNK_PHONES that no plan reading accepts */
	check(p, "0000000000", NULL, "invalid", "", 0);
	check(p, "1234567", NULL, "invalid", "", 0);
	check(p, "1111111111", NULL, "invalid", "", 0);
	check(p, "123", NULL, "invalid", "", 0);
	check(p, "0", NULL, "invalid", "", 0);
	check(p, "9999999999", NULL, "invalid", "", 0);
	check(p, "12345678", NULL, "invalid", "", 0);
	check(p, "000", NULL, "invalid", "", 0);
	check(p, "000-0000000", NULL, "invalid", "", 0);
	check(p, "0123456789", NULL, "invalid", "", 0);
	check(p, "9876543210", NULL, "invalid", "", 0);
	check(p, "00000", NULL, "invalid", "", 0);
	/* and those the plan accepts: whether they are fake is the black-list's call */
	check(p, "0501234567", NULL, "mobile", "+972501234567", 0);
	check(p, "050-000-0000", NULL, "mobile", "+972500000000", 0);
	check(p, "+972-50-1234567", NULL, "mobile", "+972501234567", 0);
	/* wrong length, prefixes outside the plan, other countries */
	check(p, "052442326", NULL, "invalid", "", 0);
	check(p, "05244232680", NULL, "invalid", "", 0);
	check(p, "03-123456", NULL, "invalid", "", 0);
	check(p, "05-1234567", NULL, "invalid", "", 0);
	check(p, "071-2345678", NULL, "invalid", "", 0);
	check(p, "+1 212 555 1234", NULL, "invalid", "", 0);
	check(p, "0044 20 7946 0958", NULL, "invalid", "", 0);
	check(p, "+0524423268", NULL, "invalid", "", 0);
	check(p, "0524423268052442326805244232680", NULL, "invalid", "", 0);
	/* letters that are no extension make the text no number */
	check(p, "tel 0524423268", NULL, "invalid", "", 0);
	check(p, "052-4423268 (home)", NULL, "invalid", "", 0);
	check(p, "052+4423268", NULL, "invalid", "", 0);
	/* no digit at all: no phone */
	check(p, "", NULL, "none", "", 0);
	check(p, "   ", NULL, "none", "", 0);
	check(p, "N/A", NULL, "none", "", 0);
	check(p, "-", NULL, "none", "", 0);
	check(p, "אין", NULL, "none", "", 0);
	check(p, "+", NULL, "none", "", 0);
}

static void
test_special(const struct phone_plan *p)
{
	char buf[32];

	check(p, "1-800-800-800", NULL, "special", "+9721800800800", 0);
	check(p, "1700-50-50-50", NULL, "special", "+9721700505050", 0);
	check(p, "1599 555 123", NULL, "special", "+9721599555123", 0);
	check(p, "+972 1800 800 800", NULL, "special", "+9721800800800", 0);
	check(p, "*6700", NULL, "special", "*6700", 0);
	check(p, "* 2700", NULL, "special", "*2700", 0);
	check(p, "*67", NULL, "invalid", "", 0);
	check(p, "*670000", NULL, "invalid", "", 0);
	check(p, "1-801-800-800", NULL, "invalid", "", 0);
	is_int(phone_classify(p, 9726700ULL), PHONE_SPECIAL, "classify: a star number");
	phone_format_national(p, 9721800800800ULL, buf, sizeof(buf));
	is_str(buf, "1800800800", "national form of a 1-800 number has no trunk zero");
	phone_format_national(p, 9726700ULL, buf, sizeof(buf));
	is_str(buf, "*6700", "national form of a star number");
}

static void
test_fields(const struct phone_plan *p)
{
	struct phone_number o[PHONE_FIELD_MAX];
	int n;

	n = phone_parse_field("052-4423268 / 03-5551234", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 2, "\" / \": two numbers");
	is_int((long long) o[0].e164, 972524423268LL, "first of two");
	is_int((long long) o[1].e164, 97235551234LL, "second of two");
	n = phone_parse_field("0524423268 or 035551234", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 2, "\" or \": two numbers");
	is_int((long long) o[1].e164, 97235551234LL, "second after \" or \"");
	n = phone_parse_field("0524423268 OR 035551234", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 2, "\" OR \": two numbers");
	n = phone_parse_field("0524423268 או 035551234", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 2, "Hebrew \" או \": two numbers");
	is_int((long long) o[1].e164, 97235551234LL, "second after Hebrew or");
	n = phone_parse_field("0524423268,035551234;0771234567", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 3, "\",\" and \";\": three numbers");
	is_int(o[2].type, PHONE_VOIP, "third is VoIP");
	/* a slash inside one number is only a separator */
	n = phone_parse_field("052/4423268", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 1, "\"052/4423268\" is one number");
	is_int((long long) o[0].e164, 972524423268LL, "and that number");
	/* one good, one bad: both reported, in order */
	n = phone_parse_field("0524423268 / 12345", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 2, "a valid and an invalid number");
	is_int(o[1].type, PHONE_INVALID, "the second is invalid");
	/* an empty piece is no number */
	n = phone_parse_field("0524423268 / ", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 1, "a trailing separator adds nothing");
	n = phone_parse_field("", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 0, "an empty field holds no number");
	/* more numbers than room: counted, the first ones kept */
	n = phone_parse_field("0501111111,0502222222,0503333333,0504444444", p, NULL, o, 2);
	is_int(n, 4, "four numbers counted");
	is_int((long long) o[1].e164, 972502222222LL, "the first two stored");
	/* gen_leads.py "two_phones" and "phone_ext" shapes */
	n = phone_parse_field("524423268 / 03-5551234", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 2, "nozero format then a second number");
	is_int(o[0].repairs, PHONE_REPAIR_MISSING_ZERO, "the first repaired");
	n = phone_parse_field("(052) 4423268 ext 17", p, NULL, o, PHONE_FIELD_MAX);
	is_int(n, 1, "number with an extension");
	is_int(o[0].repairs, PHONE_REPAIR_EXTENSION, "extension recorded");
}

static void
test_city(void)
{
	struct phone_plan *p = phone_plan_new();
	struct error err = {0};
	bool ok = true;

	ok = ok && phone_plan_add_prefixes(p, PHONE_MOBILE, "050-059", 10, "t", &err);
	ok = ok && phone_plan_add_prefixes(p, PHONE_LANDLINE, "02", 9, "t", &err);
	ok = ok && phone_plan_add_prefixes(p, PHONE_LANDLINE, "03", 9, "t", &err);
	ok = ok && phone_plan_add_prefixes(p, PHONE_LANDLINE, "04", 9, "t", &err);
	ok = ok && phone_plan_add_city(p, "חיפה", "04", "t", &err);
	ok = ok && phone_plan_add_city(p, "Haifa", "04", "t", &err);
	ok = ok && phone_plan_add_city(p, "תל אביב", "03", "t", &err);
	ok = ok && phone_plan_add_city(p, "Tel Aviv", "03", "t", &err);
	ok = ok && phone_plan_add_city(p, "ירושלים", "02", "t", &err);
	ok = ok && phone_plan_add_city(p, "haifa", "04", "t", &err); /* the same again: fine */
	ok = ok && phone_plan_finish(p, "t", &err);
	ok(ok, "a plan with cities builds (%s)", err.msg);

	check(p, "8123456", "חיפה", "landline", "+97248123456", PHONE_REPAIR_CITY);
	check(p, "812-3456", "HAIFA", "landline", "+97248123456", PHONE_REPAIR_CITY);
	check(p, "5551234", "tel-aviv", "landline", "+97235551234", PHONE_REPAIR_CITY);
	check(p, "5551234", " Tel  Aviv ", "landline", "+97235551234", PHONE_REPAIR_CITY);
	check(p, "6234567", "ירושלים", "landline", "+97226234567", PHONE_REPAIR_CITY);
	/* no city, an unknown one, or a number that is no local number */
	check(p, "8123456", NULL, "invalid", "", 0);
	check(p, "8123456", "Eilat", "invalid", "", 0);
	check(p, "1234567", "Haifa", "invalid", "", 0);
	check(p, "0812345", "Haifa", "invalid", "", 0);
	check(p, "812345", "Haifa", "invalid", "", 0);
	check(p, "+8123456", "Haifa", "invalid", "", 0);
	/* the city never overrides a number that is valid as written */
	check(p, "0524423268", "Haifa", "mobile", "+972524423268", 0);
	phone_plan_free(p);

	/* a city whose area code is no landline prefix */
	p = phone_plan_new();
	phone_plan_add_prefixes(p, PHONE_LANDLINE, "04", 9, "t", &err);
	phone_plan_add_prefixes(p, PHONE_MOBILE, "050", 10, "t", &err);
	ok(phone_plan_add_city(p, "Somewhere", "05", "t.ini:9", &err), "city added");
	ok(!phone_plan_finish(p, "[phone_plan]", &err), "finish refuses a mobile area code");
	is_str(err.msg,
	       "[phone_plan]: area code \"05\" of city \"Somewhere\" is not a landline "
	       "prefix of the plan",
	       "message names the city and the code");
	ok(!phone_plan_add_city(p, "Haifa", "04", "t", &err) ||
	       !phone_plan_add_city(p, "HAIFA", "02", "t.ini:3: [phone_area_codes] 02", &err),
	   "a city given two area codes is refused");
	is_str(err.msg,
	       "t.ini:3: [phone_area_codes] 02: city \"HAIFA\" is given area codes "
	       "\"04\" and \"02\"",
	       "message names both codes");
	ok(!phone_plan_add_city(p, "Haifa", "4", "t", &err), "area code without trunk refused");
	ok(!phone_plan_add_city(p, " - ", "04", "t", &err), "empty city refused");
	phone_plan_free(p);
}

static void
test_options(void)
{
	struct phone_plan *p = phone_plan_new();
	struct error err = {0};

	phone_plan_add_prefixes(p, PHONE_MOBILE, "050-059", 10, "t", &err);
	phone_plan_add_prefixes(p, PHONE_LANDLINE, "04", 9, "t", &err);
	phone_plan_set_repair_missing_zero(p, false);
	ok(phone_plan_finish(p, "t", &err), "plan without missing-zero repair");
	check(p, "524423268", NULL, "invalid", "", 0);
	check(p, "4-8123456", NULL, "invalid", "", 0);
	check(p, "0524423268", NULL, "mobile", "+972524423268", 0);
	check(p, "*6700", NULL, "invalid", "", 0);         /* no star numbers in this plan */
	check(p, "0972524423268", NULL, "invalid", "", 0); /* nor typo rules */
	phone_plan_free(p);

	/* [001-5]'s "4" written for "04" as a typo rule, instead of the general repair */
	p = phone_plan_new();
	phone_plan_add_prefixes(p, PHONE_MOBILE, "050-059", 10, "t", &err);
	phone_plan_add_prefixes(p, PHONE_LANDLINE, "04", 9, "t", &err);
	phone_plan_set_repair_missing_zero(p, false);
	ok(phone_plan_add_typo(p, "4 => 04", "t", &err) && phone_plan_finish(p, "t", &err),
	   "plan with the typo rule 4 => 04");
	check(p, "4-8123456", NULL, "landline", "+97248123456", PHONE_REPAIR_TYPO);
	check(p, "524423268", NULL, "invalid", "", 0);
	check(p, "04-8123456", NULL, "landline", "+97248123456", 0);
	phone_plan_free(p);
}

static void
test_builder_errors(void)
{
	struct phone_plan *p = phone_plan_new();
	struct error err = {0};

	ok(!phone_plan_add_prefixes(p, PHONE_MOBILE, "05x", 10, "r.ini:4: [phone_plan] mobile", &err),
	   "a prefix with a letter is refused");
	is_str(err.msg,
	       "r.ini:4: [phone_plan] mobile: \"05x\" is not a prefix or a range of "
	       "prefixes",
	       "message");
	ok(!phone_plan_add_prefixes(p, PHONE_MOBILE, "050-59", 10, "w", &err),
	   "a range of unequal lengths is refused");
	ok(!phone_plan_add_prefixes(p, PHONE_MOBILE, "059-050", 10, "w", &err),
	   "a backwards range is refused");
	ok(!phone_plan_add_prefixes(p, PHONE_MOBILE, "0", 10, "w", &err),
	   "a prefix that is only the trunk is refused");
	ok(!phone_plan_add_prefixes(p, PHONE_MOBILE, "052", 3, "w", &err),
	   "a length no longer than the prefix is refused");
	ok(!phone_plan_add_prefixes(p, PHONE_MOBILE, "052", 16, "w", &err),
	   "a length beyond E.164 is refused");
	ok(!phone_plan_add_typo(p, "06 -> 04", "w", &err), "a typo rule without \"=>\" refused");
	ok(!phone_plan_add_typo(p, "06 => 06", "w", &err), "a typo rule changing nothing refused");
	ok(!phone_plan_add_typo(p, "6a => 04", "w", &err), "a typo rule with a letter refused");
	ok(phone_plan_add_typo(p, "  06=>04 ", "w", &err), "spaces around \"=>\" are optional");
	ok(!phone_plan_finish(p, "[phone_plan]", &err), "a plan without prefixes is refused");
	is_str(err.msg, "[phone_plan]: the numbering plan has no prefixes", "message");
	ok(phone_plan_add_prefixes(p, PHONE_MOBILE, "050-059", 10, "w", &err), "prefixes added");
	ok(!phone_plan_set_codes(p, "972", "0", "00", "w", &err), "codes after prefixes refused");
	phone_plan_set_star_length(p, 9);
	ok(!phone_plan_finish(p, "[phone_plan]", &err), "star numbers as long as a number refused");
	phone_plan_free(p);

	p = phone_plan_new();
	ok(!phone_plan_set_codes(p, "0972", "0", "00", "w", &err), "a 4-digit country code refused");
	ok(!phone_plan_set_codes(p, "972", "a", "00", "w", &err), "a letter trunk refused");
	ok(!phone_plan_set_codes(p, "972", "0", "", "w", &err), "an empty international prefix "
	                                                        "refused");
	ok(!phone_plan_set_codes(p, "972", "0", "0", "w", &err), "intl prefix = trunk refused");
	phone_plan_free(p);
}

/* A plan of another country, only from the builder: the UK's mobiles and London. */
static void
test_other_country(void)
{
	struct phone_plan *p = phone_plan_new();
	struct error err = {0};
	bool ok;

	ok = phone_plan_set_codes(p, "44", "0", "00", "t", &err) &&
	     phone_plan_add_prefixes(p, PHONE_MOBILE, "071-079", 11, "t", &err) &&
	     phone_plan_add_prefixes(p, PHONE_LANDLINE, "020", 11, "t", &err) &&
	     phone_plan_finish(p, "t", &err);
	ok(ok, "a UK plan builds (%s)", err.msg);
	check(p, "07700 900123", NULL, "mobile", "+447700900123", 0);
	check(p, "+44 7700 900123", NULL, "mobile", "+447700900123", 0);
	check(p, "0044 (0)7700 900123", NULL, "mobile", "+447700900123", PHONE_REPAIR_TRUNK_AFTER_CC);
	check(p, "020 7946 0958", NULL, "landline", "+442079460958", 0);
	check(p, "7700900123", NULL, "mobile", "+447700900123", PHONE_REPAIR_MISSING_ZERO);
	check(p, "0524423268", NULL, "invalid", "", 0);
	check(p, "+972524423268", NULL, "invalid", "", 0);
	phone_plan_free(p);
}

static void
test_format(const struct phone_plan *p)
{
	char buf[32];
	size_t n;

	n = phone_format(p, 972524423268ULL, buf, sizeof(buf));
	is_str(buf, "+972524423268", "format: E.164 text");
	is_int(n, 13, "format: length");
	n = phone_format(p, 972524423268ULL, buf, 5);
	is_str(buf, "+972", "format: cut to the buffer");
	is_int(n, 13, "format: full length returned when cut");
	phone_format(p, 0, buf, sizeof(buf));
	is_str(buf, "", "format: 0 is empty");
	phone_format_national(p, 972524423268ULL, buf, sizeof(buf));
	is_str(buf, "0524423268", "national: mobile");
	phone_format_national(p, 97248123456ULL, buf, sizeof(buf));
	is_str(buf, "048123456", "national: landline");
	phone_format_national(p, 12125551234ULL, buf, sizeof(buf));
	is_str(buf, "+12125551234", "national: a foreign number stays international");

	is_int(phone_classify(p, 972524423268ULL), PHONE_MOBILE, "classify mobile");
	is_int(phone_classify(p, 97248123456ULL), PHONE_LANDLINE, "classify landline");
	is_int(phone_classify(p, 972722345678ULL), PHONE_VOIP, "classify voip");
	is_int(phone_classify(p, 97252442326ULL), PHONE_INVALID, "classify a short mobile");
	is_int(phone_classify(p, 12125551234ULL), PHONE_INVALID, "classify a foreign number");
	is_int(phone_classify(p, 0), PHONE_INVALID, "classify 0");
}

/* phone_national_digits(): `in` read as dialled at home, and whose it is. */
static void
check_national(const struct phone_plan *p, const char *in, const char *want, enum phone_reach reach,
               const char *plan)
{
	char out[PHONE_NATIONAL_BUF];
	enum phone_reach got;
	int n = phone_national_digits(p, in, strlen(in), out, sizeof(out), &got);

	is_str(out, want, "%s national digits of \"%s\"", plan, in);
	is_int(n, (long long) strlen(want), "%s national digits of \"%s\": count", plan, in);
	is_int(got, reach, "%s national digits of \"%s\": %s", plan, in,
	       reach == PHONE_REACH_HOME      ? "home"
	       : reach == PHONE_REACH_SERVICE ? "service"
	                                      : "abroad");
}

/*
 * The lenient reading the black-list judges fakes by, under Israel's plan
 * (what the black-list always did) and a UK plan, where the old fixed
 * Israeli reader called "1632 960123" a service number (it begins with 1),
 * kept "0800 555 0199" as an ordinary number and read "+972..." as a home
 * number and "+44..." as a foreign one.
 */
static void
test_national_digits(const struct phone_plan *il)
{
	struct phone_plan *uk = phone_plan_new();
	struct error err = {0};
	bool ok;

	check_national(il, "052-4423268", "0524423268", PHONE_REACH_HOME, "IL");
	check_national(il, "+972-50-1234567", "0501234567", PHONE_REACH_HOME, "IL");
	check_national(il, "00972 52 442 3268", "0524423268", PHONE_REACH_HOME, "IL");
	check_national(il, "972524423268", "0524423268", PHONE_REACH_HOME, "IL");
	check_national(il, "4-8123456", "048123456", PHONE_REACH_HOME, "IL");
	check_national(il, "524423268", "0524423268", PHONE_REACH_HOME, "IL");
	check_national(il, "0524423268 ext 12", "0524423268", PHONE_REACH_HOME, "IL");
	check_national(il, "1-800-800-800", "1800800800", PHONE_REACH_SERVICE, "IL");
	check_national(il, "144", "144", PHONE_REACH_SERVICE, "IL");
	check_national(il, "*6700", "6700", PHONE_REACH_SERVICE, "IL");
	check_national(il, "12345678", "012345678", PHONE_REACH_HOME, "IL");
	check_national(il, "+1 212 555 0199", "12125550199", PHONE_REACH_ABROAD, "IL");
	check_national(il, "0044 7700 900123", "447700900123", PHONE_REACH_ABROAD, "IL");
	check_national(il, "000", "000", PHONE_REACH_HOME, "IL");

	ok = phone_plan_set_codes(uk, "44", "0", "00", "t", &err) &&
	     phone_plan_add_prefixes(uk, PHONE_MOBILE, "071-079", 11, "t", &err) &&
	     phone_plan_add_prefixes(uk, PHONE_LANDLINE, "01", 11, "t", &err) &&
	     phone_plan_add_prefixes(uk, PHONE_SPECIAL, "080", 11, "t", &err) &&
	     phone_plan_finish(uk, "t", &err);
	ok(ok, "a UK plan with freephone 080 builds (%s)", err.msg);
	check_national(uk, "07700 900123", "07700900123", PHONE_REACH_HOME, "UK");
	check_national(uk, "+44 7700 900123", "07700900123", PHONE_REACH_HOME, "UK");
	check_national(uk, "0044 7700 900123", "07700900123", PHONE_REACH_HOME, "UK");
	check_national(uk, "1632 960123", "01632960123", PHONE_REACH_HOME, "UK");
	check_national(uk, "0800 555 0199", "08005550199", PHONE_REACH_SERVICE, "UK");
	check_national(uk, "+44 800 555 0199", "08005550199", PHONE_REACH_SERVICE, "UK");
	check_national(uk, "+972 52 442 3268", "972524423268", PHONE_REACH_ABROAD, "UK");
	check_national(uk, "07000 000000", "07000000000", PHONE_REACH_HOME, "UK");
	phone_plan_free(uk);
}

/* phone_fake_digits() on `text` as the black-list reads it, under plan p, runs of 7. */
static const char *
fake(const struct phone_plan *p, const char *text)
{
	char nat[PHONE_NATIONAL_BUF];
	enum phone_reach reach;

	if (phone_national_digits(p, text, strlen(text), nat, sizeof(nat), &reach) == 0)
		return "no digits";
	return phone_fake_digits(p, nat, reach, 7);
}

/*
 * The fake-phone test.  Israel: what the black-list's own "last seven
 * digits" test caught stays caught, the subscriber part being seven digits
 * after every prefix.  The UK with the prefixes 071-079 and 020 (the plan
 * of fixtures/normalize/phone_other_plan): subscriber parts of eight
 * digits, so a run of seven at the end still counts; with 01632 (six digits
 * after it) a subscriber part of one digit is fake although seven digits
 * at the end are not one digit.
 */
static void
test_fake(const struct phone_plan *il)
{
	struct phone_plan *uk = phone_plan_new();
	struct error err = {0};
	bool ok;

	is_str(fake(il, "050-0000000"), "one digit repeated", "IL 050-0000000");
	is_str(fake(il, "052-2222222"), "one digit repeated", "IL 052-2222222");
	is_str(fake(il, "054-1111111"), "one digit repeated", "IL 054-1111111");
	is_str(fake(il, "03-3333333"), "one digit repeated", "IL 03-3333333");
	is_str(fake(il, "0000000000"), "one digit repeated", "IL 0000000000");
	is_str(fake(il, "+972-50-1234567"), "ascending digits", "IL 050-1234567");
	is_str(fake(il, "054-7654321"), "descending digits", "IL 054-7654321");
	is_str(fake(il, "9876543210"), "descending digits", "IL 9876543210 (no prefix fits)");
	is_str(fake(il, "12345678"), "ascending digits", "IL 12345678 with its 0");
	is_str(fake(il, "050-1234568"), "ascending digits", "IL the prefix's 0 completes a run");
	is_str(fake(il, "+1 212 7777777"), "one digit repeated", "IL a foreign number's last seven");
	is_str(fake(il, "052-4423268"), NULL, "IL a real mobile");
	is_str(fake(il, "052-1234568"), NULL, "IL a run of six is no run");
	is_str(fake(il, "052-1111112"), NULL, "IL six equal digits then another");
	is_str(fake(il, "04-8123456"), NULL, "IL a landline");
	is_str(fake(il, "1-800-800-800"), NULL, "IL a service number is not judged");
	is_str(fake(il, "*6700"), NULL, "IL a star number is not judged");

	ok = phone_plan_set_codes(uk, "44", "0", "00", "t", &err) &&
	     phone_plan_add_prefixes(uk, PHONE_LANDLINE, "01632", 11, "t", &err) &&
	     phone_plan_add_prefixes(uk, PHONE_MOBILE, "071-079", 11, "t", &err) &&
	     phone_plan_add_prefixes(uk, PHONE_LANDLINE, "020", 11, "t", &err) &&
	     phone_plan_finish(uk, "t", &err);
	ok(ok, "a UK plan with 01632 builds (%s)", err.msg);
	is_str(fake(uk, "01632 999999"), "one digit repeated", "UK 01632 999999");
	is_str(fake(uk, "+44 1632 999999"), "one digit repeated", "UK +44 1632 999999");
	is_str(fake(uk, "01632 654321"), "descending digits", "UK 01632 654321");
	is_str(fake(uk, "07910 000000"), "one digit repeated", "UK 07910 000000: seven at the end");
	is_str(fake(uk, "020 8888 8888"), "one digit repeated", "UK 020 8888 8888");
	is_str(fake(uk, "01632 960123"), NULL, "UK 01632 960123 (a real-looking number)");
	is_str(fake(uk, "07700 900123"), NULL, "UK 07700 900123");
	is_str(fake(uk, "020 7946 0958"), NULL, "UK 020 7946 0958");
	is_str(fake(uk, "07700 999999"), NULL,
	       "UK 07700 999999: after 07 the subscriber part is 70999999");
	phone_plan_free(uk);
}

int
main(void)
{
	struct phone_plan *il = phone_plan_israel();

	ok(il != NULL, "the built-in Israeli plan builds");
	if (il == NULL)
		return done_testing();
	test_generator_formats(il);
	test_repairs(il);
	test_invalid_and_none(il);
	test_special(il);
	test_fields(il);
	test_format(il);
	test_fake(il);
	test_city();
	test_options();
	test_builder_errors();
	test_other_country();
	test_national_digits(il);
	phone_plan_free(il);
	phone_plan_free(NULL);
	return done_testing();
}
