#!/usr/bin/env bash
# inprocess.sh TESTBINARY DIR BENCHMARK
#
# Instructions per operation of an in-process benchmark (an in-memory
# connection: no socket, no scheduler idle work, so about 0.3 % from run
# to run): the test binary (go test -c) runs BENCHMARK under callgrind in
# DIR (its package directory) for 2,000 and for 12,000 iterations;
# (I(12000) - I(2000)) / 10000 leaves start-up out. Prints: TESTBINARY
# BENCHMARK instructions-per-operation.
set -euo pipefail
bin=$(realpath "$1") dir=$2 bench=$3
export GODEBUG=asyncpreemptoff=1 GOMAXPROCS=1
count() {
	local out
	out=$(mktemp -d)
	(cd "$dir" && taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$out/cg" "$bin" \
		-test.run='^$' -test.bench="^$bench\$" -test.benchtime="${1}x" >/dev/null 2>"$out/log")
	grep -h '^totals:' "$out/cg" | awk '{print $2}'
	rm -rf "$out"
}
a=$(count 2000)
b=$(count 12000)
echo "$(basename "$bin") $bench $(((b - a) / 10000))"
