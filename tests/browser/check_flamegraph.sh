#!/usr/bin/env bash
# Browser check of the flame graph SVG: generates the sample graphs with the export
# library, opens them in headless Chromium and asserts on the DOM after the script ran.
#   check_flamegraph.sh SAMPLE_GENERATOR [OUT_DIR]
# SAMPLE_GENERATOR is the ctbpf_flamegraph_sample binary (make_flamegraph.cpp). The SVGs,
# screenshots and DOM dumps stay in OUT_DIR (default: a new temporary directory).
# Exit: 0 passed, 1 failed, 77 no Chromium (svg_in_chromium.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
gen=${1:?usage: check_flamegraph.sh SAMPLE_GENERATOR [OUT_DIR]}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
fails=0 passes=0

check() {  # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then
    passes=$((passes + 1))
  else
    echo "FAIL: $what" >&2
    fails=$((fails + 1))
  fi
}
has() { grep -qF -- "$2" "$1"; }
open() {  # open SVG PNG DOM [URL_SUFFIX]
  local rc=0
  bash "$here/svg_in_chromium.sh" "$1" "$2" "${4:-}" >"$3" || rc=$?
  [ "$rc" -ne 77 ] || exit 77
  [ "$rc" -eq 0 ] || { echo "FAIL: opening $1${4:-}" >&2; exit 1; }
}

"$gen" plain "$out/flame.svg"
"$gen" diff "$out/diff.svg"

# Frames as "index depth value name", in the pre-order the writer emits them.
frames() {
  grep -o '<g data-n="[^"]*" data-v="[^"]*" data-d="[^"]*"' "$1" |
    sed -E 's/<g data-n="([^"]*)" data-v="([^"]*)" data-d="([^"]*)"/\3 \2 \1/' | awk '{print NR - 1, $0}'
}
frames "$out/flame.svg" >"$out/frames.txt"
count=$(wc -l <"$out/frames.txt")

# 1. As opened: the script saw every frame; the big frames are labelled in full.
open "$out/flame.svg" "$out/flame.png" "$out/flame.dom"
check "script ran over all $count frames" has "$out/flame.dom" "data-ready=\"$count\""
for label in all 'netns 4026531833' tcp udp 10.1.0.0/16 10.2.0.0/16 10.1.2.0/24 10.1.2.3 :3908; do
  check "label '$label' shown" has "$out/flame.dom" ">$label</text>"
done
check "zoom is not active" has "$out/flame.dom" 'id="unzoom" class="button hide"'
check "screenshot has content" test "$(stat -c %s "$out/flame.png")" -gt 10000

# 2. Zoomed into udp's 10.1.0.0/16 with a search for :3908 (what a click and the Search
# button do, driven through the URL since nobody can click here).
z=$(awk '$4 == "udp" {u = 1} u && $4 == "10.1.0.0/16" {print $1; exit}' "$out/frames.txt")
read -r zdepth zvalue < <(awk -v z="$z" '$1 == z {print $2, $3}' "$out/frames.txt")
expected=$(awk -v z="$z" -v d="$zdepth" -v v="$zvalue" '
  $1 > z && $2 <= d {exit}
  $1 > z && $4 == ":3908" {sum += $3; n++}
  END {printf "%.1f %d", 100 * sum / v, n}' "$out/frames.txt")
read -r pct hits <<<"$expected"
open "$out/flame.svg" "$out/zoom.png" "$out/zoom.dom" "?z=$z&s=:3908"
check "Reset Zoom shown" has "$out/zoom.dom" 'id="unzoom" class="button"'
check "zoomed frame spans the width" \
  grep -qE "data-n=\"10.1.0.0/16\" data-v=\"$zvalue\"[^>]*><title>[^<]*</title><rect x=\"10.00\" y=\"[^\"]*\" width=\"1180.00\"" "$out/zoom.dom"
check "tcp hidden" grep -qE 'data-n="tcp"[^>]*class="hide"' "$out/zoom.dom"
check "Matched: $pct% shown" has "$out/zoom.dom" ">Matched: $pct%</text>"
check "$hits matches highlighted" test "$(grep -o 'fill="rgb(230,0,230)"' "$out/zoom.dom" | wc -l)" -eq "$hits"
check "search button resets" has "$out/zoom.dom" ">Reset Search</text>"

# 3. The differential graph: red and blue frames, legend, no console errors.
open "$out/diff.svg" "$out/diff.png" "$out/diff.dom"
check "diff script ran" grep -qE 'data-ready="[1-9][0-9]*"' "$out/diff.dom"
check "diff legend" has "$out/diff.dom" "red grew, blue shrank"
check "diff has grown frames" grep -qE 'fill="rgb\(255,[0-9]+,[0-9]+\)"' "$out/diff.dom"
check "diff has shrunk frames" grep -qE 'fill="rgb\([0-9]+,[0-9]+,255\)"' "$out/diff.dom"

echo "check_flamegraph.sh: screenshots in $out"
echo "$passes passed, $fails failed"
[ "$fails" -eq 0 ]
