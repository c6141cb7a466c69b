#!/bin/bash
# tests/integration/outfiles.sh -- every file the engine writes (F12, F13): links planted at
# the old predictable FILE.tmp names or at the target never lead to a victim file; devices
# and FIFOs are written in place, never replaced, and a failed write there is an error naming
# the file; result files are 0600 unless --file-mode or [output] file_mode says otherwise; a
# killed writer's temporary file is removed by the next write, a live writer's is kept.
# Nothing waits a fixed time: FIFOs and flock(1) give the states to wait for.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib/tap.sh"
. "$top_srcdir/tests/lib/pg.sh"
command -v psql >/dev/null || skip_all "psql is not installed"
command -v flock >/dev/null || skip_all "flock(1) is not installed"
pg_bindir >/dev/null || skip_all "no PostgreSQL server binaries"
"$REFINERY" --help >/dev/null || skip_all "no refinery binary"
pg_start || { echo "Bail out! could not start PostgreSQL"; exit 1; }
tmp=$PG_TMP/work; mkdir -p "$tmp"
# a umask that would make new files 0644: the modes below come from the engine alone
umask 022

N=1500
"$GENLEADS" --rows $N --seed 3 --out-dir "$tmp/gen" >/dev/null
pg_load_leads "$tmp/gen"
cat > "$tmp/rules.ini" <<INI
[source]
table = crm.leads
now = auto
[match]
reps_query = SELECT rep_id, name, active, capacity FROM crm.reps
stats_query = SELECT rep_id, source, attempts, wins FROM crm.rep_source_stats
INI
"$REFINERY" init-db -q && "$REFINERY" run -q -c "$tmp/rules.ini"
ok $? "a committed run to read back"

mode() { stat -c %a "$1"; }
victim=$tmp/victim.txt
echo "precious" > "$victim"

# ---- F12: planted links ----
ln -s "$victim" "$tmp/report.html.tmp"
"$REFINERY" report --html "$tmp/report.html" >/dev/null; rc=$?
is "$rc" 0 "report --html beside a link planted at report.html.tmp succeeds"
is "$(cat "$victim")" "precious" "the link at the old temporary name is not followed"
like "$(tail -n 1 "$tmp/report.html")" '</body></html>' "the report is written whole"
ln -s "$victim" "$tmp/fitted.ini.tmp"
"$REFINERY" calibrate -c "$tmp/rules.ini" -o "$tmp/fitted.ini" >/dev/null 2>&1; rc=$?
is "$rc" 0 "calibrate -o beside a link planted at fitted.ini.tmp succeeds"
is "$(cat "$victim")" "precious" "that link is not followed either"
like "$(cat "$tmp/fitted.ini")" '\[score' "the fitted rules are written"

ln -s "$victim" "$tmp/link.csv"
err=$("$REFINERY" export --csv "$tmp/link.csv" 2>&1); rc=$?
is "$rc" 5 "export onto a symbolic link is refused with the data code"
like "$err" "could not write file \"$tmp/link.csv\": it is a symbolic link" "naming the file"
ln -s "$victim" "$tmp/link.html"
err=$("$REFINERY" report --html "$tmp/link.html" 2>&1 >/dev/null); rc=$?
is "$rc" 5 "report --html onto a symbolic link is refused"
ln -s "$victim" "$tmp/link.ini"
err=$("$REFINERY" calibrate -c "$tmp/rules.ini" -o "$tmp/link.ini" 2>&1 >/dev/null); rc=$?
is "$rc" 5 "calibrate -o onto a symbolic link is refused"
is "$(cat "$victim")" "precious" "no victim behind a link at the target is written"
ok "$([ -L "$tmp/link.csv" ] && [ -L "$tmp/link.html" ] && [ -L "$tmp/link.ini" ]; echo $?)" \
	"and the links are left as they were"

