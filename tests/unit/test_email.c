/*
 * test_email.c
 *    Unit tests of email.c: cleaning, the syntax check, domain typos and
 *    provider identity keys.
 *
 * The rules are built here through the API (a gmail provider, a Microsoft
 * one with plus tags but significant dots, a few typos), so the expected
 * keys follow from those rules by hand: "Yossi.Cohen+fb@GoogleMail.com"
 * delivers to yossicohen@gmail.com.  Inputs follow gen_leads.py's dirt
 * (case, white space, gmail dots, "+tags", gmial/wala/hotmial) and the
 * junk e-mails it plants.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "email.h"
#include "tap.h"

static const char *
result_name(enum email_result r)
{
	return r == EMAIL_NONE ? "none" : r == EMAIL_VALID ? "valid" : "invalid";
}

/* The input for a test's description: control characters as \xNN, cut at 60 bytes. */
static const char *
show(const char *in)
{
	static char buf[256];
	size_t o = 0;

	if (in == NULL)
		return "(null)";
	for (const char *p = in; *p && o < 60; p++)
	{
		if ((unsigned char) *p < 0x20)
			o += (size_t) snprintf(buf + o, sizeof(buf) - o, "\\x%02x", (unsigned char) *p);
		else
			buf[o++] = *p;
	}
	buf[o] = '\0';
	return buf;
}

static void
check(const struct email_rules *er, const char *in, const char *want_norm, const char *want_key,
      unsigned want_fixes)
{
	char norm[EMAIL_BUF], key[EMAIL_KEY_BUF];
	unsigned fixes = 99;
	enum email_result r = email_normalize(er, in, norm, key, &fixes);
	const char *s = show(in);

	is_str(result_name(r), want_norm ? "valid" : "invalid", "\"%s\": %s", s,
	       want_norm ? "valid" : "invalid");
	if (want_norm == NULL)
	{
		is_str(norm, "", "\"%s\": no normalised address", s);
		return;
	}
	is_str(norm, want_norm, "\"%s\": normalised", s);
	is_str(key, want_key, "\"%s\": key", s);
	is_int(fixes, want_fixes, "\"%s\": fixes", s);
}

static void
check_none(const struct email_rules *er, const char *in)
{
	char norm[EMAIL_BUF], key[EMAIL_KEY_BUF];
	unsigned fixes;

	is_str(result_name(email_normalize(er, in, norm, key, &fixes)), "none", "\"%s\": no address",
	       show(in));
}

static struct email_rules *
make_rules(bool lower_local)
{
	static char *gmail[] = {"gmail.com", "GoogleMail.com"};
	static char *ms[] = {"outlook.com", "hotmail.com"};
	struct email_rules *er = email_rules_new();
	struct error err = {0};
	bool ok;

	email_rules_set_lower_local(er, lower_local);
	ok = email_rules_add_typo(er, "gmial.com", "gmail.com", "t", &err) &&
	     email_rules_add_typo(er, "wala.co.il", "walla.co.il", "t", &err) &&
	     email_rules_add_typo(er, "Hotmial.com", "hotmail.com", "t", &err) &&
	     email_rules_add_typo(er, "gmail.co", "gmail.com", "t", &err) &&
	     email_rules_add_provider(er, "gmail", gmail, 2, true, true, "gmail.com", "t", &err) &&
	     email_rules_add_provider(er, "microsoft", ms, 2, false, true, NULL, "t", &err) &&
	     email_rules_finish(er, &err);
	ok(ok, "rules build (%s)", err.msg);
	return er;
}

