#!/usr/bin/env bash
# Checks the man page and shell completions the build generates (ctbpf-clidoc) against the
# built binary's own --help, so that a definition the generator misses, or a page that no
# longer renders, fails here rather than on a user's machine.
#   check_cli_docs.sh CHECK CTBPF MAN_PAGE BASH_COMPLETION ZSH_COMPLETION
# CHECK: man-render | man-coverage | bash | zsh
set -euo pipefail
check=$1 ctbpf=$2 man_page=$3 bash_completion=$4 zsh_completion=$5
fail=0
bad() { echo "check_cli_docs ($check): $*" >&2; fail=1; }

# The subcommands `ctbpf --help` lists, one a line.
subcommands() {
  "$ctbpf" --help | awk '/^Subcommands:/ {on = 1; next} on && /^  [a-z]/ {print $1}'
}
# Every option spelling a --help lists ("-o", "--output"), one a line. Option names start
# their line (after two spaces); descriptions wrapped onto later lines start deeper.
help_options() {
  "$@" --help | awk '/^  -/ {
      n = split($1, names, ",")
      for (i = 1; i <= n; i++) print names[i]
    }'
}
# The option headings (the line after each .TP) of one section of the page (.SS NAME or .SH
# NAME, up to the next), with \- read as the dash it prints, so options can be searched for
# as typed. Headings only: an option named in another's help text does not count.
man_section() {
  awk -v want="$1" '
    /^\.S[SH] / { on = ($2 == want); next }
    on && prev == ".TP" { print }
    { prev = $0 }' "$man_page" | sed 's/\\-/-/g'
}
# COMPREPLY of the generated bash completion for a command line; the last word is the one
# being completed (may be empty).
complete_bash() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ctbpf; printf "%s\n" "${COMPREPLY[@]}"' \
    complete "$bash_completion" "$@"
}

names=$(subcommands)
[ -n "$names" ] || { echo "check_cli_docs: no subcommands in '$ctbpf --help'" >&2; exit 1; }

case $check in
man-render)
  # -ww: every warning; -z: no output, only the diagnostics.
  errs=$(groff -ww -z -man -Tutf8 "$man_page" 2>&1) || bad "groff failed"
  [ -z "$errs" ] || bad "groff warnings: $errs"
  # man-db's own run, as `man ctbpf` would after installing (its default warnings).
  out=$(MANPAGER=cat MANWIDTH=80 man --warnings -l "$man_page" 2>"$man_page.err") || bad "man -l failed"
  [ ! -s "$man_page.err" ] || bad "man -l: $(cat "$man_page.err")"
  rm -f "$man_page.err"
  for s in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS "EXIT STATUS" FILES "SEE ALSO"; do
    grep -q "^$s\$" <<<"$out" || bad "rendered page has no $s section"
  done
  ;;
man-coverage)
  for o in $(help_options "$ctbpf"); do
    man_section OPTIONS | grep -qF -- "$o" || bad "OPTIONS does not mention $o (ctbpf --help lists it)"
  done
  for sub in $names; do
    section=$(man_section "$sub")
    [ -n "$section" ] || { bad "no section for the subcommand $sub"; continue; }
    for o in $(help_options "$ctbpf" "$sub"); do
      # Whole option words only: --netns must not be found inside --all-netns.
      grep -qE -- "(^|[^a-z-])$o([^a-z-]|\$)" <<<"$section" || bad "section $sub does not mention $o (ctbpf $sub --help lists it)"
    done
  done
  # And nothing the binary does not have: every .SS is a subcommand.
  for ss in $(awk '$1 == ".SS" {print $2}' "$man_page"); do
    grep -qx -- "$ss" <<<"$names" || bad "section $ss is not a subcommand of ctbpf"
  done
  ;;
