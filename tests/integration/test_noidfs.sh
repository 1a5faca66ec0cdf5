#!/usr/bin/env bash
# test_noidfs.sh — noidfs (issue 9, DESIGN.md §9) on real FUSE mounts and
# real VMs, on the default path (embedded defaults, golden snapshot, default
# guest), through BOTH bindings: the server-side mount (noidfs_mount in
# server.toml, one directory per user) and the client mount (`noid mount`,
# the CLI's saved URL and token).  Every result is cross-checked through the
# REST API (curl) or the CLI.
#   * the life cycle with only mkdir, ls, echo, cat and rmdir, on each mount:
#     create, exec (stdout/stderr/status, last, runs/N/command), two parallel
#     runs through `new` kept apart, a read-write exec handle streaming before
#     the command ends (a gate, no timing), console typed into and polled,
#     lines typed with `echo ... > console` (the writer closes at once) all
#     run, console.log, checkpoint / restore / clone, rmdir; a VM made
#     through the API appears in the mount; status 128+N, binary output,
#     real sizes, the last 32 runs kept
#   * two VMs running `sleep 2` at once take about the time of one (a ratio)
#   * bad input: invalid names -> EINVAL, existing -> EEXIST, writes to
#     read-only entries -> EACCES (as root too), rmdir of a missing VM ->
#     ENOENT; a reader of `console` gets EOF when the VM is destroyed or dies
#   * interrupts: SIGINT ends a blocked console read and a running exec (the
#     command is killed in the guest)
#   * permissions on the server-side mount: a local account named like a
#     noid user reaches its own directory only; root reaches all
#   * noid-server stopped under a client mount: EIO/ENOTCONN, not a hang, and
#     back when the server is; the server-side mount is unmounted on shutdown,
#     back on restart, and a SIGKILLed server's dead mount is cleared at start
# The errnos come from noidfs_tool.py (os.mkdir/os.open/... report them exactly).
. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
    echo "SKIP: needs root and /dev/fuse (FUSE mounts, a second local account); CI runs as root" >&2
    exit 77
fi
it_setup
require_guest

TOOL=(/usr/bin/python3 "$IT_DIR/noidfs_tool.py")
SM="$T/smnt" # the server-side mount
CM="$T/cm"   # the client mount (absolute: it_cleanup's pkill finds its process)
CM_LOG=""
LOCAL_USER=""

is_mounted() { awk -v m="$1" '$2 == m { f = 1 } END { exit !f }' /proc/mounts; }

# Mounts go before it_cleanup removes $T (rm -rf inside a live mount would
# destroy VMs, inside a dead one it fails); the local account goes too.
noidfs_cleanup() {
    local rc=$? m
    trap - ERR
    set +e
    if [ "$rc" -ne 0 ] && [ -n "$CM_LOG" ] && [ -f "$CM_LOG" ]; then
        echo "--- last lines of the client mount's log ---" >&2
        tail -n 30 "$CM_LOG" >&2
    fi
    is_mounted "$CM" && fusermount3 -u -z "$CM"
    # the server unmounts its own mount on SIGTERM
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2> /dev/null
        wait "$SERVER_PID" 2> /dev/null
        SERVER_PID=""
    fi
    for m in "$CM" "$SM"; do
        is_mounted "$m" && { fusermount3 -u -z "$m" 2> /dev/null || umount -l "$m"; }
    done
    [ -n "$LOCAL_USER" ] && userdel "$LOCAL_USER"
    (exit "$rc")
    it_cleanup
}
trap noidfs_cleanup EXIT

# A failed requirement whose cause is elsewhere (a bug in the code under
# test) is reported at the end, so that the sections after it still run.
LATER=()
fail_later() { printf 'FAIL (reported at the end): %s\n' "$1" >&2; LATER+=("$1"); }
now() { date +%s.%N; }
ls_has() { ls "$1" | grep -qxF -- "$2"; } # DIR NAME
# wait_for WHAT CMD...: CMD succeeds within 10 s (a liveness bound: the
# mount's caches live 1 s)
wait_for() {
    local what=$1 i
    shift
    for i in $(seq 1 50); do
        "$@" && return 0
        sleep 0.2
    done
    fail "$what: not within 10 s"
}
errno_of() { "${TOOL[@]}" errno "$@"; } # OP PATH [DATA] -> OK or EXXX
# REST state of a VM of alice's: running, dead, ... or the HTTP status
rest_state() {
    http GET "/v1/vms/$1" "$A"
    if [ "$HTTP_STATUS" = 200 ]; then json_get state <<< "$HTTP_BODY"; else echo "$HTTP_STATUS"; fi
}
rest_exec() { noid exec "$1" -- sh -c "$2"; } # VM SHELL_LINE -> stdout
guest_runs() { [ "$(rest_exec "$1" "ps -eo args | grep -c '$2' || true")" -ge 1 ]; } # VM PS_PATTERN
checkpoint_labels() { noid checkpoints "$1" --json | python3 -c 'import json,sys; [print(c.get("label") or "") for c in json.load(sys.stdin)]'; }