static void
test_cleaning(const struct email_rules *er)
{
	check(er, "yossi.cohen@walla.co.il", "yossi.cohen@walla.co.il", "yossi.cohen@walla.co.il", 0);
	check(er, "Yossi.cohen@walla.co.il", "yossi.cohen@walla.co.il", "yossi.cohen@walla.co.il", 0);
	check(er, "YOSSI.COHEN@WALLA.CO.IL", "yossi.cohen@walla.co.il", "yossi.cohen@walla.co.il", 0);
	check(er, " yossi.cohen@walla.co.il ", "yossi.cohen@walla.co.il", "yossi.cohen@walla.co.il", 0);
	check(er, "\tmoshe@bezeqint.net\r\n", "moshe@bezeqint.net", "moshe@bezeqint.net", 0);
	/* no-break space and right-to-left marks pasted from Hebrew text */
	check(er,
	      "\xC2\xA0"
	      "moshe@bezeqint.net\xE2\x80\x8F",
	      "moshe@bezeqint.net", "moshe@bezeqint.net", 0);
	check(er,
	      "\xE2\x80\x8E"
	      "moshe@bezeqint.net"
	      "\xEF\xBB\xBF",
	      "moshe@bezeqint.net", "moshe@bezeqint.net", 0);
	check(er, "mailto:Moshe@Bezeqint.net", "moshe@bezeqint.net", "moshe@bezeqint.net", 0);
	check(er, "<moshe@bezeqint.net>", "moshe@bezeqint.net", "moshe@bezeqint.net", 0);
	check(er, "o'neil-x_y+z@sub.example.co.il", "o'neil-x_y+z@sub.example.co.il",
	      "o'neil-x_y+z@sub.example.co.il", 0);
	/* gen_leads.py's junk e-mails are valid addresses: the black-list judges them */
	check(er, "test@test.com", "test@test.com", "test@test.com", 0);
	check(er, "a@a.com", "a@a.com", "a@a.com", 0);
	check_none(er, NULL);
	check_none(er, "");
	check_none(er, "   ");
	check_none(er, "\xC2\xA0\t");
}

static void
test_invalid(const struct email_rules *er)
{
	static const char *const bad[] = {
	    "yossi",
	    "yossi@",
	    "@gmail.com",
	    "yossi@gmail",
	    "yossi@@gmail.com",
	    "yo@ssi@gmail.com",
	    ".yossi@gmail.com",
	    "yossi.@gmail.com",
	    "yo..ssi@gmail.com",
	    "yo ssi@gmail.com",
	    "yossi@gmail..com",
	    "yossi@.gmail.com",
	    "yossi@gmail.com.",
	    "yossi@-gmail.com",
	    "yossi@gmail-.com",
	    "yossi@gmail.c",
	    "yossi@1.2.3.4",
	    "yossi@[1.2.3.4]",
	    "\"yossi\"@gmail.com",
	    "יוסי@gmail.com",
	    "yossi@ג'ימייל.com",
	    "yossi@gmail.com, moshe@gmail.com",
	    "yossi(at)gmail.com",
	    "yossi@gma_il.com",
	    "mailto:",
	    "<>",
	};
	char longlocal[80];
	char longaddr[300];

	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		check(er, bad[k], NULL, NULL, 0);
	/* 65 bytes of local part; 64 pass */
	memset(longlocal, 'a', 65);
	strcpy(longlocal + 65, "@x.com");
	check(er, longlocal, NULL, NULL, 0);
	memset(longlocal, 'a', 64);
	strcpy(longlocal + 64, "@x.com");
	{
		char want[80];

		strcpy(want, longlocal);
		check(er, longlocal, want, want, 0);
	}
	/* a label of 64 characters, and an address over 254 bytes */
	snprintf(longaddr, sizeof(longaddr), "a@%s.com",
	         "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb");
	check(er, longaddr, NULL, NULL, 0);
	memset(longaddr, 'c', sizeof(longaddr));
	memcpy(longaddr, "a@", 2);
	for (int k = 10; k < 250; k += 10)
		longaddr[k] = '.';
	strcpy(longaddr + 251, ".com"); /* 255 bytes */
	check(er, longaddr, NULL, NULL, 0);
}

