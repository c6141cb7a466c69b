#!/bin/bash
# tests/cli/cli.sh -- the command line: --help, --version, bad options, exit codes,
# and check-rules, none of which needs a server.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"

out=$("$REFINERY" --help); rc=$?
is "$rc" 0 "--help exits 0"
like "$out" '^refinery turns historical sales leads' "--help starts with the purpose"
like "$out" 'Usage:' "--help shows usage"
like "$out" 'check-rules' "--help lists check-rules"
like "$out" '  pull, normalize, blacklist, dedupe, partial, score, cohort, match, write' \
	"--help lists the stages in order"
wide=$(printf '%s\n' "$out" | awk 'length($0) > 79' | wc -l)
is "$wide" 0 "--help fits in 80 columns"
out=$("$REFINERY" run --help); is "$?" 0 "run --help exits 0"
out=$("$REFINERY" run -c x.ini '-?'); is "$?" 0 "-? after a command shows the help too"
like "$out" '^refinery turns' "and it is the help"

out=$("$REFINERY" --version); rc=$?
is "$rc" 0 "--version exits 0"
like "$out" '^refinery [0-9]+\.[0-9]+\.[0-9]+$' "--version prints name and version"
out=$("$REFINERY" -V); like "$out" '^refinery [0-9]' "-V works"

err=$("$REFINERY" run --no-such-option 2>&1 >/dev/null); rc=$?
is "$rc" 2 "a bad option exits with the usage code"
like "$err" 'Try "refinery --help" for more information\.' "a bad option points to --help"
err=$("$REFINERY" 2>&1); rc=$?
is "$rc" 2 "no command is a usage error"
err=$("$REFINERY" frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown command is a usage error"
like "$err" 'unknown command "frobnicate"' "the unknown command is named"
err=$("$REFINERY" run -j zero 2>&1); rc=$?
is "$rc" 2 "a bad -j is a usage error"
err=$("$REFINERY" run --log-format=xml 2>&1); is "$?" 2 "a bad log format is a usage error"

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
printf '[source]\ntable = crm.leads\n' > "$tmp/ok.ini"
out=$("$REFINERY" check-rules "$tmp/ok.ini"); rc=$?
is "$rc" 0 "check-rules accepts a file holding only [source] table"
like "$out" 'rules are valid \(sha256 [0-9a-f]{64}\)' "check-rules prints the hash"
out2=$("$REFINERY" check-rules -c "$tmp/ok.ini")
is "$out2" "$out" "check-rules takes -c too, same hash"

printf '[source]\ntable = crm.leads\n[dedupe]\nno_such_key = 1\n' > "$tmp/bad.ini"
err=$("$REFINERY" check-rules "$tmp/bad.ini" 2>&1); rc=$?
is "$rc" 3 "an unknown key exits with the rules code"
like "$err" "refinery: error: $tmp/bad.ini:4: unknown key \"no_such_key\" in section \[dedupe\]" \
	"the unknown key is named with file and line"
printf '[source]\ntable = crm.leads\n[nonsense]\nx = 1\n' > "$tmp/bad2.ini"
err=$("$REFINERY" check-rules "$tmp/bad2.ini" 2>&1); is "$?" 3 "an unknown section exits 3"
like "$err" 'bad2.ini:4: unknown section \[nonsense\]' "the unknown section is named"
printf '[source]\n' > "$tmp/nosrc.ini"
err=$("$REFINERY" check-rules "$tmp/nosrc.ini" 2>&1); is "$?" 3 "no source exits 3"
like "$err" 'exactly one of table, query or csv' "the missing source is explained"
printf '[source]\ntable = a\ncsv = b.csv\n' > "$tmp/two.ini"
err=$("$REFINERY" check-rules "$tmp/two.ini" 2>&1); is "$?" 3 "two sources exit 3"
err=$("$REFINERY" check-rules "$tmp/missing.ini" 2>&1); is "$?" 3 "a missing file exits 3"
like "$err" 'could not open rules file' "a missing file is named"
printf '[source]\ntable = x\n[output]\nkeep_runs = many\n' > "$tmp/val.ini"
err=$("$REFINERY" check-rules "$tmp/val.ini" 2>&1); is "$?" 3 "a bad value exits 3"
like "$err" 'val.ini:4: \[output\] keep_runs: "many" is not an integer' "a bad value names file and line"
err=$("$REFINERY" check-rules --log-format=json "$tmp/val.ini" 2>&1)
like "$err" '^\{"ts": "[^"]+", "program": "refinery", "level": "error", "message": ".*keep_runs.*", "exit_code": 3\}$' \
	"--log-format=json gives one JSON object"
# an extra column named like a field is refused, not read after it was freed
printf '[source]\ntable = x\n[columns]\nextra = notes_2, full_name\n' > "$tmp/extra.ini"
err=$("$REFINERY" check-rules "$tmp/extra.ini" 2>&1); is "$?" 3 "an extra column named like a field exits 3"
like "$err" 'extra.ini:4: \[columns\] extra: "full_name" is the name of a known field' \
	"the field is named"
like "$err" 'hint: Map it with "full_name = column" instead\.' "the hint names it too"
# the shipped reference rules are valid together with a source
out=$("$REFINERY" check-rules "$top_srcdir/rules/default.ini" "$tmp/ok.ini"); is "$?" 0 "rules/default.ini checks"

# the committed reference is exactly the merge of the parts
sh "$top_srcdir/rules/merge.sh" "$tmp/merged.ini" && cmp -s "$tmp/merged.ini" "$top_srcdir/rules/default.ini"
ok $? "rules/default.ini is rules/merge.sh's output (no part edited without merging)"

# no server: the connection code
err=$("$REFINERY" run -c "$tmp/ok.ini" -d "host=127.0.0.1 port=1 connect_timeout=2 password=hunter2secret" 2>&1); rc=$?
is "$rc" 4 "an unreachable server exits with the connection code"
like "$err" 'could not connect' "the connection failure is reported"
unlike "$err" 'hunter2secret' "the password is not printed"
# libpq quotes parts of a malformed URI: the password must not come through
err=$("$REFINERY" init-db -d 'postgresql://alice:SeCrEt%zz@127.0.0.1:1/db' 2>&1); rc=$?
is "$rc" 4 "a malformed URI exits with the connection code"
unlike "$err" 'SeCrEt' "the password of a malformed URI is not printed"
err=$("$REFINERY" init-db -d 'postgresql://alice:SeCrEt@[::1/db' 2>&1)
unlike "$err" 'SeCrEt' "nor that of a URI with a broken host"
err=$("$REFINERY" init-db -d 'host=127.0.0.1 port=1 connect_timeout=1 password=SeCrEt sslmode=bogus' 2>&1)
unlike "$err" 'SeCrEt' "nor that of a conninfo string with a bad option"
done_testing
