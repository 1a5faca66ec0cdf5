#!/usr/bin/env bash
# test_cli_stream.sh — the CLI's streaming sessions on a real VM, the way a
# person uses them: `noid console` and `noid exec -t` in a real terminal
# (a tmux pane: keys typed with send-keys, the screen read with
# capture-pane), and streamed `noid exec` in scripts (stdout and stderr
# apart, stdin forwarded, exit codes, Ctrl-C, timeout, a closed pipe).
#
# Every wait polls the screen or the guest with a bound; a marker that must
# appear is computed by the shell that prints it (echo hi-$((6*7)) prints
# hi-42), so the typed command line never matches it.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest
command -v tmux > /dev/null || fail "tmux is missing (scripts/deps.sh installs it)"

write_config vm
start_as_users_do
noid create box > /dev/null

# ---- a terminal: one tmux pane running bash, the CLI in its PATH ----

export PATH="$NOID_BUILD/cli:$PATH"
TM_SOCK="$T/tmux.sock"
tm() { tmux -S "$TM_SOCK" -f /dev/null "$@"; }
tm new-session -d -s it -x 120 -y 40 "env PS1='local\$ ' bash --norc --noprofile"
tm set-option -g status off > /dev/null
screen() { tm capture-pane -p -J -t it -S -300; }
type_line() { # text: typed literally, then Enter
    tm send-keys -t it -l "$1"
    tm send-keys -t it Enter
}
wait_screen() { # needle what
    local i
    for i in $(seq 1 600); do
        case "$(screen)" in *"$1"*) return 0 ;; esac
        sleep 0.1
    done
    fail "$2: '$1' never appeared on the terminal; it shows:
$(screen | grep -v '^$' | tail -n 30)"
}
# A prompt on the last line of the screen that has text: the guest's (root's
# ends in '#') or the local shell's ('local$').  Keys typed before it shows
# could still go to the program that is ending.
wait_prompt() { # guest|local what
    local re='# ?$' i
    [ "$1" = local ] && re='^local\$ ?$'
    for i in $(seq 1 600); do
        screen | grep -v '^ *$' | tail -n 1 | grep -qE "$re" && return 0
        sleep 0.1
    done
    fail "$2: no $1 shell prompt; the terminal shows:
$(screen | grep -v '^$' | tail -n 30)"
}
# The local terminal's settings, saved to a file by the pane's own shell
save_stty() { # file marker-number
    type_line "stty -g > $1; echo saved-\$((1000+$2))"
    wait_screen "saved-$((1000 + $2))" "stty -g ran"
}
fresh_screen() {
    type_line clear
    tm clear-history -t it
}
# Whether a line of the guest's ps (busybox: PID USER TIME COMMAND) matches
guest_has_proc() { # grep -E pattern
    local procs
    procs=$(noid exec box -- ps -eo args)
    grep -qE -- "$1" <<< "$procs"
}

wait_prompt local "the local shell started in tmux"

# ---- 1. noid console: prompt, typing, Ctrl-] detaches, terminal restored ----

save_stty "$T/stty.console.0" 1
type_line "noid console box"
wait_screen "Connected to box's console; Ctrl-] detaches." "console hint"
tm send-keys -t it Enter # a fresh prompt, whatever the replay held
wait_prompt guest "console shell prompt"
type_line 'echo hi-$((6*7))'
wait_screen "hi-42" "output of a command typed into the console"
tm send-keys -t it 'C-]'
wait_screen "[detached from box]" "Ctrl-] detached"
wait_prompt local "back in the local shell after detaching"
type_line 'echo "rc-$?-console"'
wait_screen "rc-0-console" "console exit status after detach"
save_stty "$T/stty.console.1" 2
assert_eq "$(cat "$T/stty.console.0")" "$(cat "$T/stty.console.1")" "terminal settings after console"
assert_eq running "$(vm_state box)" "VM state after detaching"
noid exec box -- true || fail "exec after detaching from the console"
ok "console: prompt, typed command, Ctrl-] detach, terminal restored, VM running"

# ---- 2. noid exec -t (the interactive shell): size, resize, exit ----