static void
test_providers(const struct email_rules *er)
{
	/* gmail: dots and tags ignored; googlemail.com is gmail.com */
	check(er, "yossicohen@gmail.com", "yossicohen@gmail.com", "yossicohen@gmail.com", 0);
	check(er, "yossi.cohen@gmail.com", "yossi.cohen@gmail.com", "yossicohen@gmail.com", 0);
	check(er, "yos.si.co.hen@gmail.com", "yos.si.co.hen@gmail.com", "yossicohen@gmail.com", 0);
	check(er, "Yossi.Cohen+fb@GoogleMail.com", "yossi.cohen+fb@googlemail.com",
	      "yossicohen@gmail.com", 0);
	check(er, "yossicohen+promo@gmail.com", "yossicohen+promo@gmail.com", "yossicohen@gmail.com",
	      0);
	check(er, "yossicohen+a+b@gmail.com", "yossicohen+a+b@gmail.com", "yossicohen@gmail.com", 0);
	/* a local part that starts with "+" has no tag to drop */
	check(er, "+leads@gmail.com", "+leads@gmail.com", "+leads@gmail.com", 0);
	/* Microsoft: tags dropped, dots kept, each domain its own */
	check(er, "yossi.cohen+x@hotmail.com", "yossi.cohen+x@hotmail.com", "yossi.cohen@hotmail.com",
	      0);
	check(er, "yossi.cohen@outlook.com", "yossi.cohen@outlook.com", "yossi.cohen@outlook.com", 0);
	/* other domains: the key is the normalised address */
	check(er, "yossi.cohen+x@walla.co.il", "yossi.cohen+x@walla.co.il", "yossi.cohen+x@walla.co.il",
	      0);
	/* a subdomain is not the provider */
	check(er, "a.b@mail.gmail.com", "a.b@mail.gmail.com", "a.b@mail.gmail.com", 0);
}

static void
test_typos(const struct email_rules *er)
{
	check(er, "yossi.cohen@gmial.com", "yossi.cohen@gmail.com", "yossicohen@gmail.com",
	      EMAIL_FIX_DOMAIN_TYPO);
	check(er, "Yossi@GMIAL.COM", "yossi@gmail.com", "yossi@gmail.com", EMAIL_FIX_DOMAIN_TYPO);
	check(er, "moshe@wala.co.il", "moshe@walla.co.il", "moshe@walla.co.il", EMAIL_FIX_DOMAIN_TYPO);
	check(er, "moshe+x@hotmial.com", "moshe+x@hotmail.com", "moshe@hotmail.com",
	      EMAIL_FIX_DOMAIN_TYPO);
	check(er, "moshe@gmail.co", "moshe@gmail.com", "moshe@gmail.com", EMAIL_FIX_DOMAIN_TYPO);
	/* only whole domains: gmail.co.il is a domain of its own */
	check(er, "moshe@gmail.co.il", "moshe@gmail.co.il", "moshe@gmail.co.il", 0);
}

static void
test_keep_case(void)
{
	struct email_rules *er = make_rules(false);

	check(er, "Yossi.Cohen@Walla.CO.IL", "Yossi.Cohen@walla.co.il", "yossi.cohen@walla.co.il", 0);
	check(er, "Yossi.Cohen+X@Gmail.com", "Yossi.Cohen+X@gmail.com", "yossicohen@gmail.com", 0);
	email_rules_free(er);
}

