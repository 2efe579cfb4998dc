#!/bin/bash
# The flake figure: the default drills (or what follows on the command line) run N times back to back
# (default 20), each run with a fresh lab; prints how many runs were green, how many failed for the system
# (exit 1) and how many were the harness's errors or inconclusive (exit 2), each scenario's pass rate and
# the spread (p50/p95/max) of every timing. The bar: N of N green, 0 harness errors.
#   scripts/flake.sh [N] [dr-drill run arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
shift || true
dir="${FLAKE_DIR:-reports/flake-$(date +%Y%m%d-%H%M%S)}"
bin=target/release/dr-drill
[ -x "$bin" ] || bin=target/debug/dr-drill
[ -x "$bin" ] || { cargo build --release && bin=target/release/dr-drill; }
set +e
"$bin" run --repeat "$n" --report-dir "$dir" "$@"
code=$?
set -e
python3 - "$dir/campaign.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
o = c["outcomes"]
d = o.get("durationS") or {}
print(f"flake figure: {o['green']}/{c['runs']} runs green ({o['greenRate']:.0%}); exit 1 (system): {o['systemFailed']}; exit 2 (harness or inconclusive): {o['harnessOrInconclusive']}; run time p50/p95/max {d.get('p50', '-')}/{d.get('p95', '-')}/{d.get('max', '-')} s")
for s in c["scenarios"]:
    lw = s.get("lossWindowMs") or {}
    print(f"  {s['scenario']}: {s['passed']}/{s['runs']} passed; loss window p50/p95/max {lw.get('p50', '-')}/{lw.get('p95', '-')}/{lw.get('max', '-')} ms")
    for r in s["rtoMs"]:
        print(f"      {r['segment']}: p50 {r['p50']:.0f} / p95 {r['p95']:.0f} / max {r['max']:.0f} ms (n {r['n']})")
    for f in s["failures"]:
        print(f"    run {f['run']}: {f['status']} ({f['cause']}): {f['reason']}")
PY
exit $code
