#!/usr/bin/env bash
# test_console_log.sh — issue 7 §4 on a real VM: a guest printing without
# end cannot fill the disk.  Above max_console_log_bytes the server rotates
# serial.log to serial.log.1 while QEMU keeps appending to the same file
# (same inode, still open by QEMU, later output lands in serial.log); a log
# that grew while the server was down is capped by the first scan after
# start.  Where the file system collapses ranges (ext4, XFS) the rotation
# must be lossless: the lines of serial.log.1 and serial.log follow each
# other without a gap.
#
# Sizes, no slack needed at rest: serial.log.1 is trimmed to the newest
# max_console_log_bytes when it is written, and every write to serial.log
# is followed by a check, so once the guest is quiet and the watcher has
# acted both files are at most the cap.
. "$(dirname "$0")/lib.sh"
it_setup
require_guest

CAP=65536
X=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx # a flood line is ~60 bytes with \r\n

write_config vm "max_console_log_bytes = $CAP"
start_as_users_do
noid create vm > /dev/null
uid=$(q "select id from users where name='alice'")
qpid=$(q "select pid from vms where user_id='$uid' and name='vm'")
D="$T/data/storage/users/$uid/vms/vm"
LOG="$D/serial.log"
OLD="$D/serial.log.1"
[ -f "$LOG" ] || fail "no serial.log in $D"
ino=$(stat -c %i "$LOG")

size() { stat -c %s "$1"; }

lossless_fs() {
    case $(stat -f -c %T "$D") in ext2/ext3 | xfs) return 0 ;; *) return 1 ;; esac
}

# Numbers of the complete flood lines of a file, in order (a line cut at
# either end of a file by a rotation is left out).
line_numbers() {
    tr -d '\r' < "$1" | grep -a -E "^line-[0-9]+-$X\$" | sed -E 's/^line-([0-9]+)-.*/\1/' || true
}

# The guest prints lines first .. end-1 on its serial console.
flood_exec() { # first end
    noid exec vm -- sh -c "i=$1; while [ \$i -lt $2 ]; do echo line-\$i-$X > /dev/ttyS0; i=\$((i+1)); done"
}

# Type a command into the root shell on the guest's serial console through
# QEMU's console socket: works while noid-server is down.
console_type() { # command
    python3 - "$D/console.sock" "$1" << 'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
time.sleep(0.5)  # let QEMU read it all before the socket closes
s.close()
EOF
}

wait_for_line() { # file pattern what
    local i
    for i in $(seq 1 600); do
        grep -a -q -- "$2" "$1" && return 0
        sleep 0.1
    done
    fail "$3: '$2' not in $1 after 60 s"
}

# $T/stream: serial.log.1 (if any) then serial.log, the log in order.
write_stream() {
    : > "$T/stream"
    if [ -f "$OLD" ]; then cat "$OLD" >> "$T/stream"; fi
    cat "$LOG" >> "$T/stream"
}

# Wait until the guest's last line reached QEMU: in serial.log.1 and
# serial.log read one after the other (a rotation may have moved or split it).
wait_in_stream() { # pattern what
    local i
    for i in $(seq 1 600); do
        write_stream
        grep -a -q -- "$1" "$T/stream" && return 0
        sleep 0.1
    done
    fail "$2: '$1' not in serial.log.1 + serial.log after 60 s"
}

