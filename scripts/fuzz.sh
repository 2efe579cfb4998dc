#!/bin/bash
# Coverage-guided fuzzing (libFuzzer via cargo-fuzz) of every input dr-drill reads: each target for
# SECONDS seconds (default 120), seeded from the repository's own files; prints each target's run count.
# A crash is kept under fuzz/artifacts/<target>/: add it to tests/fuzz.rs's REGRESSIONS once fixed.
#   scripts/fuzz.sh [seconds] [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-120}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(env_file feature_file probe_block probe_line lint_manifest run_folder)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# copies files into a corpus under names made from their paths (two files may share a name)
put() {
  local c=$1 f
  shift
  for f in "$@"; do cp -f "$f" "$c/$(printf '%s' "$f" | tr '/' '_')"; done
}
seed() {
  local t=$1 c=fuzz/corpus/$1
  mkdir -p "$c"
  case $t in
    env_file) put "$c" environments/*.yaml tests/fixtures/*.yaml ;;
    feature_file) put "$c" features/*.feature features/negative/*.feature ;;
    lint_manifest) put "$c" tests/fixtures/lint/*.yaml ;;
    probe_line) printf 'ACK 12 1700000000000000000 812' > "$c/ack"; printf 'RANGE 1 90 00000000deadbeef' > "$c/range" ;;
    run_folder) { cat tests/fixtures/report/lab-failover/summary.json; printf '\0'; head -200 tests/fixtures/report/lab-failover/history-vm0.jsonl; } > "$c/run" ;;
  esac
}
for t in "${targets[@]}"; do
  seed "$t"
  log=$(mktemp)
  if cargo fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 >"$log" 2>&1; then status=ok; else status=CRASH; fi
  runs=$(grep -oE '#[0-9]+' "$log" | tail -1 | tr -d '#')
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1)
  echo "fuzz $t: $status, ${runs:-0} runs in ${secs}s, $cov"
  [ $status = ok ] || { tail -40 "$log"; }
  rm -f "$log"
done
