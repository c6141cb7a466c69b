# tests/lib/slurm.sh
#    A private, throwaway Slurm cluster on localhost for one test script: munged on
#    a socket of its own, slurmctld, and K slurmd nodes (n1..nK, each CPUs=1, on
#    distinct ports, one partition "refinery").  Needs slurm-wlm and munge (Debian's
#    packages; tests/deps.sh installs them) and root or the daemons' own user.
#
#    slurm_start K: start it under $SLURM_TMP and export SLURM_CONF, so sbatch, squeue
#    and scontrol reach it; returns non-zero with the reason in $SLURM_WHY when it
#    cannot start.  slurm_stop: stop every daemon it started (by pid) and remove the
#    folder; call it from the EXIT trap.  slurm_wait_idle: poll until squeue shows no
#    job (a bound against a hang, never a timing assumption).  Source tests/lib/pg.sh
#    first: the nodes' ports come from its pg_free_port.

slurm_start() {
	local k=${1:-2} i host nodes="" ctl_port
	SLURM_WHY=""
	for i in slurmctld slurmd sbatch squeue scontrol munged mungekey; do
		command -v $i >/dev/null 2>&1 || [ -x /usr/sbin/$i ] ||
			{ SLURM_WHY="$i is not installed (slurm-wlm, munge)"; return 1; }
	done
	[ "$(id -u)" = 0 ] || { SLURM_WHY="slurmd needs root to start job steps"; return 1; }
	SLURM_TMP=$(mktemp -d "${TMPDIR:-/tmp}/refinery-slurm.XXXXXX")
	chmod 700 "$SLURM_TMP"
	mkdir -p "$SLURM_TMP/state" "$SLURM_TMP/munge"
	chmod 700 "$SLURM_TMP/munge"
	PATH=$PATH:/usr/sbin mungekey --create --keyfile="$SLURM_TMP/munge/munge.key" >/dev/null 2>&1 ||
		{ SLURM_WHY="mungekey failed"; return 1; }
	PATH=$PATH:/usr/sbin munged --force --socket="$SLURM_TMP/munge/munge.sock" \
		--key-file="$SLURM_TMP/munge/munge.key" --pid-file="$SLURM_TMP/munge/munged.pid" \
		--log-file="$SLURM_TMP/munge/munged.log" --seed-file="$SLURM_TMP/munge/munged.seed" \
		>/dev/null 2>&1 || { SLURM_WHY="munged did not start: $(tail -n 1 "$SLURM_TMP/munge/munged.log" 2>/dev/null)"; return 1; }
	host=$(hostname -s)
	ctl_port=$(pg_free_port)
	for ((i = 1; i <= k; i++)); do
		nodes="$nodes
NodeName=n$i NodeHostname=$host NodeAddr=127.0.0.1 Port=$(pg_free_port) CPUs=1 RealMemory=512 State=UNKNOWN"
	done
	cat >"$SLURM_TMP/slurm.conf" <<CONF
ClusterName=refinery-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctl_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SLURM_TMP/munge/munge.sock
StateSaveLocation=$SLURM_TMP/state
SlurmdSpoolDir=$SLURM_TMP/slurmd.%n
SlurmctldPidFile=$SLURM_TMP/slurmctld.pid
SlurmdPidFile=$SLURM_TMP/slurmd.%n.pid
SlurmctldLogFile=$SLURM_TMP/slurmctld.log
SlurmdLogFile=$SLURM_TMP/slurmd.%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SchedulerParameters=batch_sched_delay=0,sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
InactiveLimit=0
KillWait=5
MinJobAge=600
SlurmdTimeout=60
$nodes
PartitionName=refinery Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
	export SLURM_CONF=$SLURM_TMP/slurm.conf
	PATH=$PATH:/usr/sbin slurmctld -f "$SLURM_CONF" >"$SLURM_TMP/slurmctld.out" 2>&1 ||
		{ SLURM_WHY="slurmctld did not start: $(tail -n 2 "$SLURM_TMP/slurmctld.log" 2>/dev/null | tr '\n' ' ')"; return 1; }
	for ((i = 1; i <= k; i++)); do
		mkdir -p "$SLURM_TMP/slurmd.n$i"
		PATH=$PATH:/usr/sbin slurmd -f "$SLURM_CONF" -N n$i >"$SLURM_TMP/slurmd.n$i.out" 2>&1 ||
			{ SLURM_WHY="slurmd n$i did not start: $(tail -n 2 "$SLURM_TMP/slurmd.n$i.log" 2>/dev/null | tr '\n' ' ')"; return 1; }
	done
	# ready: every node idle
	poll_until "${SLURM_WAIT_SECONDS:-60}" slurm_nodes_idle "$k" ||
		{ SLURM_WHY="the nodes did not come up: $(sinfo -h -N -o '%N %T' 2>&1 | tr '\n' ' ')"; return 1; }
}

slurm_nodes_idle() { [ "$(sinfo -h -N -t idle -o '%N' 2>/dev/null | sort -u | wc -l)" = "$1" ]; }

slurm_stop() {
	local f pids="" p munge=""
	[ -n "${SLURM_TMP:-}" ] && [ -d "$SLURM_TMP" ] || return 0
	for f in "$SLURM_TMP"/slurmd.*.pid "$SLURM_TMP/slurmctld.pid"; do
		[ -f "$f" ] && pids="$pids $(cat "$f")"
	done
	[ -f "$SLURM_TMP/munge/munged.pid" ] && munge=$(cat "$SLURM_TMP/munge/munged.pid")
	# the daemons first, munged last (they use it to the end)
	for p in $pids; do kill "$p" 2>/dev/null; done
	slurm_wait_gone $pids
	[ -n "$munge" ] && kill "$munge" 2>/dev/null && slurm_wait_gone "$munge"
	rm -rf "$SLURM_TMP"
	SLURM_TMP=""
}

# slurm_wait_gone PID...: until no PID is a live process (zombies count as gone); 30 s bound
slurm_wait_gone() {
	poll_until 30 slurm_none_live "$@" || true
}

slurm_none_live() {
	local p
	for p in "$@"; do
		[ -d /proc/$p ] && [ "$(awk '{ print $3 }' /proc/$p/stat 2>/dev/null)" != Z ] && return 1
	done
	return 0
}

slurm_wait_idle() {
	poll_until "${SLURM_WAIT_SECONDS:-300}" slurm_queue_empty
}

slurm_queue_empty() { squeue -h >/dev/null 2>&1 && [ -z "$(squeue -h -o %i 2>/dev/null)" ]; }
