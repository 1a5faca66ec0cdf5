#!/usr/bin/env bash
# install-server.sh — install noid as a system service on Debian 12: the
# packages, a `noid` system user, the programs and man pages (meson install),
# /etc/noid/server.toml, the guest image, the golden snapshot, the systemd
# units of noid-server and noid-netd, and IP forwarding.
#
# Idempotent: every step compares what is there with what it would make
# and changes only what differs; a second run changes nothing and says
# "up to date" for each step.  Files are written to a temporary name and
# renamed, so a failure never leaves one half-written.  --dry-run prints
# every action without taking any.  See docs/admin-guide.md, "Install".
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr/local
BUILD_DIR=/var/cache/noid/build
GUEST_SRC=""
LISTEN=0.0.0.0:7654
DRY=0
START=1

USER_NAME=noid
DATA_DIR=/var/lib/noid
CONF_DIR=/etc/noid
CONF=$CONF_DIR/server.toml
UNIT_DIR=/etc/systemd/system
SYSCTL_FILE=/etc/sysctl.d/90-noid.conf
NETD_SOCKET=/run/noid/netd.sock
UNITS=(noid-netd.service noid-server.service)
# the files of a guest image (scripts/build-guest.sh); the first three are required
GUEST_FILES=(vmlinux initrd.cpio rootfs.ext4 vmlinuz build.json)

usage() {
    cat <<EOF
Usage: scripts/install-server.sh [OPTIONS]

Install noid as a system service on this Debian 12 machine (run as root):
  1. the Debian packages it needs to build and run (only the missing ones)
  2. the system user and group '$USER_NAME' (home $DATA_DIR, no login),
     a member of 'kvm' when /dev/kvm exists
  3. build (meson, in the build dir) and install the programs and man pages
     into the prefix (only files that differ are replaced)
  4. $CONF (written once, never overwritten; mode 0640 root:$USER_NAME)
  5. the guest image in PREFIX/share/noid/guest (scripts/build-guest.sh, or a
     copy of --guest-dir)
  6. the golden snapshot (noid-server golden build, as $USER_NAME)
  7. the systemd units noid-netd.service and noid-server.service in
     $UNIT_DIR, enabled, and started when systemd runs
  8. $SYSCTL_FILE: net.ipv4.ip_forward=1, applied
Running it again changes only what differs ("up to date" otherwise).

Options:
  --prefix DIR      install prefix (default /usr/local)
  --build-dir DIR   meson build directory (default $BUILD_DIR)
  --guest-dir DIR   install this prebuilt guest image (vmlinux, initrd.cpio,
                    rootfs.ext4) instead of building one
  --listen ADDR     the listen address written into a new $CONF
                    (default $LISTEN)
  --no-start        enable the units but do not start or restart them
  --dry-run         print every action it would take, take none
  -h, --help        this help
EOF
}

die() {
    echo "install-server: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --build-dir) BUILD_DIR=${2:?--build-dir needs a directory}; shift 2 ;;
    --guest-dir) GUEST_SRC=${2:?--guest-dir needs a directory}; shift 2 ;;
    --listen) LISTEN=${2:?--listen needs an address}; shift 2 ;;
    --no-start) START=0; shift ;;
    --dry-run) DRY=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-server: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path: $PREFIX" ;; esac
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$(pwd)/$BUILD_DIR ;; esac
PREFIX=${PREFIX%/}
GUEST_DIR=$PREFIX/share/noid/guest
if [ -n "$GUEST_SRC" ]; then
    for f in vmlinux initrd.cpio rootfs.ext4; do
        [ -f "$GUEST_SRC/$f" ] || die "--guest-dir $GUEST_SRC has no $f (a guest image has vmlinux, initrd.cpio and rootfs.ext4)"
    done
