#!/usr/bin/env bash
# Put DenseLens in the user's applications menu (no root needed).
#   ./install-linux.sh [PATH/TO/DenseLens]   (default: the DenseLens next to this script's bundle)
# Undo: ./install-linux.sh --uninstall
#
# The program's path may hold any character but a newline (spaces, quotes, $, %, &, |, \ ...): it is
# quoted by the Desktop Entry rules for Exec= and escaped again for sed's replacement text.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true  # bash 5.2: & in ${x//a/b} stays literal
here="$(cd "$(dirname "$0")" && pwd)"
data="${XDG_DATA_HOME:-$HOME/.local/share}"
apps="$data/applications"
icons="$data/icons/hicolor"
link="$data/denselens/DenseLens"
if [ "${1:-}" = "--uninstall" ]; then
  rm -f "$apps/denselens.desktop" "$link"
  rmdir "$data/denselens" 2>/dev/null || true
  find "$icons" -name denselens.png -delete 2>/dev/null || true
  echo "DenseLens removed from the applications menu."
  exit 0
fi
exe="${1:-$here/../../../DenseLens}"
case "$exe" in
  *$'\n'*) echo "error: the program's path contains a line break, which a menu entry cannot hold" >&2; exit 2 ;;
esac
[ -f "$exe" ] && [ -x "$exe" ] || {
  echo "error: $exe is not an executable; give the path of the DenseLens program" >&2; exit 2; }
exe="$(cd "$(dirname "$exe")" && pwd)/$(basename "$exe")"  # absolute: the menu starts it from anywhere
rm -f "$link"
case "$exe" in
  *%*)  # GLib (GNOME's menus) rejects an entry whose program path holds a %, even written %% as the
        # specification says: start it through a link whose path has none.
    mkdir -p "$(dirname "$link")"
    ln -s "$exe" "$link"
    exe="$link" ;;
esac

# Desktop Entry Specification, "The Exec key": inside a double-quoted argument, " ` $ \ take a backslash;
# a literal % is written %%; then the value, a string, escapes each backslash once more.
quoted="$exe"
quoted="${quoted//\\/\\\\}"
quoted="${quoted//\"/\\\"}"
quoted="${quoted//\`/\\\`}"
quoted="${quoted//\$/\\\$}"
quoted="${quoted//%/%%}"
quoted="${quoted//\\/\\\\}"
# sed's replacement text: \ & and the | delimiter are special.
replacement="$(printf '%s' "\"$quoted\"" | sed -e 's/[\\&|]/\\&/g')"

iconsrc="$here/../icons"
mkdir -p "$apps"
for size in 16 24 32 48 64 128 256 512; do
  mkdir -p "$icons/${size}x${size}/apps"
  cp "$iconsrc/denselens-$size.png" "$icons/${size}x${size}/apps/denselens.png"
done
tmp="$(mktemp "$apps/.denselens.desktop.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
sed "s|@EXEC@|$replacement|" "$here/denselens.desktop" > "$tmp"
grep -q '^Exec="' "$tmp" || { echo "error: could not write the menu entry" >&2; exit 1; }
chmod 755 "$tmp"
mv -f "$tmp" "$apps/denselens.desktop"  # never a half-written entry in the menu
trap - EXIT
command -v update-desktop-database >/dev/null && update-desktop-database "$apps" || true
echo "DenseLens is in the applications menu ($apps/denselens.desktop)."