# ---- F12: devices ----
err=$("$REFINERY" export --csv /dev/full 2>&1); rc=$?
is "$rc" 5 "export onto /dev/full fails with the data code"
like "$err" 'could not write file "/dev/full": No space left on device' "naming the file and why"
err=$("$REFINERY" report --html /dev/full 2>&1 >/dev/null); rc=$?
is "$rc" 5 "report --html onto /dev/full fails too"
like "$err" 'could not write file "/dev/full": No space left on device' "naming the file"
ok "$([ -c /dev/full ]; echo $?)" "/dev/full is still a character device"
ln -s /dev/full "$tmp/full.ini"
err=$("$REFINERY" calibrate -c "$tmp/rules.ini" -o "$tmp/full.ini" 2>&1 >/dev/null); rc=$?
is "$rc" 5 "calibrate -o onto a link to /dev/full fails"
like "$err" 'No space left on device' "with the reason"
like "$err" "file \"$tmp/full.ini\"" "and naming the file"
ok "$([ -L "$tmp/full.ini" ] && [ -c "$tmp/full.ini" ]; echo $?)" \
	"a link to a device is written through, and stays a link"
out=$("$REFINERY" export --csv /dev/stdout | wc -l); rc=${PIPESTATUS[0]}
is "$rc" 0 "export onto /dev/stdout (a pipe) succeeds"
is "$out" "$((N + 1))" "and the pipe gets the header and every lead"

# ---- F12: FIFOs ----
# The reader starts first; once the writer is done, a read-write open that is closed at
# once ends a reader still waiting for a writer (nothing was written), without blocking.
fifo_read() { # fifo_read FIFO OUT: start a reader; sets $reader
	cat "$1" > "$2" &
	reader=$!
}
fifo_done() { # fifo_done FIFO: after the writer, end the reader whatever happened
	if [ -p "$1" ]; then
		exec 4<>"$1"
		exec 4>&-
	else
		kill "$reader" 2>/dev/null # replaced: the reader waits on a FIFO nobody can open
	fi
	wait "$reader"
}
mkfifo "$tmp/pipe.csv"
fifo_read "$tmp/pipe.csv" "$tmp/pipe.out"
"$REFINERY" export --csv "$tmp/pipe.csv"; rc=$?
fifo_done "$tmp/pipe.csv"
is "$rc" 0 "export into a FIFO succeeds"
ok "$([ -p "$tmp/pipe.csv" ]; echo $?)" "the FIFO is still a FIFO"
is "$(wc -l < "$tmp/pipe.out")" "$((N + 1))" "its reader got the header and every lead"
mkfifo "$tmp/pipe.html"
fifo_read "$tmp/pipe.html" "$tmp/pipe.html.out"
"$REFINERY" report --html "$tmp/pipe.html" >/dev/null; rc=$?
fifo_done "$tmp/pipe.html"
is "$rc" 0 "report --html into a FIFO succeeds"
ok "$([ -p "$tmp/pipe.html" ]; echo $?)" "that FIFO stays a FIFO"
like "$(tail -n 1 "$tmp/pipe.html.out")" '</body></html>' "its reader got the whole report"

# ---- F13: modes ----
"$REFINERY" export --csv "$tmp/m.csv"
is "$(mode "$tmp/m.csv")" 600 "an export is 0600 by default, whatever the umask"
ino=$(stat -c %i "$tmp/m.csv")
"$REFINERY" export --csv "$tmp/m.csv" --file-mode 0640
is "$(mode "$tmp/m.csv")" 640 "--file-mode 0640 gives 0640"
ok "$([ "$(stat -c %i "$tmp/m.csv")" != "$ino" ]; echo $?)" \
	"an existing target is replaced by a rename, not rewritten in place"
is "$(mode "$tmp/report.html")" 600 "an HTML report is 0600 by default"
"$REFINERY" report --html "$tmp/report.html" --file-mode=644 >/dev/null
is "$(mode "$tmp/report.html")" 644 "report takes --file-mode"
is "$(mode "$tmp/fitted.ini")" 600 "calibrate -o writes 0600 by default"
printf '[output]\nfile_mode = 0640\n' > "$tmp/mode.ini"
"$REFINERY" calibrate -c "$tmp/rules.ini" -c "$tmp/mode.ini" -o "$tmp/fitted.ini" >/dev/null 2>&1
is "$(mode "$tmp/fitted.ini")" 640 "calibrate follows [output] file_mode"
"$REFINERY" calibrate -c "$tmp/rules.ini" -c "$tmp/mode.ini" -o "$tmp/fitted.ini" --file-mode 0604 \
	>/dev/null 2>&1
is "$(mode "$tmp/fitted.ini")" 604 "and --file-mode over it"
is "$(ls -A "$tmp" | grep -c '\.refinery\.')" 0 "no temporary file is left behind"