write_config vm "noidfs_mount = \"$SM\""
start_as_users_do
# later restarts keep the port: the client mount's saved URL points at it
sed -i "s/^listen = .*/listen = \"127.0.0.1:${URL##*:}\"/" "$T/server.toml"

is_mounted "$SM" || fail "the server did not mount noidfs at $SM"
assert_eq "root 755" "$(stat -c '%U %a' "$SM")" "server-side mount root"
assert_eq alice "$(ls "$SM")" "the server-side mount holds one directory per user"
owner=root
getent passwd alice > /dev/null && owner=alice
assert_eq "$owner 700" "$(stat -c '%U %a' "$SM/alice")" "alice's directory"
ok "server-side mount at start: root 0755, one 0700 directory per user"

mkdir "$CM"
out=$(noid mount "$CM" 2>&1) || fail "noid mount $CM: $out"
assert_contains "$out" "mounted $CM" "noid mount says where"
CM_LOG=$(sed -n 's/.*(log: \(.*\))$/\1/p' <<< "$out")
is_mounted "$CM" || fail "noid mount returned but $CM is not mounted: $out"
[ -n "$CM_LOG" ] && [ -f "$CM_LOG" ] || fail "the client mount's log is not where it says: $out"
assert_eq "" "$(ls "$CM")" "a fresh user's client mount is empty"
ok "noid mount: in the background once mounted, log at $CM_LOG"

