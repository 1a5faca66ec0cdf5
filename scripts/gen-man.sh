#!/usr/bin/env bash
# gen-man.sh — a man page made from a program's own help (help2man), so the
# page always says what the code does: the top-level --help and --version,
# then a COMMANDS section with the --help of each command the top-level
# help lists ("Commands:" block), then the page's own prose (DESCRIPTION,
# FILES, SEE ALSO ...) from an include file in help2man's format.
#
# Usage: gen-man.sh PROGRAM INCLUDE OUTPUT
# Needs help2man (Debian: help2man).  meson runs it (docs/man/meson.build).
set -euo pipefail

[ $# -eq 3 ] || { echo "usage: gen-man.sh PROGRAM INCLUDE OUTPUT" >&2; exit 2; }
prog=$1 include=$2 out=$3
work=$(mktemp)
trap 'rm -f "$work"' EXIT

# the commands of the "Commands:" block: two spaces, a name, its summary
commands=$(env -i HOME=/nonexistent PATH=/usr/bin:/bin "$prog" --help |
    awk '/^Commands:/ {c = 1; next} c && /^  [a-z]/ {print $1} c && /^$/ {c = 0}')

cat "$include" > "$work"
if [ -n "$commands" ]; then
    printf '\n[COMMANDS]\n' >> "$work"
    for c in $commands; do
        printf '.SS %s\n.nf\n' "$c" >> "$work"
        # help text verbatim: escape backslashes, and lines that would
        # read as roff requests
        env -i HOME=/nonexistent PATH=/usr/bin:/bin "$prog" "$c" --help 2>&1 |
            sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/" >> "$work"
        printf '.fi\n' >> "$work"
    done
fi
help2man --no-info --no-discard-stderr --include "$work" --output "$out" "$prog"
