#!/usr/bin/env bash
# Smoke-tests the built app (dist/workbench/, or the folder given): `--version`, then smoke mode
# offscreen: open the bundled example, train one epoch on mnist_small, print JSON, exit 0.
# Everything the app writes goes to a temporary WORKBENCH_HOME, removed afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APP="${1:-$ROOT/dist/workbench}"
TIMEOUT="${SMOKE_TIMEOUT:-600}"
EXE="$APP/workbench"
if [[ ! -x "$EXE" ]]; then
    echo "smoke_test.sh: no built app at $APP; run packaging/build.sh first" >&2
    exit 1
fi
HOME_DIR="$(mktemp -d)"
trap 'rm -rf "$HOME_DIR"' EXIT
export QT_QPA_PLATFORM=offscreen WORKBENCH_HOME="$HOME_DIR" XDG_CONFIG_HOME="$HOME_DIR/config"

version="$("$EXE" --version)"
echo "version: $version"
[[ "$version" == workbench\ * ]] || { echo "smoke_test.sh: unexpected --version: $version" >&2; exit 1; }

start=$(date +%s.%N)
set +e
WORKBENCH_SMOKE=1 WORKBENCH_SMOKE_T0="$start" WORKBENCH_SMOKE_TIMEOUT="$TIMEOUT" \
    timeout --kill-after=10 $((TIMEOUT + 30)) "$EXE" > "$HOME_DIR/out.txt" 2> "$HOME_DIR/err.txt"
status=$?
set -e
seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
result="$(grep '^{' "$HOME_DIR/out.txt" | tail -n 1 || true)"
echo "result: ${result:-<none>}"
if [[ $status -ne 0 || -z "$result" ]]; then
    echo "smoke_test.sh: FAILED (exit status $status) after ${seconds} s; the app's stderr:" >&2
    tail -n 40 "$HOME_DIR/err.txt" >&2
    exit 1
fi
echo "smoke test passed in ${seconds} s"
