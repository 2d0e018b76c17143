#!/usr/bin/env bash
# Fuzz every target (or the ones named) for SECONDS each, on stable Rust, without cargo-fuzz:
#   fuzz/run.sh 60                 # all targets, 60 s each
#   fuzz/run.sh 600 wal_decode     # one target
# Builds with the coverage flags cargo-fuzz passes, runs libFuzzer on fuzz/corpus/<target> (grown in place;
# never commit the growth without `cargo fuzz cmin`), and writes crashes to fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
triple=x86_64-unknown-linux-gnu
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --target "$triple" --bins
status=0
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "artifacts/$t"
  echo "== $t for ${secs}s"
  if ! "target/$triple/release/$t" -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
    -artifact_prefix="artifacts/$t/" "corpus/$t" > "artifacts/$t/last.log" 2>&1; then
    status=1
    echo "   FAILED: see artifacts/$t/ (log in artifacts/$t/last.log)"
  fi
  grep -E "^#[0-9]+" "artifacts/$t/last.log" | tail -1 || true
done
exit $status