fresh_screen
save_stty "$T/stty.tty.0" 3
size0="$(tm display-message -p -t it '#{pane_height}x#{pane_width}')"
type_line "noid exec box"
wait_prompt guest "interactive shell prompt"
type_line 'echo sz-$((2000+1))-$(stty size | tr " " x)-end'
wait_screen "sz-2001-$size0-end" "stty size in the guest is the pane's"
tm resize-window -t it -x 100 -y 30
size1="$(tm display-message -p -t it '#{pane_height}x#{pane_width}')"
[ "$size1" != "$size0" ] || fail "tmux did not resize the pane ($size0)"
# the resize travels as a frame to the guest's terminal: ask until it shows
n=2002
until screen | grep -q -- "sz-$n-$size1-end"; do
    [ "$n" -lt 2030 ] || fail "stty size in the guest never showed $size1: $(screen | tail -n 5)"
    n=$((n + 1))
    type_line "echo sz-\$(($n))-\$(stty size | tr \" \" x)-end"
    wait_screen "sz-$n-" "stty size answered"
done
type_line 'exit 7'
wait_prompt local "back in the local shell after exit"
type_line 'echo "rc-$?-tty"'
wait_screen "rc-7-tty" "exit status of the interactive shell"
save_stty "$T/stty.tty.1" 4
assert_eq "$(cat "$T/stty.tty.0")" "$(cat "$T/stty.tty.1")" "terminal settings after exec -t"
ok "exec -t shell: pane size, resize followed, exit code, terminal restored"

# ---- 3. streamed exec without a terminal ----

rc=0
noid exec box -- sh -c 'echo out; echo err >&2; exit 3' > "$T/out" 2> "$T/err" || rc=$?
assert_eq 3 "$rc" "exit code"
assert_eq out "$(cat "$T/out")" "stdout"
assert_eq err "$(cat "$T/err")" "stderr"
ok "stdout and stderr apart, exit code forwarded"

got=$(printf 'a\nb\n' | noid exec box -- wc -l | tr -d ' ')
assert_eq 2 "$got" "lines counted from forwarded stdin"
head -c 300000 /dev/urandom > "$T/bin"
noid exec box -- cat < "$T/bin" > "$T/bin.back"
cmp -s "$T/bin" "$T/bin.back" || fail "binary stdin -> cat -> stdout changed the bytes"
ok "stdin forwarded, binary-safe both ways"

rc=0
noid exec box --timeout 2 -- sleep 60 2> "$T/err" || rc=$?
assert_eq 124 "$rc" "exit code of a timed-out command"
assert_contains "$(cat "$T/err")" "timed out" "timeout message"
ok "timeout -> 124"

# a closed pipe: noid ends like any writer to it, and the remote yes stops
{
    rc=0
    noid exec box -- yes || rc=$?
    echo "$rc" > "$T/rc"
} | head -n 1 > /dev/null
assert_eq 141 "$(cat "$T/rc")" "exit code of noid writing to a closed pipe"
for i in $(seq 1 100); do
    guest_has_proc '^yes$' || break
    [ "$i" -lt 100 ] || fail "the remote yes still runs after its reader went away"
    sleep 0.2
done
ok "closed output pipe: exit 141, remote command stopped"

rc=0
noid exec nosuchvm -- true 2> "$T/err" || rc=$?
assert_eq 1 "$rc" "exit code for a VM that does not exist"
assert_contains "$(cat "$T/err")" "noid: " "error for a VM that does not exist"
ok "missing VM: error printed, exit 1"

# Ctrl-C in a terminal: the output streamed before (the command still
# runs), the remote sleep is killed, noid exits 130
fresh_screen
type_line "noid exec box -- sh -c 'echo started-\$((1+2)); exec sleep 1234'; echo \"rc-\$?-int\""
wait_screen "started-3" "live output of a command that still runs"
for i in $(seq 1 100); do
    guest_has_proc 'sleep 1234' && break
    [ "$i" -lt 100 ] || fail "the remote sleep never showed in ps"
    sleep 0.2
done
tm send-keys -t it C-c
wait_screen "rc-130-int" "exit status after Ctrl-C"
for i in $(seq 1 100); do
    guest_has_proc 'sleep 1234' || break
    [ "$i" -lt 100 ] || fail "the remote sleep still runs after Ctrl-C"
    sleep 0.2
done
ok "Ctrl-C: exit 130, remote command killed"

tm kill-server
it_done
