#!/usr/bin/env bash
# Adds Workbench to the desktop's application menu for this user: the .desktop entry (pointing
# at the built app beside this script, or at dist/workbench/ from the source tree) and its icons.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -x "$HERE/workbench" ]]; then
    APP="$HERE"; ICONS="$HERE/_internal/resources/icons"
else
    APP="$(cd "$HERE/.." && pwd)/dist/workbench"; ICONS="$(cd "$HERE/.." && pwd)/resources/icons"
fi
if [[ ! -x "$APP/workbench" ]]; then
    echo "install_desktop_entry.sh: no built app at $APP; run packaging/build.sh first" >&2
    exit 1
fi
DATA="${XDG_DATA_HOME:-$HOME/.local/share}"
for size in 16 24 32 48 64 128 256 512; do
    mkdir -p "$DATA/icons/hicolor/${size}x${size}/apps"
    cp "$ICONS/workbench-$size.png" "$DATA/icons/hicolor/${size}x${size}/apps/workbench.png"
done
mkdir -p "$DATA/applications"
sed -e "s|^Exec=.*|Exec=\"$APP/workbench\"|" -e "s|^TryExec=.*|TryExec=$APP/workbench|" \
    "$(dirname "$0")/workbench.desktop" > "$DATA/applications/workbench.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database -q "$DATA/applications"
echo "Installed $DATA/applications/workbench.desktop -> $APP/workbench"