# ---- the life cycle with mkdir, ls, echo, cat, rmdir only (the checks use
# anything) ----
# life_cycle DIR PREFIX WHAT: DIR is a user's level of a mount
life_cycle() {
    local d=$1 p=$2 what=$3
    local vm=${p}vm cp=${p}copy
    local v="$d/$vm" id1 id2 pid1 pid2 run out e werr

    mkdir "$v"
    assert_eq running "$(rest_state "$vm")" "$what: mkdir made VM $vm (REST)"
    ls_has "$d" "$vm" || fail "$what: ls does not show $vm right after mkdir"
    http GET "/v1/vms/$vm" "$A"
    assert_eq "$HTTP_BODY" "$(cat "$v/info")" "$what: info = GET /v1/vms/$vm"
    assert_eq running "$(cat "$v/state")" "$what: state"
    for e in info state exec stdout stderr status new runs console console.log checkpoints; do
        ls_has "$v" "$e" || fail "$what: $e missing in the VM directory: $(ls "$v" | tr '\n' ' ')"
    done
    ok "$what: mkdir $vm creates a running VM (REST), ls shows it, info = the API's JSON"

    echo 'echo hi; echo err >&2; exit 3' > "$v/exec"
    assert_eq hi "$(cat "$v/stdout")" "$what: stdout"
    assert_eq err "$(cat "$v/stderr")" "$what: stderr"
    assert_eq 3 "$(cat "$v/status")" "$what: status"
    cmp -s <(printf 'hi\n') "$v/stdout" || fail "$what: stdout is not exactly 'hi\\n'"
    cmp -s <(printf '3\n') "$v/status" || fail "$what: status is not exactly '3\\n'"
    run=$(readlink "$v/last")
    case "$run" in runs/[0-9]*) ;; *) fail "$what: last -> '$run'" ;; esac
    assert_eq 3 "$(cat "$v/last/status")" "$what: last/status"
    assert_eq 'echo hi; echo err >&2; exit 3' "$(cat "$v/$run/command")" "$what: $run/command"
    echo 'echo via-mount > /root/noidfs-mark' > "$v/exec"
    assert_eq 0 "$(cat "$v/status")" "$what: second exec's status"
    assert_eq via-mount "$(rest_exec "$vm" 'cat /root/noidfs-mark')" "$what: the exec ran in $vm (REST)"
    ok "$what: echo > exec runs it at close: stdout hi, stderr err, status 3; last, command; REST sees its effect"

    echo "printf '\\377\\000x'; kill -9 \$\$" > "$v/exec"
    assert_eq 137 "$(cat "$v/status")" "$what: a command killed by signal 9 -> 128+9"
    cmp -s <(printf '\377\000x') "$v/stdout" || fail "$what: binary stdout: $(od -An -tx1 "$v/stdout")"
    assert_eq "3 4" "$(stat -c %s "$v/stdout") $(stat -c %s "$v/status")" "$what: real sizes of stdout, status"
    http GET "/v1/vms/$vm" "$A"
    assert_eq $((${#HTTP_BODY} + 1)) "$(stat -c %s "$v/info")" "$what: real size of info"
    ok "$what: status 128+N on a signal, exact binary stdout, real file sizes"

    # two runs that can only finish together (each waits for the other's
    # gate), so they overlap; their results stay apart
    id1=$(cat "$v/new")
    id2=$(cat "$v/new")
    [ -n "$id1" ] && [ -n "$id2" ] && [ "$id1" != "$id2" ] || fail "$what: new gave '$id1' and '$id2'"
    ls_has "$v/runs" "$id1" && ls_has "$v/runs" "$id2" || fail "$what: runs/ lacks $id1 or $id2"
    echo 'touch /tmp/g1; while [ ! -e /tmp/g2 ]; do sleep 0.05; done; echo one; echo e1 >&2; exit 4' \
        > "$v/runs/$id1/exec" &
    pid1=$!
    echo 'touch /tmp/g2; while [ ! -e /tmp/g1 ]; do sleep 0.05; done; echo two; echo e2 >&2; exit 5' \
        > "$v/runs/$id2/exec" &
    pid2=$!
    wait "$pid1" || fail "$what: the first parallel run's close failed"
    wait "$pid2" || fail "$what: the second parallel run's close failed"
    assert_eq "one e1 4" "$(cat "$v/runs/$id1/stdout") $(cat "$v/runs/$id1/stderr") $(cat "$v/runs/$id1/status")" \
        "$what: run $id1"
    assert_eq "two e2 5" "$(cat "$v/runs/$id2/stdout") $(cat "$v/runs/$id2/stderr") $(cat "$v/runs/$id2/status")" \
        "$what: run $id2"
    assert_contains "$(cat "$v/runs/$id1/command")" "echo one" "$what: run $id1 command"
    assert_eq 137 "$(cat "$v/status")" "$what: runs through new leave vm/status alone"
    assert_eq ok "$(rest_exec "$vm" 'test -e /tmp/g1 && test -e /tmp/g2 && echo ok')" "$what: both gates (REST)"
    ok "$what: two runs through new at once (each waited for the other), results apart"

    for e in $(seq 1 33); do cat "$v/new" > /dev/null; done
    assert_eq 32 "$(ls "$v/runs" | wc -l)" "$what: runs kept after 33 more"
    ! ls_has "$v/runs" "$id1" || fail "$what: the oldest runs do not vanish ($id1 still there)"
    ok "$what: the last 32 runs are kept"

    out=$("${TOOL[@]}" rwexec "$v")
    assert_eq "a" "$(json_get before_gate <<< "$out" | tr -d '\n')" "$what: read-write exec: 'a' read while the command waited"
    assert_eq "b err" "$(json_get after_gate <<< "$out" | sed '/^$/d' | sort | tr '\n' ' ' | sed 's/ $//')" \
        "$what: read-write exec: the rest after the gate, stdout and stderr"
    assert_eq "a b 3" "$(tr '\n' ' ' < "$v/stdout")$(cat "$v/status")" "$what: the session's stdout, status"
    assert_eq err "$(cat "$v/stderr")" "$what: the session's stderr"
    assert_eq gate "$(rest_exec "$vm" 'test -e /tmp/rw-gate && echo gate')" "$what: the gate exec ran (REST)"
    ok "$what: a read-write exec handle streams output before the command ends (gate opened only after 'a' was read)"

    out=$("${TOOL[@]}" console "$v" 'marker$((1+1))' marker2)
    [ "$(json_get pollin <<< "$out")" -ge 1 ] || fail "$what: poll never reported POLLIN: $out"
    assert_eq 0 "$(json_get idle_pollin <<< "$out")" "$what: poll of a console with nothing new: no POLLIN"
    assert_contains "$(cat "$v/console.log")" marker2 "$what: console.log has the output"
    http GET "/v1/vms/$vm/console.log" "$A"
    assert_contains "$HTTP_BODY" marker2 "$what: the API's console log has it too"
    ok "$what: a line typed into console runs; its output reaches the reader (poll: POLLIN); console.log"

    # the shell way: each line typed by a writer that closes at once, with
    # no reader attached (^U first: a line cut short before cannot spoil the next)
    werr=""
    for e in 1 2 3 4 5; do
        { echo $'\x15'"echo typed-\$(($e*11)) > /root/typed$e" > "$v/console"; } 2> "$T/err" ||
            werr="$werr [write $e: $(cat "$T/err")]"
    done
    out=""
    for e in $(seq 1 50); do
        out=$(rest_exec "$vm" 'cat /root/typed1 /root/typed2 /root/typed3 /root/typed4 /root/typed5 2>/dev/null | tr "\n" " " || true')
        [ "$out" = "typed-11 typed-22 typed-33 typed-44 typed-55 " ] && break
        sleep 0.2
    done
    if [ -n "$werr" ]; then
        fail_later "$what: echo > console failed:$werr"
    fi
    if [ "$out" = "typed-11 typed-22 typed-33 typed-44 typed-55 " ]; then
        ok "$what: lines written with echo > console (no reader) all run"
    else
        fail_later "$what: of 5 lines written with echo > console (no reader) only these ran: '$out'; the console log ends with: $(tail -c 240 "$v/console.log" | tr -d '\r' | sed 's/\x1b\[[0-9]*[A-Za-z]//g' | tr '\n' '|')"
    fi

    echo 'echo before > /root/state; sync' > "$v/exec"
    mkdir "$v/checkpoints/before"
    ls_has "$v/checkpoints" before || fail "$what: ls checkpoints: $(ls "$v/checkpoints")"
    assert_eq before "$(json_get label < "$v/checkpoints/before/info")" "$what: checkpoint info label"
    checkpoint_labels "$vm" | grep -qxF before || fail "$what: REST does not list checkpoint 'before'"
    assert_contains "$(checkpoint_ids "$vm")" "$(json_get id < "$v/checkpoints/before/info")" "$what: info id = REST id"
    echo 'echo after > /root/state; sync' > "$v/exec"
    echo 'cat /root/state' > "$v/exec"
    assert_eq after "$(cat "$v/stdout")" "$what: the file changed"
    echo > "$v/checkpoints/before/restore"
    echo 'cat /root/state' > "$v/exec"
    assert_eq before "$(cat "$v/stdout")" "$what: restore rewound the file"
    assert_eq before "$(rest_exec "$vm" 'cat /root/state')" "$what: restored (REST)"
    echo "$cp" > "$v/checkpoints/before/clone"
    assert_eq running "$(rest_state "$cp")" "$what: clone made VM $cp (REST)"
    ls_has "$d" "$cp" || fail "$what: ls does not show $cp"
    assert_eq before "$(rest_exec "$cp" 'cat /root/state')" "$what: the clone has the checkpoint's file"
    echo 'cat /root/state' > "$d/$cp/exec"
    assert_eq before "$(cat "$d/$cp/stdout")" "$what: the clone's file through the mount"
    rmdir "$v/checkpoints/before"
    ! ls_has "$v/checkpoints" before || fail "$what: rmdir checkpoints/before left it in ls"
    ! checkpoint_labels "$vm" | grep -qxF before || fail "$what: REST still lists 'before' after rmdir"
    ok "$what: mkdir checkpoints/before, restore rewinds, clone makes $cp, rmdir deletes (REST agrees)"

    rmdir "$v"
    rmdir "$d/$cp"
    assert_eq 404 "$(rest_state "$vm")" "$what: rmdir destroyed $vm (REST)"
    assert_eq 404 "$(rest_state "$cp")" "$what: rmdir destroyed $cp (REST)"
    ! ls_has "$d" "$vm" && ! ls_has "$d" "$cp" || fail "$what: ls still shows them: $(ls "$d" | tr '\n' ' ')"

    # the other way: VMs the API makes and destroys show in the mount
    noid create "${p}rest" > /dev/null
    wait_for "$what: a VM created through the API in ls" ls_has "$d" "${p}rest"
    noid destroy "${p}rest" > /dev/null
    wait_for "$what: a VM destroyed through the API gone from ls" eval "! ls_has '$d' '${p}rest'"
    ok "$what: rmdir destroys (REST 404); VMs made and destroyed through the API show in ls"
}

life_cycle "$CM" c "client mount"
life_cycle "$SM/alice" s "server-side mount"

# ---- one slow exec does not hold another VM's: two `sleep 2` at once take
# about the time of one (a ratio of two measurements from this run) ----
parallel_ratio() { # DIR PREFIX WHAT
    local d=$1 p=$2 what=$3 t0 t1 single par ratio pid1 pid2
    mkdir "$d/${p}p1" "$d/${p}p2"
    echo true > "$d/${p}p1/exec"
    echo true > "$d/${p}p2/exec"
    t0=$(now)
    echo 'sleep 2' > "$d/${p}p1/exec"
    t1=$(now)
    single=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    t0=$(now)
    echo 'sleep 2' > "$d/${p}p1/exec" &
    pid1=$!
    echo 'sleep 2' > "$d/${p}p2/exec" &
    pid2=$!
    wait "$pid1"
    wait "$pid2"
    t1=$(now)
    par=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    ratio=$(awk -v s="$single" -v p="$par" 'BEGIN { printf "%.2f", p / s }')
    echo "noidfs $what: one 'sleep 2' exec ${single}s, two on two VMs at once ${par}s, ratio $ratio (1.0 = fully parallel)"
    assert_eq "0 0" "$(cat "$d/${p}p1/status") $(cat "$d/${p}p2/status")" "$what: both sleeps ended normally"
    awk -v r="$ratio" 'BEGIN { exit !(r < 1.8) }' || fail "$what: two execs at once took $ratio x one: serialised"
    rmdir "$d/${p}p1" "$d/${p}p2"
    ok "$what: two VMs' execs run in parallel (ratio $ratio < 1.8)"
}
parallel_ratio "$CM" c "client mount"
parallel_ratio "$SM/alice" s "server-side mount"

# ---- bad input: exact errnos ----
bad_input() { # DIR PREFIX WHAT
    local d=$1 p=$2 what=$3 v="$1/${2}bad" name f run
    mkdir "$v"
    for name in 'a b' '-x' '.x' 'a:b' 'a*b' "$(printf 'x%.0s' $(seq 1 65))"; do
        assert_eq EINVAL "$(errno_of mkdir "$d/$name")" "$what: mkdir '$name'"
    done
    rc=0
    mkdir "$d/a b" 2> "$T/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: shell mkdir 'a b' succeeded"
    assert_contains "$(cat "$T/err")" "Invalid argument" "$what: mkdir 'a b' message"
    assert_eq EEXIST "$(errno_of mkdir "$v")" "$what: mkdir of an existing VM"
    echo 'echo x' > "$v/exec"
    run=$(readlink "$v/last")
    for f in info state stdout stderr status console.log new "$run/stdout" "$run/stderr" \
        "$run/status" "$run/command"; do
        assert_eq EACCES "$(errno_of write "$v/$f")" "$what: write to $f as root"
    done
    rc=0
    { echo x > "$v/state"; } 2> "$T/err" || rc=$?
    [ "$rc" -ne 0 ] || fail "$what: echo > state succeeded"
    assert_contains "$(cat "$T/err")" "Permission denied" "$what: echo > state message"
    assert_eq ENOENT "$(errno_of rmdir "$d/${p}nosuch")" "$what: rmdir of a missing VM"
    assert_eq ENOENT "$(errno_of listdir "$d/${p}nosuch")" "$what: ls of a missing VM"
    assert_eq ENOENT "$(errno_of rmdir "$v/checkpoints/nosuch")" "$what: rmdir of a missing checkpoint"
    http GET /v1/vms "$A"
    assert_not_contains "$HTTP_BODY" '"a b"' "$what: no VM 'a b' (REST)"
    assert_eq running "$(rest_state "${p}bad")" "$what: the VM is unharmed (REST)"
    assert_eq running "$(cat "$v/state")" "$what: state unchanged by the write"
    rmdir "$v"
    ok "$what: invalid names EINVAL, existing EEXIST, writes to read-only entries EACCES (root too), missing ENOENT"
}
bad_input "$CM" c "client mount"
bad_input "$SM/alice" s "server-side mount"

# ---- a console reader gets EOF when its VM is destroyed or dies ----
# attach_cat DIR VM OUT: a `cat console` in the background (sets CAT_PID),
# returned once it is attached: what the guest writes to its serial line
# (through an exec) shows in OUT
attach_cat() {
    local d=$1 vm=$2 out=$3 i
    timeout 60 cat "$d/$vm/console" > "$out" &
    CAT_PID=$!
    for i in $(seq 1 60); do
        echo "echo attached-$i > /dev/ttyS0" > "$d/$vm/exec"
        sleep 0.2
        grep -q attached- "$out" && return 0
    done
    fail "cat of $vm's console never showed the guest's serial output"
}
console_eof() { # DIR PREFIX WHAT
    local d=$1 p=$2 what=$3 rc pid
    mkdir "$d/${p}dead1" "$d/${p}dead2"
    attach_cat "$d" "${p}dead1" "$T/${p}dead1.out"
    http DELETE "/v1/vms/${p}dead1" "$A"
    [ "${HTTP_STATUS:0:1}" = 2 ] || fail "$what: DELETE: $HTTP_STATUS $HTTP_BODY"
    rc=0
    wait "$CAT_PID" || rc=$?
    assert_eq 0 "$rc" "$what: cat of a destroyed VM's console ends with EOF (124: still blocked after 60 s)"

    attach_cat "$d" "${p}dead2" "$T/${p}dead2.out"
    pid=$(cat "$T"/data/storage/users/*/vms/"${p}dead2"/qemu.pid)
    kill -KILL "$pid"
    rc=0
    wait "$CAT_PID" || rc=$?
    assert_eq 0 "$rc" "$what: cat of a dead VM's console ends with EOF (124: still blocked after 60 s)"
    wait_for "$what: state says dead" eval "[ \"\$(cat '$d/${p}dead2/state')\" = dead ]"
    assert_eq dead "$(rest_state "${p}dead2")" "$what: dead (REST)"
    rmdir "$d/${p}dead2"
    assert_eq 404 "$(rest_state "${p}dead2")" "$what: rmdir of a dead VM destroys it"
    ok "$what: console readers get EOF when the VM is destroyed (REST) or its VMM is killed"
}
console_eof "$CM" c "client mount"
console_eof "$SM/alice" s "server-side mount"

# ---- interrupts: SIGINT ends a blocked read and a running exec promptly
# (the outer timeout -s KILL turns a hang into 137, well before the 25 s
# sleep would end by itself; 124 = ended by the INT) ----
interrupts() { # DIR PREFIX WHAT
    local d=$1 p=$2 what=$3 vm=${2}int rc n i
    mkdir "$d/$vm"
    rc=0
    timeout -s KILL 12 timeout -s INT 3 cat "$d/$vm/console" > /dev/null || rc=$?
    assert_eq 124 "$rc" "$what: timeout -s INT 3 cat console"
    rc=0
    timeout -s KILL 12 timeout -s INT 2 sh -c "echo 'sleep 25' > '$d/$vm/exec'" || rc=$?
    assert_eq 124 "$rc" "$what: timeout -s INT 2 of echo 'sleep 25' > exec"
    n=error
    for i in $(seq 1 40); do
        n=$(rest_exec "$vm" 'ps -eo args | grep -c "[s]leep 25" || true')
        [ "$n" = 0 ] && break
        sleep 0.2
    done
    assert_eq 0 "$n" "$what: the interrupted exec's command is gone from the guest (REST)"
    echo 'echo alive' > "$d/$vm/exec"
    assert_eq alive "$(cat "$d/$vm/stdout")" "$what: exec works after the interrupt"
    # a script's background job ending (bash catches SIGCHLD, so the waiting
    # close is interrupted) is not a reason to kill the command
    out=$(bash -c "sleep 0.3 & echo 'sleep 1.5; echo survived' > '$d/$vm/exec'; cat '$d/$vm/stdout' '$d/$vm/status'")
    assert_eq "survived
0" "$out" "$what: a background job's SIGCHLD during echo > exec does not kill the command"
    # and the signal did interrupt the wait (else this proved nothing)
    assert_contains "$(cat "$T/server.log" "$T"/home/.noid/logs/*.log)" \
        "exec in $vm: the waiting process got a signal that does not mean stop" \
        "$what: the SIGCHLD reached the mount as an interrupt"
    rmdir "$d/$vm"
    ok "$what: SIGINT ends a blocked console read and a running exec; the command is killed; SIGCHLD does not"
}
interrupts "$CM" c "client mount"
interrupts "$SM/alice" s "server-side mount"

# ---- permissions on the server-side mount: a local account named like a
# noid user reaches exactly its own directory ----
for i in $(seq 1 20); do
    LU="nfst$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')"
    getent passwd "$LU" > /dev/null || getent group "$LU" > /dev/null || break
done
useradd --no-create-home --shell /usr/sbin/nologin --user-group "$LU"
LOCAL_USER=$LU
LT=$(add_user "$LU")
chmod 0711 "$T" # the account reaches $SM through the test dir
cp "$IT_DIR/noidfs_tool.py" "$T/noidfs_tool.py"
chmod 0644 "$T/noidfs_tool.py"
as_lu() { runuser -u "$LU" -- "$@"; }
http POST /v1/vms "$LT" '{"name":"own"}'
assert_eq 201 "$HTTP_STATUS" "$LU creates a VM (REST): $HTTP_BODY"
mkdir "$SM/alice/theirs"
wait_for "the new user's directory in the server-side mount" ls_has "$SM" "$LU"
assert_eq "$LU 700" "$(stat -c '%U %a' "$SM/$LU")" "the local account owns its user directory"
out=$(as_lu ls "$SM")
assert_contains "$out" alice "$LU: ls of the mount's root"
assert_contains "$out" "$LU" "$LU: ls of the mount's root"
rc=0
as_lu ls "$SM/alice" > /dev/null 2> "$T/err" || rc=$?
[ "$rc" -ne 0 ] || fail "$LU could list alice's VMs"
assert_contains "$(cat "$T/err")" "Permission denied" "$LU: ls of alice's directory"
assert_eq EACCES "$(as_lu /usr/bin/python3 "$T/noidfs_tool.py" errno listdir "$SM/alice")" "$LU: listdir alice"
assert_eq EACCES "$(as_lu /usr/bin/python3 "$T/noidfs_tool.py" errno write "$SM/alice/theirs/exec" 'touch /root/pwned')" \
    "$LU: exec in alice's VM"
assert_eq "" "$(rest_exec theirs 'ls /root/pwned 2>/dev/null || true')" "alice's VM untouched (REST)"
assert_eq own "$(as_lu ls "$SM/$LU")" "$LU: ls of its own directory"
as_lu sh -c "echo 'echo mine > /root/who; echo done' > '$SM/$LU/own/exec'"
assert_eq done "$(as_lu cat "$SM/$LU/own/stdout")" "$LU: exec through its own directory"
http POST /v1/vms/own/exec "$LT" '{"command":["cat","/root/who"]}'
assert_eq mine "$(json_get stdout <<< "$HTTP_BODY" | tr -d '\n')" "$LU's exec ran in its VM (REST)"
as_lu mkdir "$SM/$LU/own2"
http GET /v1/vms/own2 "$LT"
assert_eq 200 "$HTTP_STATUS" "$LU: mkdir made its VM (REST, its token)"
assert_eq 404 "$(rest_state own2)" "the VM is $LU's, not alice's"
as_lu rmdir "$SM/$LU/own2"
http GET /v1/vms/own2 "$LT"
assert_eq 404 "$HTTP_STATUS" "$LU: rmdir destroyed its VM (REST)"
assert_eq own "$(ls "$SM/$LU")" "root lists $LU's VMs"
assert_eq theirs "$(ls "$SM/alice")" "root lists alice's VMs"
assert_eq mine "$(echo 'cat /root/who' > "$SM/$LU/own/exec"; cat "$SM/$LU/own/stdout")" "root execs in $LU's VM"
ok "permissions: $LU lists the root and its own directory, runs and creates there; alice's is EACCES; root sees all"

# ---- noid-server stopped under the client mount: errors, not a hang;
# back when the server is ----
mkdir "$CM/keep"
echo 'echo kept' > "$CM/keep/exec"
# requests blocked in the server-side mount do not hold the shutdown up: a
# console reader and a close waiting for a command (keep, made through the
# other mount, shows here once the 1 s VM list cache expires)
wait_for "keep in the server-side mount" ls_has "$SM/alice" keep
attach_cat "$SM/alice" keep "$T/blocked-cat.out"
BLOCKED_CAT=$CAT_PID
# (python: a shell ignores the errors of the close that ends its redirection)
timeout 60 "${TOOL[@]}" errno write "$SM/alice/keep/exec" 'sleep 50' > "$T/blocked-exec.out" &
BLOCKED_EXEC=$!
wait_for "the blocked exec's command runs in the guest" guest_runs keep '[s]leep 50'
kill -TERM "$SERVER_PID"
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
assert_eq 0 "$rc" "noid-server's exit status after SIGTERM with blocked requests in its mount"
rc=0
wait "$BLOCKED_CAT" || rc=$?
[ "$rc" -ne 124 ] || fail "the console reader still blocked 60 s after the server stopped"
rc=0
wait "$BLOCKED_EXEC" || rc=$?
[ "$rc" -ne 124 ] || fail "a write + close of exec across the shutdown still blocked after 60 s"
case "$(cat "$T/blocked-exec.out")" in
EIO | ENOTCONN) ;;
*) fail "the close of exec across the shutdown: $(cat "$T/blocked-exec.out"), not EIO/ENOTCONN (the command was killed)" ;;
esac
! is_mounted "$SM" || fail "the server-side mount outlived the server's shutdown"
ok "SIGTERM of noid-server with a console read and an exec blocked in its mount: it ends, they fail, the mount goes"
# within a few seconds: the mount may answer from its 1 s caches at first
t0=$(now)
for i in $(seq 1 10); do
    e_ls=$(timeout 20 "${TOOL[@]}" errno listdir "$CM") || fail "ls of the client mount with the server down hung (20 s)"
    e_cat=$(timeout 20 "${TOOL[@]}" errno read "$CM/keep/state") || fail "cat state with the server down hung (20 s)"
    [ "$e_ls" != OK ] && [ "$e_cat" != OK ] && break
    sleep 0.5
done
t1=$(now)
rc=0
timeout 20 ls "$CM" > /dev/null 2>&1 || rc=$?
echo "noidfs client mount, server down: ls -> $e_ls, cat state -> $e_cat ($(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s)"
case "$e_ls" in EIO | ENOTCONN) ;; *) fail "ls of the client mount with the server down: $e_ls, not EIO/ENOTCONN" ;; esac
case "$e_cat" in EIO | ENOTCONN) ;; *) fail "cat state with the server down: $e_cat, not EIO/ENOTCONN" ;; esac
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "shell ls with the server down: status $rc"
ok "server down: the client mount fails with $e_ls / $e_cat, promptly"

start_server
wait_for "the client mount back with the server" ls_has "$CM" keep
assert_eq running "$(cat "$CM/keep/state")" "state through the client mount after the restart"
echo 'echo back' > "$CM/keep/exec"
assert_eq back "$(cat "$CM/keep/stdout")" "exec through the client mount after the restart"
is_mounted "$SM" || fail "the server-side mount is not back after the restart"
ls_has "$SM" alice && ls_has "$SM" "$LU" || fail "server-side mount after restart: $(ls "$SM" | tr '\n' ' ')"
assert_eq keep "$(ls "$SM/alice" | grep -xF keep)" "alice's VMs in the server-side mount after the restart"
ok "server back: the client mount works again; the server-side mount is back (users listed)"

# ---- SIGKILL: the dead mount stays, the next start clears it ----
kill -KILL "$SERVER_PID"
wait "$SERVER_PID" 2> /dev/null || true
SERVER_PID=""
is_mounted "$SM" || fail "no mount left after kill -9 (expected a dead one)"
for i in $(seq 1 10); do # the root's attributes may be cached for 1 s
    e=$(timeout 20 "${TOOL[@]}" errno stat "$SM") || fail "stat of the dead server-side mount hung (20 s)"
    [ "$e" != OK ] && break
    sleep 0.5
done
echo "noidfs server-side mount after kill -9 of the server: stat -> $e"
assert_eq ENOTCONN "$e" "stat of the dead mount"
start_server
is_mounted "$SM" || fail "no server-side mount after the restart"
assert_eq 1 "$(awk -v m="$SM" '$2 == m' /proc/mounts | wc -l)" "one mount at $SM (the dead one cleared, not stacked)"
ls_has "$SM" alice && ls_has "$SM" "$LU" || fail "server-side mount after kill -9 + start: $(ls "$SM" 2>&1 | tr '\n' ' ')"
echo 'echo again' > "$SM/alice/keep/exec"
assert_eq again "$(cat "$SM/alice/keep/stdout")" "exec through the cleared and remounted mount"
wait_for "the client mount back after kill -9 + start" ls_has "$CM" keep
ok "kill -9 of the server leaves a dead mount (ENOTCONN); the next start clears it and mounts again"

# ---- SIGTERM of a client mount's process while a read blocks in it:
# it ends and the mount goes ----
mkdir "$T/cm2"
noid mount "$T/cm2" > /dev/null
attach_cat "$T/cm2" keep "$T/blocked-cat2.out"
BLOCKED_CAT=$CAT_PID
pkill -TERM -f -- "mount $T/cm2\$"
wait_for "the client mount's process ends on SIGTERM with a console read blocked" \
    eval "! pgrep -f -- 'mount $T/cm2\$' > /dev/null"
rc=0
wait "$BLOCKED_CAT" || rc=$?
[ "$rc" -ne 124 ] || fail "the console reader still blocked after its mount's process ended"
wait_for "the mount at cm2 gone" eval "! is_mounted '$T/cm2'"
ok "SIGTERM of a client mount with a blocked console read: the process ends, the mount goes"

# ---- noid umount ----
noid umount "$CM"
! is_mounted "$CM" || fail "noid umount left $CM mounted"
wait_for "the client mount's process ends after noid umount" eval "! pgrep -f -- 'mount $CM\$' > /dev/null"
ok "noid umount unmounts; the background process ends"

[ ${#LATER[@]} -eq 0 ] || fail "${#LATER[@]} failed check(s): $(printf '\n  %s' "${LATER[@]}")"
it_done