static void
test_rule_errors(void)
{
	struct email_rules *er = email_rules_new();
	struct error err = {0};
	char *d1[] = {"gmail.com"};
	char *d2[] = {"yahoo.com", "GMAIL.COM"};
	char *d3[] = {"not a domain"};

	ok(!email_rules_add_typo(er, "gmial", "gmail.com", "r.ini:7: [email_typos] gmial", &err),
	   "a typo that is no domain is refused");
	is_str(err.msg, "r.ini:7: [email_typos] gmial: \"gmial\" is not a domain name", "message");
	ok(!email_rules_add_typo(er, "gmail.com", "GMAIL.com", "t", &err),
	   "a typo correcting to itself is refused");
	ok(!email_rules_add_typo(er, "gmial.com", "gmail", "t", &err),
	   "a correction that is no domain is refused");
	ok(email_rules_add_provider(er, "g", d1, 1, true, true, "gmail.com", "t", &err), "a provider");
	ok(!email_rules_add_provider(er, "y", d2, 2, false, false, NULL,
	                             "r.ini:20: [email.y] "
	                             "domains",
	                             &err),
	   "a domain of two providers is refused");
	is_str(err.msg,
	       "r.ini:20: [email.y] domains: domain \"GMAIL.COM\" already belongs to "
	       "provider \"g\"",
	       "message");
	ok(!email_rules_add_provider(er, "z", d3, 1, false, false, NULL, "t", &err),
	   "a provider domain that is no domain is refused");
	ok(!email_rules_add_provider(er, "z", d1, 0, false, false, NULL, "t", &err),
	   "a provider without domains is refused");
	ok(!email_rules_add_provider(er, "z", d3, 1, false, false, "x", "t", &err),
	   "a canonical domain that is no domain is refused");
	ok(email_rules_add_typo(er, "gmail.com", "googlemail.com", "t", &err), "typo added");
	ok(!email_rules_finish(er, &err), "a provider's domain listed as a typo is refused");
	is_str(err.msg, "domain \"gmail.com\" is both a typo and a provider's domain", "message");
	email_rules_free(er);

	er = email_rules_new();
	email_rules_add_typo(er, "gmial.com", "gmail.com", "t", &err);
	email_rules_add_typo(er, "GMIAL.com", "gmail.co.il", "t", &err);
	ok(!email_rules_finish(er, &err), "one typo domain twice is refused");
	email_rules_free(er);
	email_rules_free(NULL);
}

static void
test_domain_check(void)
{
	ok(email_valid_domain("walla.co.il", 11), "walla.co.il");
	ok(email_valid_domain("xn--4dbrk0ce.co.il", 18), "a punycode label");
	ok(email_valid_domain("a-b.io", 6), "a hyphen inside a label");
	ok(!email_valid_domain("localhost", 9), "one label");
	ok(!email_valid_domain("a.123", 5), "a numeric top level");
	ok(!email_valid_domain("a.b", 3), "a one-letter top level");
	ok(!email_valid_domain("", 0), "empty");
}

/* The rule-free keys: the do-not-call lists' and de-duplication's dot-blind test. */
static void
test_loose_keys(void)
{
	char key[EMAIL_KEY_BUF], buf[64];
	size_t n;

	ok(email_loose_key("  Yossi.Cohen+fb@GoogleMail.com ", key, sizeof(key)) &&
	       strcmp(key, "yossicohen@gmail.com") == 0,
	   "loose key: gmail dots, tag and googlemail.com folded (%s)", key);
	ok(email_loose_key("Dana.Levi+x@Walla.CO.IL", key, sizeof(key)) &&
	       strcmp(key, "dana.levi@walla.co.il") == 0,
	   "loose key: any domain loses its tag and case, keeps its dots (%s)", key);
	ok(!email_loose_key("no at sign", key, sizeof(key)), "loose key: no \"@\" is no address");
	ok(!email_loose_key("@walla.co.il", key, sizeof(key)), "loose key: nothing before \"@\"");
	ok(!email_loose_key("+tag@walla.co.il", key, sizeof(key)), "loose key: only a tag");
	ok(!email_loose_key(NULL, key, sizeof(key)), "loose key: NULL");

	n = email_without_dots("y.o.s.s.i@mail.co.il", buf, sizeof(buf));
	ok(n == 16 && memcmp(buf, "yossi@mail.co.il", 16) == 0, "without dots: the local part only");
	ok(email_same_but_dots("y.cohen@walla.co.il", "ycohen@walla.co.il"),
	   "same but dots: one mailbox");
	ok(!email_same_but_dots("y.cohen@walla.co.il", "ycohen@wallaco.il"),
	   "same but dots: the domain's dots count");
	ok(!email_same_but_dots("y.cohen@walla.co.il", "ycohen2@walla.co.il"),
	   "same but dots: another mailbox");
}

int
main(void)
{
	struct email_rules *er = make_rules(true);

	test_cleaning(er);
	test_invalid(er);
	test_providers(er);
	test_typos(er);
	test_keep_case();
	test_rule_errors();
	test_domain_check();
	test_loose_keys();
	email_rules_free(er);
	return done_testing();
}