bash)
  got=$(complete_bash ctbpf '')
  for sub in $names; do grep -qx -- "$sub" <<<"$got" || bad "'ctbpf <TAB>' does not offer $sub"; done
  for sub in $names; do
    got=$(complete_bash ctbpf "$sub" --)
    for o in $(help_options "$ctbpf" "$sub"); do
      [[ $o == --* ]] || continue
      grep -qx -- "$o" <<<"$got" || bad "'ctbpf $sub --<TAB>' does not offer $o"
    done
  done
  got=$(complete_bash ctbpf watch --)
  grep -qx -- --all-netns <<<"$got" || bad "'ctbpf watch --<TAB>' does not offer --all-netns"
  got=$(complete_bash ctbpf watch --all)
  [ "$got" = --all-netns ] || bad "'ctbpf watch --all<TAB>' gives '$got', not --all-netns"
  got=$(complete_bash ctbpf events --backend '' | sort | tr '\n' ' ')
  [ "$got" = "auto fentry kprobe tracepoint " ] || bad "'ctbpf events --backend <TAB>' gives '$got'"
  got=$(complete_bash ctbpf serve --backend = k)
  [ "$got" = kprobe ] || bad "'ctbpf serve --backend=k<TAB>' gives '$got'"
  got=$(complete_bash ctbpf export --format '' | sort | tr '\n' ' ')
  [ "$got" = "csv folded jsonl speedscope svg " ] || bad "'ctbpf export --format <TAB>' gives '$got'"
  # A free value (a duration) is not completed with options.
  got=$(complete_bash ctbpf events --duration '')
  [ -z "$got" ] || bad "'ctbpf events --duration <TAB>' offers '$got'"
  # Files where a file goes.
  dir=$(mktemp -d)
  touch "$dir/night.ctbpf"
  got=$(complete_bash ctbpf report "$dir/ni")
  [ "$got" = "$dir/night.ctbpf" ] || bad "'ctbpf report DIR/ni<TAB>' gives '$got'"
  got=$(complete_bash ctbpf record -o "$dir/ni")
  [ "$got" = "$dir/night.ctbpf" ] || bad "'ctbpf record -o DIR/ni<TAB>' gives '$got'"
  rm -rf "$dir"
  ;;
zsh)
  zsh -n "$zsh_completion" || bad "zsh cannot parse $zsh_completion"
  # A real completion: an interactive zsh on a pseudo-terminal (zpty) with compinit and this
  # file on fpath, given a line and a TAB; what it prints (the completed line or the list)
  # is searched for the expected words, waiting up to 20 s for them on a busy machine.
  driver=$(mktemp)
  cat >"$driver" <<'ZSH'
zmodload zsh/zpty
dir=$1 line=$2; shift 2
zpty z zsh -f -i
zpty -w z "fpath=($dir \$fpath); autoload -U compinit; compinit -u -D; ctbpf() { : }; zstyle ':completion:*' list-prompt ''; print READY\$((6 * 7))"
out="" deadline=$((SECONDS + 20))
while ((SECONDS < deadline)) && [[ $out != *READY42* ]]; do
  if zpty -r -t z chunk; then out+=$chunk; else sleep 0.1; fi
done
zpty -w -n z "$line"$'\t'
out=""
while ((SECONDS < deadline)); do
  if zpty -r -t z chunk; then out+=$chunk; else sleep 0.1; fi
  missing=0
  for w in "$@"; do [[ $out == *"$w"* ]] || missing=1; done
  ((missing)) || break
done
zpty -d z
print -r -- "$out"
ZSH
  zsh_complete() { zsh -f "$driver" "$(dirname "$zsh_completion")" "$@"; }
  got=$(zsh_complete 'ctbpf ' $names)
  for sub in $names; do grep -qF -- "$sub" <<<"$got" || bad "zsh: 'ctbpf <TAB>' does not list $sub"; done
  got=$(zsh_complete 'ctbpf watch --all' --all-netns)
  grep -qF -- '--all-netns' <<<"$got" || bad "zsh: 'ctbpf watch --all<TAB>' does not complete --all-netns"
  got=$(zsh_complete 'ctbpf events --backend ' fentry kprobe tracepoint)
  for v in auto fentry kprobe tracepoint; do
    grep -qF -- "$v" <<<"$got" || bad "zsh: 'ctbpf events --backend <TAB>' does not list $v"
  done
  rm -f "$driver"
  head -n1 "$zsh_completion" | grep -qx '#compdef ctbpf' || bad "first line is not '#compdef ctbpf'"
  # Each subcommand is offered, and each of its options is in its _arguments block.
  for sub in $names; do
    grep -qE "^        '$sub:" "$zsh_completion" || bad "zsh does not offer the subcommand $sub"
    block=$(awk -v want="        $sub)" '$0 == want {on = 1; next} on && /^          ;;/ {exit} on' "$zsh_completion")
    for o in $(help_options "$ctbpf" "$sub"); do
      grep -qE -- "[{,'*)]$o[=+[,}]" <<<"$block" || bad "zsh: $sub does not offer $o"
    done
  done
  grep -qF -- "--backend=[attach method: auto, fentry, kprobe or tracepoint]:backend:(auto fentry kprobe tracepoint)" \
    "$zsh_completion" || bad "zsh: --backend values missing"
  ;;
*)
  echo "check_cli_docs: unknown check '$check'" >&2
  exit 2
  ;;
esac
[ "$fail" -eq 0 ] || exit 1
echo "check_cli_docs ($check): ok"
