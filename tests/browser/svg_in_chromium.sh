#!/usr/bin/env bash
# Opens an SVG in Debian's headless Chromium: saves a screenshot, prints the DOM as it is
# after the SVG's script ran, and fails if the page logged to the console (an uncaught
# error, say) or did not parse as XML.
#   svg_in_chromium.sh SVG_FILE PNG_OUT [URL_SUFFIX] > dom.xml
# URL_SUFFIX goes after the file URL, e.g. '?z=3&s=:53' (zoom to frame 3, search ":53").
# Environment: CHROMIUM (default chromium), WINDOW (default 1200,600).
# Exit: 0 fine, 1 failed, 77 no Chromium here (apt-get install -y chromium).
set -euo pipefail

die() { echo "svg_in_chromium.sh: $*" >&2; exit 1; }

[ $# -ge 2 ] || die "usage: svg_in_chromium.sh SVG_FILE PNG_OUT [URL_SUFFIX]"
svg=$1 png=$2 suffix=${3:-}
browser=${CHROMIUM:-chromium}
if ! command -v "$browser" >/dev/null; then
  echo "svg_in_chromium.sh: $browser not found (apt-get install -y chromium)" >&2
  exit 77
fi
[ -r "$svg" ] || die "cannot read $svg"

url="file://$(realpath "$svg")$suffix"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Root needs --no-sandbox; the rest keeps Chromium off the network and quiet.
# --enable-logging=stderr --v=0 makes console messages show up as "INFO:CONSOLE" lines.
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --enable-logging=stderr --v=0)

chrome() {  # chrome LOG ARGS...: one fresh browser on $url
  local log=$1
  shift
  timeout 90 "$browser" "${flags[@]}" --user-data-dir="$(mktemp -d -p "$work")" "$@" "$url" 2>"$log" \
    || { cat "$log" >&2; die "chromium failed on $url"; }
  if grep -q 'CONSOLE' "$log"; then
    grep 'CONSOLE' "$log" >&2
    die "console messages on $url"
  fi
}

chrome "$work/shot.log" --screenshot="$png" --window-size="${WINDOW:-1200,600}"
[ -s "$png" ] || die "no screenshot written to $png"

chrome "$work/dom.log" --dump-dom >"$work/dom.xml"
# Chromium shows XML errors as a <parsererror> element instead of the picture.
if grep -q 'parsererror' "$work/dom.xml"; then
  sed -n '/parsererror/,+3p' "$work/dom.xml" >&2
  die "$svg is not well-formed XML"
fi
cat "$work/dom.xml"
