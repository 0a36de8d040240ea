#!/usr/bin/env bash
# server.sh NAME PORT PATH -- SERVER COMMAND...
#
# User-space instructions per request of a server process, counted by
# valgrind's callgrind (the same on every run for the same binary and
# input, where throughput on a shared machine is not): the server runs
# under callgrind on CPU 0 with GOMAXPROCS=1 and asynchronous preemption
# off (without it a Go server hangs under valgrind), 200 warm-up requests
# on one keep-alive connection, counters zeroed, N more (default 5000)
# from CPU 1, a dump, then SIGKILL (a Go program that catches SIGTERM trips
# callgrind at exit). Prints: NAME PATH instructions-per-request.
# Needs valgrind (apt-get install valgrind) and bin/icount-client
# (cd bench && go build -o ../bin/icount-client ./cmd/icount-client).
set -euo pipefail
name=$1 port=$2 path=$3
shift 4
N=${N:-5000}
client=${ICOUNT_CLIENT:-$(dirname "$0")/../../bin/icount-client}
dir=$(mktemp -d)
export GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$dir/cg" "$@" >/dev/null 2>"$dir/log" &
vpid=$!
trap 'kill -9 $vpid 2>/dev/null || true; rm -rf "$dir"' EXIT
"$client" "127.0.0.1:$port" "$path" 200
callgrind_control -z $vpid >/dev/null
taskset -c 1 "$client" "127.0.0.1:$port" "$path" "$N"
callgrind_control -d $vpid >/dev/null
sleep 0.3
total=$(grep -h '^totals:' "$dir/cg.1" | awk '{print $2}')
echo "$name $path $((total / N))"
