#!/usr/bin/env bash
# Builds the standalone Workbench app folder: dist/workbench/ (run from anywhere).
# Needs PyInstaller (pip install -r packaging/requirements.txt) in the Python that has
# Workbench's dependencies (torch, PySide6, pyqtgraph); the app bundles that torch as is.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python}"
cd "$ROOT"
if ! "$PYTHON" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is missing; install it with:" >&2
    echo "    $PYTHON -m pip install -r packaging/requirements.txt" >&2
    exit 1
fi
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/workbench.spec
app="$ROOT/dist/workbench"
cp packaging/workbench.desktop "$app/"
cp resources/icons/workbench-256.png "$app/workbench.png"
cp packaging/install_desktop_entry.sh "$app/"
seconds=$(( $(date +%s) - start ))
echo "Built $app in ${seconds} s: $(du -sh "$app" | cut -f1), $(find "$app" -type f | wc -l) files"
echo "Run it: $app/workbench    Smoke test: packaging/smoke_test.sh"
