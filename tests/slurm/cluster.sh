#!/usr/bin/env bash
# A real one-node SLURM cluster for tests: munged, slurmctld and slurmd from Debian's slurm-wlm
# and munge packages, configured under a state folder, with a Gres=gpu entry backed by /dev/null
# so that --gpus requests schedule on a machine without a GPU.
#
#   tests/slurm/cluster.sh install        # apt-get install the packages (needs root and the Debian mirror)
#   tests/slurm/cluster.sh start DIR      # write DIR/slurm.conf, start the daemons, wait until idle
#   tests/slurm/cluster.sh stop DIR       # stop the daemons started from DIR
#
# The configuration is installed as /etc/slurm/slurm.conf (and gres.conf), where every SLURM
# command finds it: Snakemake's job-step plugin removes SLURM_* variables such as SLURM_CONF from
# the environment of srun inside jobs. `stop` removes the files again if `start` created them.
set -euo pipefail

cmd=${1:?usage: cluster.sh install|start DIR|stop DIR}

case "$cmd" in
install)
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null
    ;;
start)
    dir=$(realpath -m "${2:?state folder}")
    mkdir -p "$dir"/{spool,state,log,munge}
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    # munge: a key of our own and a socket in the state folder
    if [ ! -s "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
        chmod 0400 "$dir/munge/munge.key"
    fi
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed"
    cat > "$dir/gres.conf" <<GRES
NodeName=$host Name=gpu File=/dev/null Count=1
GRES
    cat > "$dir/slurm.conf" <<CONF
ClusterName=hessmask-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=600
KillWait=5
InactiveLimit=0
SlurmdTimeout=60
NodeName=$host CPUs=$cpus RealMemory=$mem Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=hessmask Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
    mkdir -p /etc/slurm
    if [ -e /etc/slurm/slurm.conf ] && ! grep -q "^ClusterName=hessmask-test" /etc/slurm/slurm.conf; then
        echo "/etc/slurm/slurm.conf belongs to another cluster; not replacing it" >&2
        exit 1
    fi
    cp "$dir/slurm.conf" /etc/slurm/slurm.conf
    cp "$dir/gres.conf" /etc/slurm/gres.conf
    touch "$dir/installed-etc"
    slurmctld
    slurmd
    for _ in $(seq 60); do
        state=$(sinfo -h -o %t 2>/dev/null || true)
        case "$state" in idle*|mix*|alloc*) echo "slurm cluster up ($state)"; exit 0 ;; esac
        sleep 1
    done
    echo "slurm cluster did not come up; logs in $dir/log" >&2
    tail -n 20 "$dir"/log/*.log >&2 || true
    exit 1
    ;;
stop)
    dir=$(realpath -m "${2:?state folder}")
    scancel --quiet --user="$(id -un)" 2>/dev/null || true
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if [ -s "$pidfile" ]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
        fi
    done
    sleep 1
    if [ -e "$dir/installed-etc" ] && grep -q "^ClusterName=hessmask-test" /etc/slurm/slurm.conf 2>/dev/null; then
        rm -f /etc/slurm/slurm.conf /etc/slurm/gres.conf "$dir/installed-etc"
    fi
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
