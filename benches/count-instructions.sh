#!/usr/bin/env bash
# Instructions per call for every scenario of benches/instructions.rs, counted by
# callgrind: (instructions for N calls - instructions for 0 calls) / N.
# Usage: benches/count-instructions.sh [N]   (needs valgrind)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
calls="${1:-100000}"
bin=$(cargo bench --bench instructions --features prometheus --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "instructions" and m.get("executable"):
        print(m["executable"])')
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '| scenario | instructions per call |\n|---|---:|\n'
for scenario in $("$bin" | sed -n 's/^  //p'); do
    base=$(count "$scenario" 0)
    total=$(count "$scenario" "$calls")
    printf '| %s | %s |\n' "$scenario" "$(python3 -c "print(f'{($total - $base) / $calls:.1f}')")"
done
