#!/bin/bash
# tests/cli/cli.sh -- the command line: --help, --version, bad options, exit codes,
# and check-rules, none of which needs a server.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/stages.sh"

out=$("$REFINERY" --help); rc=$?
is "$rc" 0 "--help exits 0"
like "$out" '^refinery turns historical sales leads' "--help starts with the purpose"
like "$out" 'Usage:' "--help shows usage"
like "$out" 'check-rules' "--help lists check-rules"
like "$(stage_names ' ')" '^normalize blacklist dedupe ' "engine/stagelist.h is read"
is "$(printf '%s\n' "$out" | sed -n '/^Stages of a run/,/^$/{/^Stages/d;/^$/d;s/^  //;p;}' | paste -sd' ')" \
	"pull, state, $(stage_names ', '), write." "--help lists the stages of engine/stagelist.h in order"
wide=$(printf '%s\n' "$out" | awk 'length($0) > 79' | wc -l)
is "$wide" 0 "--help fits in 80 columns"
out=$("$REFINERY" run --help); is "$?" 0 "run --help exits 0"
out=$("$REFINERY" run -c x.ini '-?'); is "$?" 0 "-? after a command shows the help too"
like "$out" '^refinery run: ' "and it is that command's help"

# each command takes its own options: others are refused before anything is done, and
# its --help shows its usage and its options only
nohost="host=127.0.0.1 port=1 connect_timeout=2"
err=$("$REFINERY" init-db --dry-run -d "$nohost" 2>&1); rc=$?
is "$rc" 2 "init-db --dry-run is a usage error (it used to migrate for real)"
like "$err" '^refinery: error: init-db does not take option "--dry-run"$' \
	"naming the command and the option"
like "$err" 'Try "refinery init-db --help"' "and pointing to the command's help"
err=$("$REFINERY" explain 1 --html x.html -d "$nohost" 2>&1); rc=$?
is "$rc" 2 "explain --html is a usage error"
like "$err" 'explain does not take option "--html"' "naming explain and --html"
err=$("$REFINERY" check-rules -d crm x.ini 2>&1); rc=$?
is "$rc" 2 "check-rules takes no connection option"
like "$err" 'check-rules does not take option "--dbname"' "naming the long form of -d"
err=$("$REFINERY" init-db -q --log-format=text -d "$nohost" 2>&1); rc=$?
is "$rc" 4 "the general options go with every command (then the connection fails)"
err=$("$REFINERY" forget -n -c x.ini --phone 1 --email a@b --lead-id 1 -d "$nohost" --no-such 2>&1); rc=$?
like "$err" 'unrecognized option' "an unknown option is still getopt's error"
out=$("$REFINERY" export --help); rc=$?
is "$rc" 0 "export --help exits 0"
like "$out" '^  refinery export --csv=FILE \[OPTION\]\.\.\.$' "export --help shows export's usage"
like "$out" '^      --verdict=V ' "and export's options"
like "$out" '^      --csv=FILE +CSV file to write' "in export's wording"
unlike "$out" '--table|--reject|--phone|--html|--keep|--dry-run|--rules' "and no other command's"
like "$out" '^  -d, --dbname=' "with the connection options"
unlike "$out" '^Commands:' "not the list of commands"
out=$("$REFINERY" import --help)
like "$out" '^      --csv=FILE +CSV file to read' "import --help words --csv as import reads it"
unlike "$out" '--verdict' "and shows no export option"
out=$("$REFINERY" check-rules --help)
unlike "$out" '--dbname' "check-rules --help shows no connection options: it does not connect"
like "$out" '^  -c, --rules=FILE' "but -c"
cmds=$("$REFINERY" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z-]*\) .*/\1/p')
is "$(printf '%s\n' "$cmds" | wc -l)" 13 "--help lists the thirteen commands"
like "$("$REFINERY" --help)" '"refinery COMMAND --help" shows the options' "and where their options are"
for c in $cmds; do
	out=$("$REFINERY" "$c" --help); rc=$?
	wide=$(printf '%s\n' "$out" | awk 'length($0) > 79' | wc -l)
	is "$rc/$wide/$(printf '%s\n' "$out" | head -n 1 | cut -d: -f1)" "0/0/refinery $c" \
		"$c --help exits 0, fits in 80 columns and names $c"
	# the man page's SYNOPSIS line of the command shows the same options (by long name)
	opts=$(printf '%s\n' "$out" | sed -n '/^Options:/,/^$/p')
	syn=$(sed -n "/^\.B refinery $c\$/,/^\.\(br\|PP\)\$/p" "$top_srcdir/engine/refinery.1")
	want=$(printf '%s\n' "$opts" | grep -oE -- '--[a-z-]+' | sort -u | tr '\n' ' ')
	got=$(printf '%s\n' "$syn" | sed -nE 's/\\-/-/g; s/^\.R?B (\[ )?(-[-a-z]*).*/\2/p' |
		while read -r o; do
			case $o in
				--*) echo "$o" ;;
				*) printf '%s\n' "$opts" | grep -oE -- "^  $o, --[a-z-]+" | grep -oE -- '--[a-z-]+' ;;
			esac
		done | sort -u | tr '\n' ' ')
	conn_help=$(printf '%s\n' "$out" | grep -c '^Connection options:')
	conn_man=$(printf '%s\n' "$syn" | grep -c 'connection-option')
	is "${got}connection:$conn_man" "${want}connection:$conn_help" \
		"refinery(1) SYNOPSIS shows the options of $c --help"
