#!/bin/sh
# Counts the system calls of one benchmark instance during its smtp load
# phase: run beside `scripts/bench smtp -C 0 --only SIDE` (or a side-by-side
# run). Waits for smtp-source to start (after the warm-up), attaches
# `strace -c -f` to master and every process below it, and detaches when
# the driver has written that run's result file. Output: strace's summary
# table in OUT (default /tmp/syscalls.SIDE.txt), and with -p one table per
# process already running at the start (OUT.NAME.PID: master, each daemon,
# with the threads and children it starts).
#
#   scripts/bench.d/syscalls.sh [-p] ours|postfix [OUT]
set -eu
per=0
[ "${1:-}" = -p ] && { per=1; shift; }
side=${1:?usage: syscalls.sh ours|postfix [OUT]}
out=${2:-/tmp/syscalls.$side.txt}
command -v strace >/dev/null || { echo "syscalls.sh: strace is not installed (apt-get install strace)" >&2; exit 1; }
pidfile=""
while [ -z "$pidfile" ]; do
    sleep 0.2
    pgrep -x smtp-source >/dev/null || continue
    pidfile=$(ls -t /tmp/bench.*/"$side"/*/pid/master.pid /tmp/bench.*/"$side"/pid/master.pid \
        /tmp/bench.*/"$side"/*/*/pid/master.pid 2>/dev/null | head -1 || true)
done
tmp=${pidfile%%/"$side"/*}
master=$(cat "$pidfile")
# master and its descendants
pids=$master
frontier=$master
while [ -n "$frontier" ]; do
    next=""
    for p in $frontier; do
        for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do next="$next $c"; done
    done
    pids="$pids $next"
    frontier=$next
done
args=""
for p in $pids; do args="$args -p $p"; done
if [ "$per" = 1 ]; then
    st=""
    for p in $pids; do
        name=$(cat /proc/"$p"/comm 2>/dev/null || echo gone)
        strace -c -f -qq -o "$out.$name.$p" -p "$p" &
        st="$st $!"
    done
else
    strace -c -f -qq -o "$out" $args &
    st=$!
fi
# the driver's result for this side's load phase
until ls "$tmp"/result.*.load "$tmp"/result.* 2>/dev/null | grep -q .; do
    [ -d "$tmp" ] || break
    sleep 0.2
done
for s in $st; do kill -INT "$s" 2>/dev/null || true; done
for s in $st; do wait "$s" 2>/dev/null || true; done
echo "syscalls.sh: $side: $(echo $pids | wc -w) processes traced; summary in $out"
