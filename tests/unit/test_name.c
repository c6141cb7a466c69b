/*
 * test_name.c
 *    Unit tests of name.c: the normal form of names, tokens and sorted
 *    keys, the transliteration table and its keys.
 *
 * The normal forms are written out by hand from the rule in name.h (NFKC,
 * case fold, marks and apostrophes dropped, other punctuation a space).
 * The transliteration tests use a small table whose keys follow from its
 * entries, then the table shipped in rules/normalize.ini.part (under the
 * tree named by argv[1], else $srcdir or $top_srcdir) on Hebrew and Latin
 * spellings of one name, which must meet: "יוסי כהן" and "Yossi Cohen",
 * "Kohen" and "Cohen", "Mizrachi" and "Mizrahi".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "name.h"
#include "rules.h"
#include "tap.h"

/* The input for a test's description: control characters as \xNN. */
static const char *
show(const char *in)
{
	static char buf[256];
	size_t o = 0;

	for (const char *p = in; *p && o < 200; p++)
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
norm_is(const char *in, const char *want)
{
	char out[256];
	ssize_t n = name_normalize(in, strlen(in), out, sizeof(out));

	is_str(out, want, "normalise \"%s\"", show(in));
	is_int(n, (long long) strlen(want), "length of \"%s\"", show(in));
}

static void
test_normalize(void)
{
	char out[16];
	ssize_t n;

	norm_is("Yossi Cohen", "yossi cohen");
	norm_is("  YOSSI   COHEN ", "yossi cohen");
	norm_is("Ben-David, Yossi", "ben david yossi");
	norm_is("Cohen.Yossi", "cohen yossi");
	norm_is("Sa'adi Ali", "saadi ali");
	norm_is("O\xE2\x80\x99"
	        "Brien",
	        "obrien"); /* right single quotation mark */
	norm_is("d`Artagnan", "dartagnan");
	norm_is("Yaël Lévy", "yael levy");
	norm_is("JOSÉ ÁLVAREZ", "jose alvarez");
	norm_is("Straße", "strasse");
	norm_is("ﬁona", "fiona");       /* the fi ligature */
	norm_is("Ｙｏｓｓｉ", "yossi"); /* full-width letters */
	norm_is("test 2", "test 2");
	norm_is("Test1", "test1");
	norm_is("🔥 Moshe 🔥", "moshe");
	norm_is("Moshe\tCohen\n", "moshe cohen");
	/* Hebrew: no case; niqqud dropped, maqaf a space, geresh and gershayim dropped */
	norm_is("יוסי כהן", "יוסי כהן");
	norm_is("  כהן,   יוסי ", "כהן יוסי");
	norm_is("יוֹסִי כֹּהֵן", "יוסי כהן");
	norm_is("בן־דוד", "בן דוד");
	norm_is("ג'ורג'", "גורג");
	norm_is("ג׳ורג׳", "גורג");
	norm_is("צה\"ל", "צהל");
	norm_is("\xE2\x80\x8F"
	        "יוסי"
	        "\xE2\x80\x8F",
	        "יוסי");         /* right-to-left marks */
	norm_is("שׁלום", "שלום"); /* presentation form of shin with its dot */
	norm_is("Yossi כהן", "yossi כהן");
	/* other scripts are kept, case-folded; marks go everywhere, so Cyrillic й is и */
	norm_is("Сергей Иванов", "сергеи иванов");
	norm_is("محمد", "محمد");
	/* nothing of a name */
	norm_is("..", "");
	norm_is("-", "");
	norm_is("?", "");
	norm_is("", "");
	/* invalid UTF-8 */
	n = name_normalize("Yo\xC3", 3, out, sizeof(out));
	is_int(n, -1, "a cut UTF-8 sequence is invalid");
	n = name_normalize("\xFF\xFE", 2, out, sizeof(out));
	is_int(n, -1, "bytes that are no UTF-8 are invalid");
	/* a small buffer: the whole length is returned, the text cut at a character */
	n = name_normalize("Yossi Cohen", 11, out, 6);
	is_int(n, 11, "the full length comes back when the buffer is small");
	is_str(out, "yossi", "the text is cut to the buffer");
	n = name_normalize("יוסי כהן", strlen("יוסי כהן"), out, 6);
	is_str(out, "יו", "a Hebrew letter is never cut in half");
	n = name_normalize("אבג", 6, out, 1);
	is_str(out, "", "a buffer of one byte holds the NUL");
}

static void
test_tokens(void)
{
	struct name_token tok[4];
	char out[64];
	int n = name_tokens("yossi ben david", tok, 4);

	is_int(n, 3, "three tokens");
	ok(tok[1].len == 3 && strncmp(tok[1].s, "ben", 3) == 0, "second token is \"ben\"");
	is_int(name_tokens("a b c d e f", tok, 4), 6, "all tokens counted beyond max");
	is_int(name_tokens("", tok, 4), 0, "no tokens in \"\"");
	name_sorted_key("yossi cohen", out, sizeof(out));
	is_str(out, "cohen yossi", "sorted key");
	name_sorted_key("cohen yossi", out, sizeof(out));
	is_str(out, "cohen yossi", "sorted key is order independent");
	name_sorted_key("יוסי כהן", out, sizeof(out));
	is_str(out, "יוסי כהן", "Hebrew sorted by bytes: yod before kaf");
	name_sorted_key("b a ab", out, sizeof(out));
	is_str(out, "a ab b", "a prefix sorts first");
	name_sorted_key("yossi cohen", out, 8);
	is_str(out, "cohen", "a key cut at a token");
}

static struct name_translit *
table(const char *const *entries, int n)
{
	struct name_translit *t = name_translit_new();
	struct error err = {0};

	for (int k = 0; k < n; k++)
		if (!name_translit_add(t, entries[k], "t", &err))
			diag("entry \"%s\": %s", entries[k], err.msg);
	name_translit_finish(t);
	return t;
}

static const char *
key(const struct name_translit *t, const char *s)
{
	static char out[128];

	name_translit_key(t, s, strlen(s), out, sizeof(out));
	return out;
}

static void
test_translit_rules(void)
{
	static const char *const small[] = {
	    "a=-", "h=x/y/z", "sh=s", "ch=k", "c=k", "b=v", "ה=h/h/-", "א=-", "ab=Q", "ab=AB",
	};
	struct name_translit *t = table(small, (int) (sizeof(small) / sizeof(small[0])));
	struct error err = {0};
	char out[8];

	is_int(name_translit_count(t), 9, "a repeated sequence replaces: 9 entries");
	is_str(key(t, "hah"), "xz", "initial and final outputs (the vowel dropped)");
	is_str(key(t, "ahah"), "yz", "medial output; the word's start is the dropped a");
	is_str(key(t, "h"), "x", "a one-letter word takes the initial output");
	is_str(key(t, "shach"), "sk", "longest match: sh and ch before s, c and h");
	is_str(key(t, "cab"), "kAB", "the later \"ab\" entry won");
	is_str(key(t, "bb"), "v", "a letter repeated in the output is written once");
	is_str(key(t, "kck"), "k", "k (no entry) and c -> k collapse");
	is_str(key(t, "dd"), "d", "letters without an entry stay, collapsed");
	is_str(key(t, "Shach"), "sk", "upper case is folded first");
	is_str(key(t, "hah hah"), "xzxz", "words inside a token restart positions");
	is_str(key(t, "הה"), "h", "Hebrew: initial h, final dropped");
	is_str(key(t, "אהה"), "h", "Hebrew: the medial he kept once");
	is_str(key(t, "Élan"), "eln", "marks are stripped before matching");
	is_str(key(t, "o'hara"), "oyr", "an apostrophe is dropped, not a word break");
	is_str(key(t, ""), "", "empty token, empty key");
	is_str(key(t, "dadadada"), "d", "a letter repeated across dropped vowels is written once");
	name_translit_key(t, "bcdfg", 5, out, 4);
	is_str(out, "vkd", "output cut to the buffer");
	is_str(key(NULL, "Yossi"), "yosi", "no table: folded token, doubles once");
	name_translit_free(t);

	t = name_translit_new();
	ok(!name_translit_add(t, "abc", "r.ini:3: [translit] latin", &err), "no \"=\"");
	is_str(err.msg, "r.ini:3: [translit] latin: \"abc\" is not a transliteration entry",
	       "message names the entry");
	ok(!name_translit_add(t, "=x", "t", &err), "no letters");
	ok(!name_translit_add(t, "abcde=x", "t", &err), "five letters");
	ok(!name_translit_add(t, "a=12345678", "t", &err), "eight bytes of output");
	ok(!name_translit_add(t, "a=b/c/d/e", "t", &err), "four positions");
	ok(!name_translit_add(t, "a=", "t", &err), "an empty output must be \"-\"");
	ok(!name_translit_add(t, "a=/x", "t", &err), "an empty initial output");
	ok(!name_translit_add(t, "a b=x", "t", &err), "a space in the letters");
	ok(!name_translit_add(t, "a=x y", "t", &err), "a space in the output");
	ok(name_translit_add(t, " Sh = s ", "t", &err), "spaces around are fine");
	ok(name_translit_add(t, "ה=k/k/-", "t", &err), "three positions");
	ok(name_translit_add(t, "x=ks/x", "t", &err), "two positions");
	name_translit_finish(t);
	is_str(key(t, "shx"), "sx", "\"Sh\" was stored in lower case");
	is_str(key(t, "xsh"), "ks", "x at the start is ks, then sh's s repeats the s");
	is_str(key(t, "axsh"), "axs", "x inside a word is x (and a has no entry here)");
	name_translit_free(t);
	name_translit_free(NULL);
}

/*
 * Each thread keeps the keys it made last: a key must be the same whether
 * it comes from there or not, whatever table asked before and whatever
 * buffer it is asked into.
 */
static void
test_translit_memo(void)
{
	static const char *const one[] = {"sh=s", "c=k"};
	static const char *const two[] = {"sh=x", "c=ts"};
	struct name_translit *t = table(one, 2), *u;
	char out[4];

	is_str(key(t, "shachar"), "sakhar", "a key (h has no entry here)");
	is_str(key(t, "shachar"), "sakhar", "the same key asked again");
	name_translit_key(t, "shachar", 7, out, sizeof(out));
	is_str(out, "sak", "asked into a small buffer, it is cut there");
	is_str(key(t, "shachar"), "sakhar", "and whole again in a large one");
	name_translit_key(t, "cohen", 5, out, sizeof(out));
	is_str(out, "koh", "a key first made into a small buffer is cut");
	is_str(key(t, "cohen"), "kohen", "and is whole when next asked into a large one");
	/* another table, perhaps at the same address: its own keys */
	name_translit_free(t);
	u = table(two, 2);
	is_str(key(u, "shachar"), "xatshar", "a new table makes its own key for the same token");
	is_str(key(NULL, "shachar"), "shachar", "and no table its own again");
	ok(name_translit_add(u, "r=l", "t", &(struct error){0}), "an entry added to a table");
	name_translit_finish(u);
	is_str(key(u, "shachar"), "xatshal", "changes the table's keys at once");
	name_translit_free(u);
}

static const char *
srcdir_file(const char *dir, const char *rel, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", dir, rel);
	return buf;
}

/* The shipped [translit] table, read from rules/normalize.ini.part. */
static struct name_translit *
shipped_table(const char *top)
{
	static const char *const keys[] = {"hebrew", "latin", "extra"};
	char path[4096];
	struct rules *r = rules_new();
	struct error err = {0};
	struct name_translit *t = name_translit_new();

	if (!rules_load_file(r, srcdir_file(top, "rules/normalize.ini.part", path, sizeof(path)), &err))
	{
		diag("%s", err.msg);
		rules_free(r);
		name_translit_free(t);
		return NULL;
	}
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
	{
		const char *v = rules_get(r, "translit", keys[k]);
		char **items;
		int n = rules_split_list(v ? v : "", &items);

		for (int j = 0; j < n; j++)
			if (!name_translit_add(t, items[j], "shipped", &err))
				diag("%s", err.msg);
		rules_list_free(items);
	}
	name_translit_finish(t);
	rules_free(r);
	return t;
}

static const char *
name_key(const struct name_translit *t, const char *name, bool sorted)
{
	static char out[2][256];
	static int which;
	char norm[256];

	which ^= 1;
	name_normalize(name, strlen(name), norm, sizeof(norm));
	name_translit_name_key(t, norm, sorted, out[which], sizeof(out[which]));
	return out[which];
}

static void
test_shipped(const struct name_translit *t)
{
	/* a Hebrew spelling and Latin spellings of the same name, which must meet */
	static const char *const same[][2] = {
	    {"יוסי כהן", "Yossi Cohen"},
	    {"יוסי כהן", "Cohen Yosi"},
	    {"Kohen", "Cohen"},
	    {"Cohn", "Cohen"},
	    {"Mizrachi", "Mizrahi"},
	    {"מזרחי", "Mizrahi"},
	    {"חיים", "Chaim"},
	    {"חיים", "Haim"},
	    {"חיים", "Hayim"},
	    {"מיכל", "Michal"},
	    {"מיכל", "Mihal"},
	    {"שרה", "Sarah"},
	    {"נועה", "Noa"},
	    {"נועה", "Noah"},
	    {"יעל", "Yaël"},
	    {"יעל", "Jael"},
	    {"יונתן", "Jonathan"},
	    {"אברהם", "Abraham"},
	    {"רבקה", "Rebecca"},
	    {"אסתר", "Esther"},
	    {"יצחק", "Yitzhak"},
	    {"צחי", "Tsahi"},
	    {"שלמה", "Shlomo"},
	    {"ואקנין", "Waknin"},
	    {"וייס", "Weiss"},
	    {"חורי", "Khoury"},
	    {"הורוביץ", "Horowitz"},
	    {"פרץ", "Peretz"},
	    {"כץ", "Kats"},
	    {"אשכנזי", "Ashkenazi"},
	    {"אלכסנדר", "Alexander"},
	    {"מקסים", "Maxim"},
	    {"סעדי", "Sa'adi"},
	    {"חדד", "Haddad"},
	    {"ששון", "Sasson"},
	    {"אוחיון", "Ohayon"},
	    {"בן שושן", "Ben-Shoshan"},
	    {"משה לוי", "Moshe Levi"},
	};
	int agree = 0, n = (int) (sizeof(same) / sizeof(same[0]));

	is_str(name_key(t, "יוסי כהן", false), "ys kn", "key of \"יוסי כהן\" in order");
	is_str(name_key(t, "Yossi Cohen", false), "ys kn", "key of \"Yossi Cohen\" in order");
	is_str(name_key(t, "Cohen Yossi", true), "kn ys", "sorted key of \"Cohen Yossi\"");
	is_str(name_key(t, "Mizrachi", false), "mzrk", "Mizrachi");
	is_str(name_key(t, "Avraham", false), "vrkm", "Avraham: v, r, h as k, m");
	is_str(name_key(t, "Moshe Levi", false), "ms lv", "Moshe Levi");
	/* the one pair above that does not meet exactly: ו inside a word reads as a vowel */
	is_str(name_key(t, "משה לוי", false), "ms l", "משה לוי: the vav of Levi is dropped");
	for (int k = 0; k < n; k++)
	{
		const char *a = name_key(t, same[k][0], true), *b = name_key(t, same[k][1], true);

		if (strcmp(a, b) == 0)
			agree++;
		else
			diag("keys differ: \"%s\" -> \"%s\", \"%s\" -> \"%s\"", same[k][0], a, same[k][1], b);
	}
	is_int(agree, n - 1, "every pair but Levi meets");
	/* different names stay apart */
	ok(strcmp(name_key(t, "Yossi Cohen", true), name_key(t, "Michal Cohen", true)) != 0,
	   "household: Yossi Cohen is not Michal Cohen");
	ok(strcmp(name_key(t, "Dana Levi", true), name_key(t, "Dan Levi", true)) == 0,
	   "Dana and Dan share a skeleton (the key is for blocking, not a verdict)");
}

int
main(int argc, char **argv)
{
	const char *top = argc > 1 ? argv[1] : getenv("srcdir");
	struct name_translit *t;

	if (top == NULL || *top == '\0')
		top = getenv("top_srcdir");
	if (top == NULL || *top == '\0')
		top = ".";
	test_normalize();
	test_tokens();
	test_translit_rules();
	test_translit_memo();
	t = shipped_table(top);
	ok(t != NULL && name_translit_count(t) > 50, "the shipped table loads from \"%s\"", top);
	if (t != NULL)
		test_shipped(t);
	name_translit_free(t);
	return done_testing();
}
