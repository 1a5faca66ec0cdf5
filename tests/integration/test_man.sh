#!/usr/bin/env bash
# test_man.sh — the man pages (docs/man, scripts/gen-man.sh): each renders
# without a groff warning, has its NAME, and carries the --help of every
# command its program lists, so a command added without its page cannot
# pass.  Skipped (77) in a build without man pages (-Dman=disabled, or no
# help2man).
. "$(dirname "$0")/lib.sh"

MAN_DIR="$NOID_BUILD/docs/man"
if [ ! -f "$MAN_DIR/noid.1" ]; then
    echo "SKIP: no man pages in this build (help2man missing or -Dman=disabled)" >&2
    exit 77
fi
it_setup

# page program: every command of the program's "Commands:" block has a
# subsection, with its usage line
check_page() {
    local page=$1 prog=$2 cmds c warnings text
    warnings=$(groff -man -Tutf8 -ww -z "$MAN_DIR/$page" 2>&1)
    assert_eq "" "$warnings" "groff warnings for $page"
    text=$(MANWIDTH=200 man -l "$MAN_DIR/$page" 2> /dev/null)
    assert_contains "$text" "NAME" "$page has a NAME section"
    assert_contains "$text" "$(basename "$prog") - " "$page names its program"
    cmds=$("$prog" --help | awk '/^Commands:/ {c = 1; next} c && /^  [a-z]/ {print $1} c && /^$/ {c = 0}')
    for c in $cmds; do
        grep -qx "\\.SS $c" "$MAN_DIR/$page" || fail "$page has no section for '$c'"
        local usage
        usage=$("$prog" "$c" --help 2>&1 | head -n 1)
        assert_contains "$text" "$usage" "$page shows '$c --help'"
    done
    log "$page: $(printf '%s\n' "$cmds" | grep -c . || true) commands"
}

check_page noid.1 "$NOID_BUILD/cli/noid"
check_page noid-server.1 "$NOID_BUILD/server/noid-server"
ok "noid.1 and noid-server.1: every command's --help, no groff warning"
check_page noid-netd.8 "$NOID_BUILD/netd/noid-netd"
assert_contains "$(MANWIDTH=200 man -l "$MAN_DIR/noid-netd.8")" "--server-uid" "noid-netd.8 shows its options"
ok "noid-netd.8: its options, no groff warning"
it_done
