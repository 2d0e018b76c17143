#!/bin/sh
# The amplification report runs behind BENCHMARKS.md, one after another, each writing its JSON, its SVGs
# and its printed report under docs/bench/ (names as in BENCHMARKS.md). Usage: scripts/amplification-runs.sh [NAME...] (default: every run).
set -eu
cd "$(dirname "$0")/.."
cargo build --release --example amplification
A=./target/release/examples/amplification
run() {
    name=$1
    shift
    echo "== $name: amplification $*" >&2
    nice -n 5 "$A" "$@" --json "docs/bench/$name.json" --svg "docs/bench/$name" >"docs/bench/$name.txt"
}
want() { [ -z "$ONLY" ] || echo " $ONLY " | grep -q " $1 "; }
ONLY="$*"
# The longest run (about an hour on the shared machine): 5,000,000 keys, compression off, the writes and the
# reads of the textbook rows only.
want keys5m-off && run keys5m-off --keys 5000000 --compression off \
    --workloads fillseq,fillrandom,overwrite,readrandom,readmissing,scan
# Data size (100 B values): the README's default run, then compression off (the textbook setting) at 200k and 1M.
want keys200k-default && run keys200k-default
want keys200k-off && run keys200k-off --compression off
want keys1m-off && run keys1m-off --keys 1000000 --compression off
# Value sizes, compression off, keys chosen so key + value bytes are about 23 MB (as 200,000 × 116 B).
want value16-off && run value16-off --value-size 16 --keys 725000 --compression off
want value1k-off && run value1k-off --value-size 1024 --keys 22300 --compression off
want value16k-off && run value16k-off --value-size 16384 --keys 1415 --compression off
# Compression on (zstd level 1 on every level), compressible and incompressible values.
want keys200k-on && run keys200k-on --compression on
want keys200k-on-incompressible && run keys200k-on-incompressible --compression on --compressible 0
want keys200k-off-incompressible && run keys200k-off-incompressible --compression off --compressible 0
want keys1m-on && run keys1m-on --keys 1000000 --compression on
# Options that change the answer, one at a time against keys200k-off (200,000 keys, compression off), on
# the workloads the textbook rows use.
O="--compression off --workloads fillrandom,overwrite,readrandom,readmissing,scan"
want opt-pool64 && run opt-pool64 $O --cache-mib 64
want opt-page1k && run opt-page1k $O --page-size 1024
want opt-page16k && run opt-page16k $O --page-size 16384
want opt-bloom0 && run opt-bloom0 $O --bloom-bits 0
want opt-l1-4 && run opt-l1-4 $O --l1-mib 4
want opt-l1-4-ratio4 && run opt-l1-4-ratio4 $O --l1-mib 4 --level-ratio 4
true