done

out=$("$REFINERY" --version); rc=$?
is "$rc" 0 "--version exits 0"
like "$out" '^refinery [0-9]+\.[0-9]+\.[0-9]+$' "--version prints name and version"
out=$("$REFINERY" -V); like "$out" '^refinery [0-9]' "-V works"

err=$("$REFINERY" run --no-such-option 2>&1 >/dev/null); rc=$?
is "$rc" 2 "a bad option exits with the usage code"
like "$err" 'Try "refinery run --help" for more information\.' "a bad option points to the command's --help"
err=$("$REFINERY" 2>&1); rc=$?
is "$rc" 2 "no command is a usage error"
err=$("$REFINERY" frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown command is a usage error"
like "$err" 'unknown command "frobnicate"' "the unknown command is named"
err=$("$REFINERY" run -j zero 2>&1); rc=$?
is "$rc" 2 "a bad -j is a usage error"
err=$("$REFINERY" run --log-format=xml 2>&1); is "$?" 2 "a bad log format is a usage error"
err=$("$REFINERY" export --csv x.csv --file-mode 0800 2>&1); rc=$?
is "$rc" 2 "a bad --file-mode is a usage error"
like "$err" 'invalid --file-mode "0800"' "naming the option and the value"
err=$("$REFINERY" report --file-mode=u+rw 2>&1); is "$?" 2 "a symbolic --file-mode is refused too"
err=$("$REFINERY" calibrate --file-mode 1777 2>&1); is "$?" 2 "as are bits above 0777"
err=$("$REFINERY" export --file-mode '' 2>&1); is "$?" 2 "as is an empty --file-mode"
out=$("$REFINERY" export --help)
like "$out" '--file-mode=MODE' "export --help documents --file-mode"
man=$(cat "$top_srcdir/engine/refinery.1")
like "$man" 'file\\-mode' "the man page documents --file-mode"
like "$man" '^\.B file_mode$' "and [output] file_mode"
like "$("$REFINERY" --help)" '^  jobs +list the jobs' "--help lists the jobs command"
like "$("$REFINERY" --help)" '^  prune +drop a job' "--help lists the prune command"
err=$("$REFINERY" report --job 'no spaces' 2>&1); rc=$?
is "$rc" 2 "an invalid --job is a usage error"
like "$err" 'invalid job name: "no spaces"' "and names it"
err=$("$REFINERY" run --job nightly 2>&1); rc=$?
is "$rc" 2 "run --job is a usage error: the job is in the rules"
like "$err" 'run does not take option "--job"' "naming the command and the option"
like "$err" 'hint: Set "\[job\]" and "name = nightly" in a rules file' "and says where it goes"
err=$("$REFINERY" jobs --check 2>&1); rc=$?
is "$rc/$err" '2/refinery: error: jobs --check needs --max-age=AGE (e.g. 26h)' \
	"jobs --check without an age is a usage error, before connecting"
err=$("$REFINERY" jobs --check --max-age 26 -d "host=127.0.0.1 port=1 connect_timeout=2" 2>&1); rc=$?
is "$rc" 4 "--max-age 26 (seconds) is accepted (then the connection fails)"
err=$("$REFINERY" jobs --check --max-age 1w 2>&1); rc=$?
is "$rc" 2 "--max-age 1w is a usage error"
err=$("$REFINERY" prune --keep 0 2>&1); rc=$?
is "$rc" 2 "prune --keep 0 is a usage error"
printf '[source]\ntable = t\n[job]\nname = two words\n' > "${TMPDIR:-/tmp}/refinery-cli-job.$$.ini"
err=$("$REFINERY" check-rules "${TMPDIR:-/tmp}/refinery-cli-job.$$.ini" 2>&1); rc=$?
rm -f "${TMPDIR:-/tmp}/refinery-cli-job.$$.ini"
is "$rc" 3 "an invalid [job] name is a rules error"
like "$err" '\.ini:4: \[job\] name: "two words" is not a valid job name' \
	"naming file, line and value"

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
# the do-not-call files are read after the rules load, but check-rules still reads them
printf '[source]\ntable = x\n[blacklist.dnc]\nphone_list = gone.csv\n' > "$tmp/dnc.ini"
err=$("$REFINERY" check-rules "$tmp/dnc.ini" 2>&1); is "$?" 3 "a missing do-not-call file exits 3"
like "$err" "could not open do-not-call file \"$tmp/gone.csv\"" "naming the file beside the rules"
like "$err" 'dnc.ini:4: \[blacklist.dnc\] phone_list' "and where the rules name it"
printf 'phone\n052-4423268,a@b.co,x\n' > "$tmp/gone.csv"
err=$("$REFINERY" check-rules "$tmp/dnc.ini" 2>&1); is "$?" 3 "a malformed do-not-call file exits 3"
like "$err" 'gone.csv:2: do-not-call file has 3 columns' "naming file and line"
printf '[source]\ntable = x\n[output]\nfile_mode = rw-------\n' > "$tmp/mode.ini"
err=$("$REFINERY" check-rules "$tmp/mode.ini" 2>&1); is "$?" 3 "a bad [output] file_mode exits 3"
like "$err" 'mode.ini:4: \[output\] file_mode: "rw-------" is not an octal file mode' \
	"naming file and line"
printf '[source]\ntable = x\n[output]\nkeep_runs = many\n' > "$tmp/val.ini"
err=$("$REFINERY" check-rules "$tmp/val.ini" 2>&1); is "$?" 3 "a bad value exits 3"
like "$err" 'val.ini:4: \[output\] keep_runs: "many" is not an integer' "a bad value names file and line"
err=$("$REFINERY" check-rules --log-format=json "$tmp/val.ini" 2>&1)
like "$err" '^\{"ts": "[^"]+", "program": "refinery", "level": "error", "message": ".*keep_runs.*", "exit_code": 3\}$' \
	"--log-format=json gives one JSON object"
# [source] table and timezone are checked without a server, naming file and line
printf '[source]\ntable = postgres.crm.leads\n' > "$tmp/3part.ini"
err=$("$REFINERY" check-rules "$tmp/3part.ini" 2>&1); is "$?" 3 "a three-part table name exits 3"
like "$err" '3part\.ini:2: \[source\] table: too many dotted parts in the name "postgres\.crm\.leads"' \
	"the table name is refused with file and line"
printf '[source]\ntable = crm.%s\n' "$(printf 'x%.0s' $(seq 64))" > "$tmp/long.ini"
err=$("$REFINERY" check-rules "$tmp/long.ini" 2>&1); is "$?" 3 "a table name part over 63 bytes exits 3"
like "$err" 'long\.ini:2: \[source\] table: identifier "x+" is longer than 63 bytes' "naming file and line"
printf '[source]\ntable = crm.leads\ntimezone = Mars/Olympus\n' > "$tmp/tz.ini"
err=$("$REFINERY" check-rules "$tmp/tz.ini" 2>&1); is "$?" 3 "an unknown time zone exits 3"
like "$err" 'tz\.ini:3: \[source\] timezone: unknown time zone "Mars/Olympus"' "naming file and line"
for tz in Asia/Jerusalem UTC UTC+2 +02:00; do
	printf '[source]\ntable = crm.leads\ntimezone = %s\n' "$tz" > "$tmp/tz.ini"
	"$REFINERY" check-rules "$tmp/tz.ini" >/dev/null 2>&1; is "$?" 0 "time zone $tz is accepted"
done
# a password in the rules text (stored with each run) is a rules error; it is not echoed
printf "[source]\nquery = SELECT * FROM dblink('host=crm password=hunter2', 'SELECT 1') AS t(a int)\n" > "$tmp/pw.ini"
err=$("$REFINERY" check-rules "$tmp/pw.ini" 2>&1); is "$?" 3 "a password in a query exits 3"
like "$err" 'pw\.ini:2: \[source\] query: the value holds a password' "naming file and line"
unlike "$err" 'hunter2' "without printing the password"
printf '[source]\ntable = crm.leads\n[output]\ncsv_dir = postgresql://u:hunter2@h/x\n' > "$tmp/pw2.ini"
err=$("$REFINERY" check-rules "$tmp/pw2.ini" 2>&1); is "$?" 3 "a URI with user:password@ anywhere exits 3"
unlike "$err" 'hunter2' "and its password is not printed either"
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
# standard output lost (a full device, a reader gone): never a silent success, never a
# death by SIGPIPE
if [ -w /dev/full ]; then
	err=$("$REFINERY" check-rules "$tmp/ok.ini" 2>&1 >/dev/full); rc=$?
	is "$rc" 0 "check-rules onto a full device: its own status"
	like "$err" 'warning: could not write to standard output: No space left on device' \
		"and a warning that the line was lost"
	err=$("$REFINERY" --help 2>&1 >/dev/full); rc=$?
	is "$rc" 5 "--help onto a full device fails"
	like "$err" 'error: could not write to standard output' "and says why"
else
	skip 4 "no writable /dev/full"
fi
# a pipe whose reader is gone before the program writes: a FIFO opened read-write, a
# writer opened, then the only reader closed
mkfifo "$tmp/gone"
exec {rw}<>"$tmp/gone"
exec {w}>"$tmp/gone"
exec {rw}>&-
err=$("$REFINERY" check-rules "$tmp/ok.ini" 2>&1 >&$w); rc=$?
exec {w}>&-
is "$rc" 0 "check-rules into a closed pipe: no death by SIGPIPE"
like "$err" 'could not write to standard output: Broken pipe' "and a warning that the line was lost"
# quantiles mode over the shipped cohorts: their default.ini bounds are no mistake
printf '[source]\ntable = t\n[cohorts]\nmode = quantiles\n[cohort.a]\nmin_quantile = 0.9\n[cohort.b]\nmin_quantile = 0.7\n[cohort.c]\nmin_quantile = 0.4\n[cohort.d]\nmin_quantile = 0\n' > "$tmp/quant.ini"
"$REFINERY" check-rules "$tmp/quant.ini" >/dev/null 2>&1; is "$?" 0 "[cohorts] mode = quantiles with the shipped cohorts is accepted"
printf '[source]\ntable = t\n[cohorts]\nmode = quantiles\n[cohort.a]\nmin_score = 50\n' > "$tmp/quant2.ini"
err=$("$REFINERY" check-rules "$tmp/quant2.ini" 2>&1); is "$?" 3 "but a rule file's own min_score in quantiles mode is refused"
like "$err" 'quant2\.ini:6: \[cohort\.a\] min_score is not used in \[cohorts\] mode = quantiles' "naming its file and line"
# statuses the rules name are canonical ones: a typo would quietly black-list nobody
printf '[source]\ntable = crm.leads\n\n[blacklist.dnc_status]\nstatuses = do_not_cal, refused\n' > "$tmp/status.ini"
err=$("$REFINERY" check-rules "$tmp/status.ini" 2>&1); is "$?" 3 "an unknown status exits 3"
like "$err" "error: $tmp/status.ini:5: \[blacklist\.dnc_status\] statuses: unknown status \"do_not_cal\"" \
	"the unknown status is named with file, line, section and key"
like "$err" 'hint: Did you mean "do_not_call"\?' "the nearest canonical status is suggested"
like "$err" 'detail: Known statuses: do_not_call, wrong_number,' "the known statuses are listed"
printf '[source]\ntable = crm.leads\n[score]\nexclude_statuses = closed_wno\n' > "$tmp/status2.ini"
err=$("$REFINERY" check-rules "$tmp/status2.ini" 2>&1); is "$?" 3 "an unknown status in [score] exclude_statuses exits 3"
like "$err" 'status2\.ini:4: \[score\] exclude_statuses: unknown status "closed_wno"' "and is named"
printf '[source]\ntable = crm.leads\n[status_map]\ncall_back = Call back\n[blacklist.cb]\nstatuses = CALL_BACK\n' > "$tmp/status3.ini"
"$REFINERY" check-rules "$tmp/status3.ini" >/dev/null 2>&1; is "$?" 0 "a status declared in [status_map] is known (any case)"
# check-rules reports every mistake in one pass, in line order
printf '[source]\ntable = crm.leads\ncsv_trim = maybe\n[job]\nname = nightly\n' > "$tmp/many.ini"
printf '[blacklist.dnc_status]\nstatuses = wrong_numbr\n[nonsense]\nx = 1\n' >> "$tmp/many.ini"
err=$("$REFINERY" check-rules "$tmp/many.ini" 2>&1); is "$?" 3 "several mistakes exit 3"
lines=$(printf '%s\n' "$err" | sed -n 's/^refinery: error: [^ ]*many\.ini:\([0-9]*\):.*/\1/p' | tr '\n' ' ')
is "$lines" "3 7 9 " "every mistake is reported, in line order (lines 3, 7, 9)"
like "$err" 'error: 3 errors in the rules' "then how many"
err=$("$REFINERY" run -c "$tmp/many.ini" -d refinery_no_such_db 2>&1); is "$?" 3 "run stops at the first mistake, before connecting"
like "$err" 'many\.ini:3: \[source\] csv_trim: "maybe" is not a boolean' "naming it"
unlike "$err" 'many\.ini:7:' "and only it"
# statuses used as map keys are canonical too: [score.<name>] on the status, a persona's
# when.status, a persona's override of the status parameter
cat > "$tmp/mapkeys.ini" <<'INI'
[source]
table = crm.leads
[score.status]
follow_up_hi = 20
[persona.p]
when.status = folow_up_high, new
status.not_nw = 14
INI
err=$("$REFINERY" check-rules "$tmp/mapkeys.ini" 2>&1); is "$?" 3 "a status map key that is no status exits 3"
like "$err" "error: $tmp/mapkeys.ini:4: \[score\.status\] follow_up_hi: unknown status \"follow_up_hi\"" \
	"a [score.status] key: file, line, section and key"
like "$err" 'hint: Did you mean "follow_up_high"\?' "with the nearest status"
like "$err" "error: $tmp/mapkeys.ini:6: \[persona\.p\] when\.status: unknown status \"folow_up_high\"" \
	"a persona's when.status value too"
like "$err" "error: $tmp/mapkeys.ini:7: \[persona\.p\] status\.not_nw: parameter status has no category \"not_nw\"" \
	"a persona's override names a category (a status) of the parameter"
like "$err" 'hint: Did you mean "status\.not_now"\?' "with the nearest one"
like "$err" 'error: 3 errors in the rules' "all three in one pass"
printf '[source]\ntable = crm.leads\n[score.origin]\nkind = map\nfield = source\nreferal = 3\n' > "$tmp/srcmap.ini"
"$REFINERY" check-rules "$tmp/srcmap.ini" >/dev/null 2>&1
is "$?" 0 "a map on another field is not checked against the statuses (the run warns of unseen keys)"
# errors a loader raises itself do not stop the other sections' errors
cat > "$tmp/loaders.ini" <<'INI'
[source]
table = crm.leads
[persona.p]
bogus = 3
[persona.q]
source.nope = 3
[cohort.a]
min_score = abc
INI
err=$("$REFINERY" check-rules "$tmp/loaders.ini" 2>&1); is "$?" 3 "persona errors exit 3"
lines=$(printf '%s\n' "$err" | sed -n 's/^refinery: error: [^ ]*loaders\.ini:\([0-9]*\):.*/\1/p' | tr '\n' ' ')
is "$lines" "4 6 8 " "one persona's error does not hide the next persona's nor another section's"
like "$err" 'error: 3 errors in the rules' "three errors counted"
unlike "$err" 'unknown key' "and a key the loader refused is not also an unknown key"
cat > "$tmp/regex.ini" <<'INI'
[source]
table = crm.leads
[score.notes]
hot.pattern = (unclosed
[persona.p]
source = 2
[score.source]
referral = 1x
[cohort.a]
min_score = abc
INI
err=$("$REFINERY" check-rules "$tmp/regex.ini" 2>&1); is "$?" 3 "a parameter's own error exits 3"
lines=$(printf '%s\n' "$err" | sed -n 's/^refinery: error: [^ ]*regex\.ini:\([0-9]*\):.*/\1/p' | tr '\n' ' ')
is "$lines" "4 8 10 " "the next parameter's error and another section's come in the same pass"
unlike "$err" 'unknown section' "and the personas, not checked then, are not called unknown"
printf '[source]\ntable = crm.leads\n[blacklist.a]\nfield = full_name\npattern = (unclosed\n[blacklist.b]\nfield = notes\npattern = [z\n[blacklist.c]\nstatuses = refused\ncaseless = maybe\n' > "$tmp/blrules.ini"
err=$("$REFINERY" check-rules "$tmp/blrules.ini" 2>&1); is "$?" 3 "black-list rules' own errors exit 3"
lines=$(printf '%s\n' "$err" | sed -n 's/^refinery: error: [^ ]*blrules\.ini:\([0-9]*\):.*/\1/p' | tr '\n' ' ')
is "$lines" "5 8 11 " "one black-list rule's pattern error does not hide the next rules' errors"
printf '[source]\ntable = crm.leads\n[outlier.a]\nfield = touch_count\n[outlier.b]\nfield = notes\npattern = (x\n' > "$tmp/outl.ini"
err=$("$REFINERY" check-rules "$tmp/outl.ini" 2>&1); is "$?" 3 "outlier rules' own errors exit 3"
lines=$(printf '%s\n' "$err" | sed -n 's/^refinery: error: [^ ]*outl\.ini:\([0-9]*\):.*/\1/p' | tr '\n' ' ')
is "$lines" "4 7 " "nor one outlier rule's the next one's"
# an unknown key wins over what its absence causes
printf '[source]\ntabel = crm.leads\n' > "$tmp/tabel.ini"
err=$("$REFINERY" check-rules "$tmp/tabel.ini" 2>&1); is "$?" 3 "a misspelt [source] table exits 3"
like "$err" "error: $tmp/tabel.ini:2: unknown key \"tabel\" in section \[source\]" "it is reported as the unknown key it is"
like "$err" 'hint: Did you mean "table"\?' "with the nearest known key"
unlike "$err" 'exactly one of' "not as a missing source"
# the shipped defaults, for a system that has no source tree
"$REFINERY" check-rules --defaults > "$tmp/defaults.out"; is "$?" 0 "check-rules --defaults exits 0"
cmp -s "$tmp/defaults.out" "$top_srcdir/rules/default.ini"
ok $? "check-rules --defaults prints rules/default.ini byte for byte"
err=$("$REFINERY" check-rules --defaults "$tmp/ok.ini" 2>&1); is "$?" 2 "--defaults takes no rule files"
like "$("$REFINERY" check-rules --help)" '--defaults' "check-rules --help lists --defaults"
err=$("$REFINERY" check-rules "$tmp/bad.ini" 2>&1)
like "$err" 'hint: .*/default\.ini, or run "refinery check-rules --defaults"' \
	"an unknown key's hint names the installed default.ini and --defaults"
unlike "$err" 'rules/default\.ini' "not the source tree's"
done_testing
