#!/usr/bin/env bash
# Flags, man pages and completions stay in step: every long option that a tool's
# --help prints appears in its man page and in its bash, zsh and fish completions;
# --help and --version exit 0 on stdout; every man page renders without warnings;
# every completion parses (zsh and fish ones where those shells are installed).
source "$(dirname "$0")/lib.sh"
root="$(cd "$(dirname "$0")/../.." && pwd)"
for t in stream-serve stream-ctl stream-put stream-tail stream-reshard stream-firehose stream-mirror; do
  "$t" --help >"$T/help" 2>"$T/err" || fail "$t --help exited non-zero"
  [ ! -s "$T/err" ] || fail "$t --help wrote to stderr"
  "$t" --version | grep -q "^$t (streamkit) " || fail "$t --version"
  help_opts=$(grep -oE -- '--[a-z][a-z0-9-]+' "$T/help" | sort -u)
  if [ "$t" = stream-ctl ]; then
    for sub in create delete list describe retention groups group-reset; do
      "$t" "$sub" --help >>"$T/help"
    done
    help_opts=$(grep -oE -- '--[a-z][a-z0-9-]+' "$T/help" | sort -u)
  fi
  if [ "$t" = stream-reshard ]; then
    # The stream name comes before the command (STREAM COMMAND), so a command's
    # help needs one too; any name does, nothing is looked up.
    for sub in split merge scale auto manual status; do
      "$t" x "$sub" --help >>"$T/help" 2>"$T/err" || fail "$t x $sub --help exited non-zero"
      [ ! -s "$T/err" ] || fail "$t x $sub --help wrote to stderr"
    done
    help_opts=$(grep -oE -- '--[a-z][a-z0-9-]+' "$T/help" | sort -u)
  fi
  for o in $help_opts; do
    [ "$o" = --help ] && continue
    roff=${o//-/\\-}
    grep -qF -- "$roff" "$root/man/$t.1" || grep -qF -- "$o" "$root/man/$t.1" || fail "man/$t.1 lacks $o"
    grep -q -- "$o" "$root/completions/bash/$t" || fail "bash completion of $t lacks $o"
    grep -q -- "${o#--}" "$root/completions/zsh/_$t" || fail "zsh completion of $t lacks $o"
    grep -q -- "${o#--}" "$root/completions/fish/$t.fish" || fail "fish completion of $t lacks $o"
  done
  if command -v man >/dev/null && command -v groff >/dev/null; then
    MANWIDTH=80 man --warnings -l "$root/man/$t.1" >/dev/null 2>"$T/manerr" || true
    [ ! -s "$T/manerr" ] || { cat "$T/manerr" >&2; fail "man/$t.1 renders with warnings"; }
  fi
  bash -n "$root/completions/bash/$t" || fail "bash completion of $t does not parse"
  if command -v zsh >/dev/null; then
    zsh -n "$root/completions/zsh/_$t" || fail "zsh completion of $t does not parse"
  fi
  if command -v fish >/dev/null; then
    fish -n "$root/completions/fish/$t.fish" || fail "fish completion of $t does not parse"
  fi
done
echo "docs: ok"