fi
if [ "$DRY" = 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "must run as root (sudo $0); --dry-run works as any user"
fi

CHANGES=0
TMPS=()
cleanup() {
    local t
    for t in "${TMPS[@]+"${TMPS[@]}"}"; do rm -rf -- "$t"; done
}
trap cleanup EXIT

# one line per step: "step: what happened" (a dry run: what would happen)
say() { printf '%-9s %s\n' "$1:" "$2"; }
say_did() { if [ "$DRY" = 1 ]; then say "$1" "would: $2"; else say "$1" "$2"; fi; }
# an action: run it, or in a dry run only print it
act() {
    CHANGES=$((CHANGES + 1))
    if [ "$DRY" = 1 ]; then
        printf '          would run:'
        printf ' %q' "$@"
        printf '\n'
        return 0
    fi
    "$@" || die "failed (status $?): $*"
}
# run a command with its output in a log; show the log's end when it fails
run_logged() { # what cmd...
    local what=$1 log
    shift
    log=$(mktemp)
    TMPS+=("$log")
    if ! "$@" > "$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "$what failed: $*"
    fi
}

# Write stdin to PATH (mode, owner, group) through a temporary file in the
# same directory and a rename; nothing if PATH already has that content,
# mode and owner.  Returns 0 when it wrote (or would write), 1 when PATH
# was up to date.
put_file() { # path mode owner group
    local path=$1 mode=$2 owner=$3 group=$4 tmp dir
    dir=$(dirname "$path")
    tmp=$(mktemp)
    TMPS+=("$tmp")
    cat > "$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path" &&
        [ "$(stat -c '%a %U %G' "$path")" = "$mode $owner $group" ]; then
        return 1
    fi
    CHANGES=$((CHANGES + 1))
    if [ "$DRY" = 1 ]; then
        printf '          would write: %s (mode %s, %s:%s)\n' "$path" "$mode" "$owner" "$group"
        return 0
    fi
    # checked step by step: this runs in an `if`, where set -e does not act
    local new
    mkdir -p "$dir" && new=$(mktemp "$dir/.${path##*/}.XXXXXX") || die "cannot write in $dir"
    TMPS+=("$new")
    { cat "$tmp" > "$new" && chmod "$mode" "$new" && chown "$owner:$group" "$new" &&
        mv -f "$new" "$path"; } || die "cannot write $path"
    return 0
}

# Copy file SRC to DST (through a temporary name) unless DST has the same
# content and mode.  Returns 0 when it copied (or would), 1 when up to date.
put_copy() { # src dst
    local src=$1 dst=$2 new
    if [ -f "$dst" ] && [ ! -L "$dst" ] && cmp -s "$src" "$dst" &&
        [ "$(stat -c %a "$src")" = "$(stat -c %a "$dst")" ]; then
        return 1
    fi
    CHANGES=$((CHANGES + 1))
    if [ "$DRY" = 1 ]; then
        printf '          would copy: %s -> %s\n' "$src" "$dst"
        return 0
    fi
    # checked step by step: this runs in an `if`, where set -e does not act
    mkdir -p "$(dirname "$dst")" && new=$(mktemp "$(dirname "$dst")/.${dst##*/}.XXXXXX") ||
        die "cannot write in $(dirname "$dst")"
    TMPS+=("$new")
    { cp --sparse=always --preserve=mode,timestamps "$src" "$new" && chown root:root "$new" &&
        mv -f "$new" "$dst"; } || die "cannot copy $src to $dst"
    return 0
}

systemd_running() { [ -d /run/systemd/system ]; }

# ---- 1. packages ------------------------------------------------------------
step_packages() {
    # shellcheck source=deps.sh
    . "$SRC/scripts/deps.sh"
    local p missing=()
    for p in "${BUILD[@]}" "${RUN[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        say packages "up to date (${#BUILD[@]} to build, ${#RUN[@]} to run, all installed)"
        return
    fi
    say_did packages "install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    act apt-get update -qq
    act apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# ---- 2. user and group ------------------------------------------------------
step_user() {
    local did=()
    if ! getent group "$USER_NAME" > /dev/null; then
        act groupadd --system "$USER_NAME"
        did+=("group $USER_NAME")
    fi
    if ! getent passwd "$USER_NAME" > /dev/null; then
        act useradd --system --gid "$USER_NAME" --home-dir "$DATA_DIR" --no-create-home \
            --shell /usr/sbin/nologin --comment "noid server" "$USER_NAME"
        did+=("user $USER_NAME")
    fi
    # the data dir: the server's alone (VM disks, the database, tokens' hashes)
    if [ "$(stat -c '%U %G %a' "$DATA_DIR" 2> /dev/null)" != "$USER_NAME $USER_NAME 700" ]; then
        act install -d -o "$USER_NAME" -g "$USER_NAME" -m 0700 "$DATA_DIR"
        did+=("$DATA_DIR")
    fi
    # /dev/kvm belongs to group kvm (udev); membership lets QEMU use KVM
    if [ -c /dev/kvm ]; then
        if ! getent group kvm > /dev/null; then
            act groupadd --system kvm
            did+=("group kvm")
        fi
        if ! id -nG "$USER_NAME" 2> /dev/null | tr ' ' '\n' | grep -qx kvm; then
            act usermod -a -G kvm "$USER_NAME"
            did+=("$USER_NAME in kvm")
        fi
    fi
    if [ ${#did[@]} -eq 0 ]; then
        say user "up to date ($USER_NAME$([ -c /dev/kvm ] && echo ', in kvm'), $DATA_DIR)"
    else
        say_did user "make $(IFS=,; echo "${did[*]}" | sed 's/,/, /g')"
    fi
}

# ---- 3. build and install the programs -------------------------------------
BIN_CHANGED=0
step_build() {
    local setup=0
    if [ ! -f "$BUILD_DIR/build.ninja" ]; then
        setup=1
    else
        local src
        src=$(sed -n 's/.*"source": *"\([^"]*\)".*/\1/p' "$BUILD_DIR/meson-info/meson-info.json" 2> /dev/null | head -n 1)
        [ "$src" = "$SRC" ] ||
            die "build dir $BUILD_DIR belongs to the source tree ${src:-?}, not $SRC: give another --build-dir"
    fi
    if [ "$DRY" = 1 ]; then
        [ $setup = 1 ] && act meson setup "$BUILD_DIR" "$SRC" --prefix "$PREFIX" -Dtests=false
        if [ $setup = 0 ] && ninja -C "$BUILD_DIR" -n 2> /dev/null | grep -q '^ninja: no work to do'; then
            say build "up to date ($BUILD_DIR)"
        else
            say build "would build in $BUILD_DIR"
            act ninja -C "$BUILD_DIR"
        fi
        say install "would compare the build's 'meson install' with $PREFIX and replace what differs"
        return
    fi
    if [ $setup = 1 ]; then
        mkdir -p "$(dirname "$BUILD_DIR")"
        run_logged "meson setup" meson setup "$BUILD_DIR" "$SRC" --prefix "$PREFIX" -Dtests=false
    elif [ "$(meson configure "$BUILD_DIR" 2> /dev/null | awk '$1 == "prefix" {print $2}')" != "$PREFIX" ]; then
        run_logged "meson configure" meson configure "$BUILD_DIR" -Dprefix="$PREFIX"
    fi
    local log
    log=$(mktemp)
    TMPS+=("$log")
    ninja -C "$BUILD_DIR" > "$log" 2>&1 || { tail -n 40 "$log" >&2; die "the build failed (ninja -C $BUILD_DIR)"; }
    if grep -q '^ninja: no work to do' "$log"; then
        say build "up to date ($BUILD_DIR)"
    else
        CHANGES=$((CHANGES + 1))
        say build "built in $BUILD_DIR"
    fi

    # meson install into a staging dir, then copy only what differs
    local stage f rel n=0 changed=()
    stage=$(mktemp -d)
    TMPS+=("$stage")
    run_logged "meson install" meson install -C "$BUILD_DIR" --no-rebuild --destdir "$stage"
    while IFS= read -r -d '' f; do
        rel=${f#"$stage"}
        n=$((n + 1))
        put_copy "$f" "$rel" && changed+=("$rel")
    done < <(find "$stage" -type f -print0 | sort -z)
    [ $n -gt 0 ] || die "meson install installed nothing from $BUILD_DIR"
    if [ ${#changed[@]} -eq 0 ]; then
        say install "up to date ($n files in $PREFIX)"
    else
        BIN_CHANGED=1
        say_did install "install ${changed[*]}"
    fi
}

# ---- 4. /etc/noid/server.toml ----------------------------------------------
step_config() {
    if [ -e "$CONF" ]; then
        say config "up to date ($CONF exists; it is never overwritten)"
        return
    fi
    put_file "$CONF" 640 root "$USER_NAME" <<EOF || true
# noid-server configuration (docs/admin-guide.md, "Configuration").
# Written once by scripts/install-server.sh, which never overwrites it:
# edit freely, then: systemctl restart noid-server
kernel = "$GUEST_DIR/vmlinux"
initrd = "$GUEST_DIR/initrd.cpio"
rootfs = "$GUEST_DIR/rootfs.ext4"
data_dir = "$DATA_DIR"
listen = "$LISTEN"
netd_socket = "$NETD_SOCKET"
EOF
    say_did config "write $CONF"
}

# ---- 5. the guest image ----------------------------------------------------
# name size mtime of each file of the guest dir: what a rebuild changes
guest_listing() { (cd "$GUEST_DIR" 2> /dev/null && stat -c '%n %s %Y' -- * 2> /dev/null) || true; }

step_guest() {
    if [ -n "$GUEST_SRC" ]; then
        local f changed=()
        for f in "${GUEST_FILES[@]}"; do
            [ -f "$GUEST_SRC/$f" ] || continue
            put_copy "$GUEST_SRC/$f" "$GUEST_DIR/$f" && changed+=("$f")
        done
        if [ ${#changed[@]} -eq 0 ]; then
            say guest "up to date ($GUEST_DIR, from $GUEST_SRC)"
        else
            say_did guest "copy ${changed[*]} from $GUEST_SRC to $GUEST_DIR"
        fi
        return
    fi
    local agent=$BUILD_DIR/agent/noid-agent before
    if [ "$DRY" = 1 ]; then
        say guest "would build the guest image in $GUEST_DIR (scripts/build-guest.sh skips what is up to date)"
        act "$SRC/scripts/build-guest.sh" --out "$GUEST_DIR" --agent "$agent"
        return
    fi
    before=$(guest_listing)
    mkdir -p "$GUEST_DIR"
    run_logged "scripts/build-guest.sh" "$SRC/scripts/build-guest.sh" --out "$GUEST_DIR" --agent "$agent"
    chmod -R a+rX "$GUEST_DIR"
    if [ "$before" = "$(guest_listing)" ]; then
        say guest "up to date ($GUEST_DIR)"
    else
        CHANGES=$((CHANGES + 1))
        say guest "built in $GUEST_DIR"
    fi
}

# ---- 6. the golden snapshot ------------------------------------------------
step_golden() {
    local rec=$DATA_DIR/golden/config.json before
    local cmd=(runuser -u "$USER_NAME" -- "$PREFIX/bin/noid-server" golden build --config "$CONF")
    if [ "$DRY" = 1 ]; then
        say golden "would build the golden snapshot unless it matches the guest image"
        act "${cmd[@]}"
        return
    fi
    before=$(sha256sum "$rec" 2> /dev/null || true)
    # the server checks what the snapshot was made from and rebuilds only
    # when that changed (a boot under TCG takes a while)
    run_logged "the golden snapshot build" "${cmd[@]}"
    if [ -n "$before" ] && [ "$before" = "$(sha256sum "$rec" 2> /dev/null || true)" ]; then
        say golden "up to date ($DATA_DIR/golden)"
    else
        CHANGES=$((CHANGES + 1))
        say golden "built in $DATA_DIR/golden"
    fi
}

# ---- 7. systemd units ------------------------------------------------------
UNITS_CHANGED=0
step_units() {
    local u changed=() enabled=()
    for u in "${UNITS[@]}"; do
        # the units name /usr/local/bin; another prefix is substituted
        if sed "s|/usr/local/bin/|$PREFIX/bin/|g" "$SRC/scripts/$u" |
            put_file "$UNIT_DIR/$u" 644 root root; then
            changed+=("$u")
        fi
    done
    if ! command -v systemctl > /dev/null; then
        say units "$([ ${#changed[@]} -gt 0 ] && echo "installed ${changed[*]}; ")systemctl not found: enable ${UNITS[*]} by hand"
        return
    fi
    if [ ${#changed[@]} -gt 0 ]; then
        UNITS_CHANGED=1
        if systemd_running; then act systemctl daemon-reload; fi
    fi
    for u in "${UNITS[@]}"; do
        if [ "$(systemctl is-enabled "$u" 2> /dev/null)" != enabled ]; then
            act systemctl enable --quiet "$u"
            enabled+=("$u")
        fi
    done
    if [ ${#changed[@]} -eq 0 ] && [ ${#enabled[@]} -eq 0 ]; then
        say units "up to date (${UNITS[*]} in $UNIT_DIR, enabled)"
    else
        local what=()
        [ ${#changed[@]} -eq 0 ] || what+=("install ${changed[*]}")
        [ ${#enabled[@]} -eq 0 ] || what+=("enable ${enabled[*]}")
        say_did units "${what[*]}"
    fi
}

# ---- 8. IP forwarding ------------------------------------------------------
step_sysctl() {
    local wrote=0
    if put_file "$SYSCTL_FILE" 644 root root <<'EOF'; then
# noid: VMs reach the outside through NAT on this host (noid-netd's rules),
# which needs forwarding.  Written by scripts/install-server.sh.
net.ipv4.ip_forward = 1
EOF
        wrote=1
    fi
    if [ $wrote = 1 ] || [ "$(sysctl -n net.ipv4.ip_forward 2> /dev/null)" != 1 ]; then
        act sysctl -q -p "$SYSCTL_FILE"
        say_did sysctl "set net.ipv4.ip_forward = 1 ($SYSCTL_FILE, applied)"
    else
        say sysctl "up to date ($SYSCTL_FILE, net.ipv4.ip_forward = 1)"
    fi
}

# ---- 9. start the services -------------------------------------------------
step_services() {
    local u active did=()
    if [ $START = 0 ]; then
        say services "not started (--no-start): systemctl start ${UNITS[*]}"
        return
    fi
    if ! systemd_running; then
        say services "not started: systemd is not running here (start ${UNITS[*]} once it is)"
        return
    fi
    local since
    since=$(date +%s)
    for u in "${UNITS[@]}"; do
        active=$(systemctl is-active "$u" 2> /dev/null || true)
        if [ "$active" != active ]; then
            act systemctl start "$u"
            did+=("start $u")
        elif [ $UNITS_CHANGED = 1 ] || [ $BIN_CHANGED = 1 ]; then
            # VMs outlive both restarts (KillMode=process; TAPs stay)
            act systemctl restart "$u"
            did+=("restart $u")
        fi
    done
    # noid-netd is Type=notify (start waits for it); noid-server is simple:
    # wait until it says it listens, or fails
    if [ "$DRY" = 0 ] && [ ${#did[@]} -gt 0 ]; then
        local line=""
        for _ in $(seq 1 300); do
            line=$(journalctl -u noid-server.service --since "@$since" -o cat --no-pager 2> /dev/null |
                grep -m 1 '^noid-server listening on ' || true)
            [ -n "$line" ] && break
            if systemctl is-failed --quiet noid-server.service ||
                [ "$(systemctl is-active noid-server.service)" = inactive ]; then
                journalctl -u noid-server.service --since "@$since" -o cat --no-pager -n 20 >&2 || true
                die "noid-server did not start (journalctl -u noid-server)"
            fi
            sleep 0.2
        done
        [ -n "$line" ] || die "noid-server did not say it listens within 60 s (journalctl -u noid-server)"
        did+=("(${line#noid-server })")
    fi
    if [ ${#did[@]} -eq 0 ]; then
        say services "up to date (${UNITS[*]} running)"
    else
        say_did services "${did[*]}"
    fi
}

[ "$DRY" = 1 ] && echo "install-server: dry run: nothing is changed"
step_packages
step_user
step_build
step_config
step_guest
step_golden
step_units
step_sysctl
step_services
if [ "$DRY" = 1 ]; then
    echo "install-server: dry run: $CHANGES action(s) would be taken"
elif [ $CHANGES -eq 0 ]; then
    echo "install-server: everything up to date, nothing changed"
else
    echo "install-server: done ($CHANGES change(s))"
fi
