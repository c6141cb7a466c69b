/*
 * test_report_html.c
 *    How the dashboard writes numbers: grouped by thousands, rounded to the
 *    places asked, a sign only where asked and never on a zero.
 *
 * The expected strings are written out by hand from the rule (a comma every
 * three digits left of the point, printf rounding), not taken from the
 * function.  tests/integration/dashboard.sh checks the page itself.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "report_html.h"
#include "tap.h"

static void
check(double v, int decimals, bool sign, const char *want)
{
	char buf[64];

	is_str(report_html_number(buf, sizeof(buf), v, decimals, sign), want, "%.6g, %d places%s", v,
	       decimals, sign ? ", signed" : "");
}

int
main(void)
{
	char small[6];

	check(0, 0, false, "0");
	check(7, 0, false, "7");
	check(999, 0, false, "999");
	check(1000, 0, false, "1,000");
	check(65427, 0, false, "65,427");
	check(1234567, 0, false, "1,234,567");
	check(-1234567, 0, false, "-1,234,567");
	check(1000000000, 0, false, "1,000,000,000");
	check(12.3456, 1, false, "12.3");
	check(999.96, 1, false, "1,000.0");
	check(4181.25, 2, false, "4,181.25");
	check(0.666, 1, false, "0.7");
	check(-0.04, 1, false, "0.0");
	check(-0.04, 1, true, "0.0");
	check(30, 0, true, "+30");
	check(-2218, 0, true, "-2,218");
	check(0, 0, true, "0");
	check(12.26, 1, true, "+12.3");
	check(NAN, 1, false, "n/a");
	check(INFINITY, 0, false, "n/a");
	/* a short buffer is cut, never overrun */
	report_html_number(small, sizeof(small), 1234567, 0, false);
	is_str(small, "1,234", "a 6-byte buffer keeps the first 5 characters");
	return done_testing();
}