# ---- F13: a run's CSV target, killed and swept ----
mkdir "$tmp/out"
out=$tmp/out
cat > "$tmp/csv.ini" <<INI
[source]
csv = $tmp/gen/leads.csv
now = auto
[output]
target = csv
csv_dir = $out
INI
# the same leads and one ragged row, which goes to the reject file
{ cat "$tmp/gen/leads.csv"; echo '9999999,too,few'; } > "$tmp/ragged.csv"
printf '[source]\ncsv = %s\ncsv_reject = %s\n' "$tmp/ragged.csv" "$out/rejects.txt" > "$tmp/reject.ini"
"$REFINERY" run -q -c "$tmp/csv.ini" -c "$tmp/reject.ini"; rc=$?
is "$rc" 0 "a run with a CSV target"
is "$(mode "$out/lead_results.csv")" 600 "writes its results 0600 by default"
is "$(mode "$out/rejects.txt")" 600 "and its reject file 0600"
like "$(cat "$out/rejects.txt")" 'ragged\.csv", line [0-9]+.*expected 15 fields, found 3' \
	"which holds the ragged row"
"$REFINERY" run -q -c "$tmp/csv.ini" -c "$tmp/reject.ini" -c "$tmp/mode.ini"
is "$(mode "$out/lead_results.csv")" 640 "[output] file_mode = 0640 gives 0640"
is "$(mode "$out/rejects.txt")" 640 "to the reject file too"

REFINERY_FAULT=outfile "$REFINERY" run -q -c "$tmp/csv.ini" 2>/dev/null; rc=$?
is "$rc" 137 "F13: the engine died by SIGKILL with its results written but not renamed"
left=$(cd "$out" && ls -A | grep '^\.lead_results\.csv\.refinery\.')
like "$left" '^\.lead_results\.csv\.refinery\.[A-Za-z0-9]{6}$' "it left one hidden temporary file"
is "$(mode "$out/$left")" 600 "private even so"
is "$(wc -l < "$out/$left")" "$((N + 1))" "holding the whole result"

# more leftovers: an unlocked one, one a live writer holds, another target's, a link
: > "$out/.lead_results.csv.refinery.dead01"
: > "$out/.lead_results.csv.refinery.live01"
: > "$out/.other.csv.refinery.dead02"
ln -s "$victim" "$out/.lead_results.csv.refinery.link01"
mkfifo "$tmp/hold"
flock "$out/.lead_results.csv.refinery.live01" cat "$tmp/hold" >/dev/null &
holder=$!
exec 3>"$tmp/hold" # returns once cat reads the FIFO: flock holds the lock by then
"$REFINERY" run -q -c "$tmp/csv.ini"; rc=$?
is "$rc" 0 "the next run succeeds"
ok "$([ ! -e "$out/$left" ]; echo $?)" "F13: the killed run's temporary file is removed"
ok "$([ ! -e "$out/.lead_results.csv.refinery.dead01" ]; echo $?)" "so is any other unlocked one"
ok "$([ -e "$out/.lead_results.csv.refinery.live01" ]; echo $?)" "one a live writer holds is kept"
ok "$([ -e "$out/.other.csv.refinery.dead02" ]; echo $?)" "another target's is kept"
ok "$([ -L "$out/.lead_results.csv.refinery.link01" ]; echo $?)" "a link is neither followed nor removed"
is "$(cat "$victim")" "precious" "and its victim is untouched"
exec 3>&-
wait "$holder"
"$REFINERY" run -q -c "$tmp/csv.ini"
ok "$([ ! -e "$out/.lead_results.csv.refinery.live01" ]; echo $?)" \
	"once its writer is gone, the next run removes it"
is "$(mode "$out/lead_results.csv")" 600 "the results are 0600 again"

# a run's CSV target that is a FIFO is written in place
rm -f "$out/lead_results.csv"
mkfifo "$out/lead_results.csv"
fifo_read "$out/lead_results.csv" "$tmp/run.out"
"$REFINERY" run -q -c "$tmp/csv.ini"; rc=$?
fifo_done "$out/lead_results.csv"
is "$rc" 0 "a run into a FIFO target succeeds"
ok "$([ -p "$out/lead_results.csv" ]; echo $?)" "the FIFO stays a FIFO"
is "$(wc -l < "$tmp/run.out")" "$((N + 1))" "and its reader got every lead"
done_testing