# Wait until the watcher has acted: serial.log.1 exists and serial.log is
# back under the cap (it was well over it: the caller checks that).
wait_capped() { # what
    local i
    for i in $(seq 1 300); do
        if [ -f "$OLD" ] && [ "$(size "$LOG")" -le "$CAP" ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "$1: serial.log still $(size "$LOG") bytes after 30 s (cap $CAP)"
}

# The state after a flood of lines first..last: both files within the cap,
# serial.log.1 older than serial.log, the newest line at the end of the
# log, and (lossless file systems) no line missing across the two files.
check_logs() { # what first last
    local what=$1 first=$2 last=$3 s0 s1 old_last cur_first cur_last
    s0=$(size "$LOG")
    s1=$(size "$OLD")
    [ "$s0" -le "$CAP" ] || fail "$what: serial.log is $s0 bytes, over the cap $CAP"
    [ "$s1" -le "$CAP" ] || fail "$what: serial.log.1 is $s1 bytes, over the cap $CAP"
    old_last=$(line_numbers "$OLD" | tail -n 1)
    cur_first=$(line_numbers "$LOG" | sed -n 1p)
    cur_last=$(line_numbers "$LOG" | tail -n 1)
    [ -n "$old_last" ] || fail "$what: serial.log.1 ($s1 bytes) holds no complete flood line"
    [ "$old_last" -ge "$first" ] || fail "$what: serial.log.1 is stale (last line $old_last)"
    if [ -n "$cur_first" ]; then
        [ "$old_last" -lt "$cur_first" ] ||
            fail "$what: serial.log.1 ends with line $old_last, serial.log starts with $cur_first"
    fi
    write_stream
    assert_eq "$last" "$(line_numbers "$T/stream" | tail -n 1)" "$what: newest line ends the log"
    if [ -n "$cur_last" ]; then
        assert_eq "$last" "$cur_last" "$what: newest line in serial.log"
    else
        # a lossless cut leaves less than a block: it may split the last line
        log "$what: serial.log ($s0 bytes) holds no whole line; the newest ends the stream"
    fi
    if lossless_fs; then
        [ "$s0" -gt 0 ] || fail "$what: a lossless rotation never empties serial.log"
        line_numbers "$T/stream" | awk -v last="$last" -v what="$what" '
            NR > 1 && $1 != prev + 1 { printf "%s: line %d follows %d\n", what, $1, prev; bad = 1 }
            { prev = $1 }
            END { if (bad || prev != last) exit 1 }' >&2 ||
            fail "$what: lines lost across serial.log.1 and serial.log"
    fi
    log "$what: serial.log $s0 bytes (lines ${cur_first:-none}..${cur_last:-none}), serial.log.1 $s1 bytes (last line $old_last)"
}

# QEMU still has serial.log open, the same inode as at create.
check_same_file() { # what
    assert_eq "$ino" "$(stat -c %i "$LOG")" "$1: serial.log inode"
    local fds
    fds=$(for f in /proc/"$qpid"/fd/*; do readlink "$f" || true; done 2> /dev/null)
    grep -qx -- "$LOG" <<< "$fds" || fail "$1: QEMU ($qpid) no longer has $LOG open"
}

# ---- a guest floods its console while the server runs ----
flood_exec 0 3000 # ~180 KB, almost three times the cap
wait_in_stream "line-2999-$X" "flood with the server up"
wait_capped "flood with the server up"
check_logs "flood with the server up" 0 2999
grep -q "console log: $uid/vm: serial.log reached" "$T/server.log" || fail "no rotation logged"
if lossless_fs; then
    grep -q "console log: $uid/vm: .*(lossless)" "$T/server.log" ||
        fail "$(stat -f -c %T "$D") supports FALLOC_FL_COLLAPSE_RANGE, but the rotation was not lossless"
fi
check_same_file "after rotations"
assert_eq running "$(vm_state vm)" "VM state after the flood"
assert_eq alive "$(noid exec vm -- echo alive)" "exec after the flood"
ok "serial.log capped while the guest floods: both files <= $CAP, in order, QEMU writes on"

# ---- the guest floods while the server is down; the first scan caps it ----
before=$(stat -c '%i %s %Y' "$OLD")
stop_server
console_type "i=3000; while [ \$i -lt 6000 ]; do echo line-\$i-$X; i=\$((i+1)); done"
wait_for_line "$LOG" "line-5999-$X" "flood with the server down"
s0=$(size "$LOG")
[ "$s0" -gt "$CAP" ] || fail "serial.log should be over the cap with the server down, is $s0"
assert_eq "$before" "$(stat -c '%i %s %Y' "$OLD")" "serial.log.1 untouched while the server is down"
start_server
cli_login "$A" # a new port
wait_capped "first scan after start"
check_logs "first scan after start" 3000 5999
check_same_file "after the first scan"
# the flood is over and serial.log holds at most a block now: a new line
# cannot cause another rotation, so it must land in serial.log
noid exec vm -- sh -c 'echo after-rotation-marker > /dev/ttyS0'
wait_for_line "$LOG" after-rotation-marker "output after the rotation"
grep -a -q after-rotation-marker "$OLD" && fail "the marker went to serial.log.1"
assert_eq running "$(vm_state vm)" "VM state after the restart"
ok "a log grown while the server was down ($s0 bytes) is capped by the first scan; later output lands in serial.log"
# ---- QEMU's own log (vmm.log) cannot fill the disk ----
# QEMU writes it at its own offset, so the server punches out all but its
# last 64 KiB once more than 1 MiB is allocated.  Lines appended here stand
# for a QEMU that complains in a loop.
VMMLOG="$D/vmm.log"
for i in $(seq 1 40000); do echo "qemu-system-x86_64: complaint $i about something the guest did"; done >> "$VMMLOG"
echo "qemu-system-x86_64: the last word" >> "$VMMLOG"
for i in $(seq 1 100); do
    [ "$(( $(stat -c %b "$VMMLOG") * 512 ))" -le $((1024 * 1024)) ] && break
    sleep 0.1
done
alloc=$(( $(stat -c %b "$VMMLOG") * 512 ))
[ "$alloc" -le $((1024 * 1024)) ] || fail "vmm.log still has $alloc bytes on disk"
tail -n 1 "$VMMLOG" | grep -q 'the last word' || fail "vmm.log lost its tail"
assert_eq running "$(vm_state vm)" "VM state after vmm.log was trimmed"
ok "vmm.log is trimmed to its tail on disk ($alloc bytes allocated)"
it_done
