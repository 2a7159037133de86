#!/usr/bin/env bash
# Run a command on a machine made slower: it, PostgreSQL and Redis share QUOTA_US of CPU
# time every PERIOD_US (default 1000 of 1000: one core's worth across all cores), in a cgroup
# with short bandwidth slices so that throttling comes in small steps rather than pauses.
# On 2 cores a plain Python loop of 10M additions then takes about twice as long.
#
#     sudo bench/slower_cpu.sh .venv/bin/python bench/clicks.py --runs 3
#
# Needs root and the cgroup v1 "cpu" controller or cgroup v2. Everything is moved back, and
# the kernel's slice restored, when the command ends.
set -euo pipefail

PERIOD_US=${PERIOD_US:-1000}
QUOTA_US=${QUOTA_US:-1000}
SLICE_US=${SLICE_US:-100}
SLICE_FILE=/proc/sys/kernel/sched_cfs_bandwidth_slice_us

if [ -d /sys/fs/cgroup/cpu ] && [ -f /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]; then
    root=/sys/fs/cgroup/cpu
    group=$root/flattr-slower
    mkdir -p "$group"
    echo "$PERIOD_US" > "$group/cpu.cfs_period_us"
    echo "$QUOTA_US" > "$group/cpu.cfs_quota_us"
    members=tasks
else
    root=/sys/fs/cgroup
    group=$root/flattr-slower
    mkdir -p "$group"
    echo "$QUOTA_US $PERIOD_US" > "$group/cpu.max"
    members=cgroup.procs
fi
old_slice=$(cat "$SLICE_FILE")
echo "$SLICE_US" > "$SLICE_FILE"

restore() {
    # Read whole before moving any: the file changes as they leave.
    for pid in $(cat "$group/$members"); do
        echo "$pid" > "$root/$members" 2>/dev/null || true
    done
    echo "$old_slice" > "$SLICE_FILE"
    rmdir "$group" 2>/dev/null || true
}
trap restore EXIT

for pid in $(pgrep -u postgres || true) $(pgrep redis-server || true); do
    for task in /proc/"$pid"/task/*; do
        echo "${task##*/}" > "$group/$members" 2>/dev/null || true
    done
done
echo $$ > "$group/$members"
"$@"
