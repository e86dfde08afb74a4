#!/usr/bin/env bash
# Put DenseLens in the user's applications menu (no root needed).
#   ./install-linux.sh [PATH/TO/DenseLens]   (default: the DenseLens next to this script's bundle)
# Undo: ./install-linux.sh --uninstall
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$apps/denselens.desktop"
  find "$icons" -name denselens.png -delete 2>/dev/null || true
  echo "DenseLens removed from the applications menu."
  exit 0
fi
exe="${1:-$(cd "$here/../../.." && pwd)/DenseLens}"
[ -x "$exe" ] || { echo "error: $exe is not an executable; give the path of the DenseLens program" >&2; exit 2; }
iconsrc="$here/../icons"
mkdir -p "$apps"
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "$icons/${size}x${size}/apps"
  cp "$iconsrc/denselens-$size.png" "$icons/${size}x${size}/apps/denselens.png"
done
sed "s|@EXEC@|\"$exe\"|" "$here/denselens.desktop" > "$apps/denselens.desktop"
chmod +x "$apps/denselens.desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "DenseLens is in the applications menu ($apps/denselens.desktop)."
