#!/usr/bin/env bash
# Reads of the wall clock and timers in src/ that bypass the Clock (src/clock.ts), the simulator
# aside: `Date.now()` and bare `setTimeout(` (a `clock.setTimeout(` call goes through the Clock and
# is not counted). Prints one line per hit, then the totals.
set -euo pipefail
cd "$(dirname "$0")/.."
hits () { grep -rnE --include='*.ts' "$1" src | grep -v -e '^src/clock\.ts:' || true; }
now=$(hits 'Date\.now\(\)')
timers=$(hits '(^|[^.[:alnum:]_])setTimeout\(')
printf '%s\n' "$now" "$timers" | sed '/^$/d'
count () { if [ -z "$1" ]; then echo 0; else grep -c '' <<<"$1"; fi; }
echo "Date.now(): $(count "$now")  bare setTimeout(: $(count "$timers")"
