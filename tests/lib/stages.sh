# tests/lib/stages.sh
#    The stage names of engine/stagelist.h, for tests that expect the stage list.
#
# stage_names SEP   -- the names in run order, joined by SEP (e.g. ", ")
# stage_count       -- how many there are

stage_names() {
	sed -n 's/^\(PLAN_\)\{0,1\}STAGE("\([a-z_]*\)".*/\2/p' "$top_srcdir/engine/stagelist.h" |
		awk -v sep="$1" '{ printf "%s%s", (NR > 1 ? sep : ""), $0 }'
}

stage_count() {
	grep -c '^\(PLAN_\)\{0,1\}STAGE("' "$top_srcdir/engine/stagelist.h"
}
