#!/usr/bin/env bash
# build-guest.sh — build the noid guest image from Debian packages only
# (DESIGN.md §6).  Two flavours share the kernel and the initramfs:
#   debian (default)  a Debian 12 root file system made with mmdebstrap from
#                     the Debian archive: apt, dpkg, bash, coreutils, curl,
#                     python3 ... and the static noid-agent; needs root
#   small (--small)   busybox-static and the agent in a few MiB: fast to
#                     build, for tests that need nothing but a shell
# Nothing is mounted and no loop device is used; nothing is fetched except
# Debian packages (apt-get download for the kernel and busybox, mmdebstrap
# for the Debian root).
#
# Output directory (first of: --out DIR, $NOID_GUEST_DIR,
# ${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest, or .../guest-small for --small):
#   vmlinux       the uncompressed ELF kernel (PVH boot under QEMU, Firecracker)
#   vmlinuz       the Debian bzImage it came from
#   initrd.cpio   uncompressed newc initramfs: busybox + the virtio/vsock/net
#                 modules + /init (scripts/guest/initramfs-init)
#   rootfs.ext4   sparse ext4 image made with mkfs.ext4 -d: the flavour's
#                 userland, busybox init (scripts/guest/common + the
#                 flavour's scripts/guest/<flavour>), the agent, modules
#   build.json    flavour, kernel release, package versions, sha256 of every
#                 output, and the recommended kernel command line
#   debs/         the downloaded .debs (a cache, reused across runs)
#   work/         staging trees and the Debian base tarball (kept so that
#                 unchanged steps can be skipped)
#
# Every step records a stamp of its inputs (package files, the agent's and
# the guest files' content, this script, options) and is skipped when the
# stamp and its outputs are still there: a rebuild with cached .debs does
# only what changed.  The Debian base (the slow, downloading step) depends
# only on its own package list and options, not on the agent or this
# script's other parts: a new agent costs an unpack and a mkfs, not a
# download.  One line is printed per step; mmdebstrap shows its own progress.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd -P)
GUEST_DIR=$SCRIPT_DIR/guest
SELF=$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")

KERNEL_META=linux-image-cloud-amd64
BUSYBOX_PKG=busybox-static
# Modules in the initramfs, as module:virtio-device-id ("-" = always loaded):
# virtio over MMIO (QEMU microvm, Firecracker), the root disk, the agent's
# virtio-serial port, vsock (Firecracker's agent channel), virtio-net for
# later networking, and the virtio RNG.  /init loads a module only if a
# virtio device with its id is present (each insmod costs ~20-50 ms under
# TCG); dependencies come first, resolved from modules.dep.
INITRD_MODULES="virtio_mmio:- virtio_blk:0x0002 virtio_console:0x0003 vmw_vsock_virtio_transport:0x0013 virtio_net:0x0001 virtio-rng:0x0004"
# Module subtrees copied into the root fs for modprobe in the guest.
ROOTFS_MODULE_DIRS="drivers/virtio drivers/block drivers/char drivers/net net fs lib crypto arch/x86/crypto"
# Every VM disk is a copy of the image, so what no sandbox needs stays out:
# hardware NIC drivers and the network/cluster file systems.
ROOTFS_MODULE_PRUNE="drivers/net/ethernet drivers/net/wwan drivers/net/hyperv drivers/net/vmxnet3 drivers/net/xen-netback fs/nfs fs/nfsd fs/nfs_common fs/lockd fs/smb fs/xfs fs/btrfs fs/ocfs2 fs/ceph fs/gfs2 fs/dlm fs/afs fs/coda fs/orangefs fs/jfs fs/reiserfs fs/nilfs2 fs/f2fs fs/ubifs net/sunrpc net/ceph net/rds"
# The Debian root: suite, variant and what a sandbox user expects to find.
# busybox-static provides PID 1 (busybox init, see scripts/guest/debian/
# etc/inittab); kmod makes modprobe work; locales gives en_US.UTF-8 (C.UTF-8
# is built into Debian's libc and is the default LANG).
DEBIAN_SUITE=bookworm
DEBIAN_VARIANT=minbase
DEBIAN_PACKAGES="busybox-static bash coreutils ca-certificates curl procps iproute2 iputils-ping less locales kmod netbase python3 xz-utils"
# Every VM disk starts as a copy of the image: no manuals, info pages or
# translations (as in Debian's container images).  The exclusions stay in
# the guest's /etc/dpkg/dpkg.cfg.d, so packages installed later follow them.
DEBIAN_DPKG_EXCLUDES="path-exclude=/usr/share/man/* path-exclude=/usr/share/info/* path-exclude=/usr/share/doc/* path-include=/usr/share/doc/*/copyright path-exclude=/usr/share/locale/* path-include=/usr/share/locale/locale.alias"
# Kernel command line the image is meant for; the VMM adds
# tsc_early_khz=<host TSC kHz> (never hard-coded, see QEMU-NOTES.md).
CMDLINE="console=ttyS0 quiet panic=-1 8250.nr_uarts=1 cryptomgr.notests mitigations=off audit=0 nokaslr random.trust_cpu=on"

usage() {
    cat <<EOF
Usage: scripts/build-guest.sh [--small] [--out DIR] [--agent PATH] [--rootfs-size SIZE]

Build the noid guest (vmlinux, vmlinuz, initrd.cpio, rootfs.ext4, build.json)
from Debian packages and the static noid-agent.  By default the root file
system is Debian $DEBIAN_SUITE ($DEBIAN_VARIANT + $DEBIAN_PACKAGES),
made with mmdebstrap from the Debian archive (needs root); --small makes the
busybox root instead.  The kernel is Debian's $KERNEL_META in both.

  --small             the small busybox root file system (fast tests)
  --out DIR           output directory (default: \$NOID_GUEST_DIR, else
                      \${XDG_CACHE_HOME:-\$HOME/.cache}/noid/guest, or
                      .../noid/guest-small with --small)
  --agent PATH        the static noid-agent binary
                      (default: build/agent/noid-agent in the repository)
  --rootfs-size SIZE  size of the sparse rootfs.ext4, e.g. 2G, 512M
                      (default 2G; 1G with --small)
  -h, --help          show this help

Needs apt-get, dpkg-deb, lz4, cpio and mkfs.ext4 (Debian: apt, dpkg, lz4,
cpio, e2fsprogs), and mmdebstrap for the Debian root. Steps whose inputs did
not change are skipped; the Debian base is downloaded again only when its
package list changes (delete work/debian-base.tar to refresh it).
EOF
}

log() { printf 'build-guest: %s\n' "$*"; }
die() {
    printf 'build-guest: error: %s\n' "$*" >&2
    exit 1
}

out=
agent=
rootfs_size=
flavour=debian
while [ $# -gt 0 ]; do
    case "$1" in
    --out) [ $# -ge 2 ] || die "--out needs a directory"; out=$2; shift 2 ;;
    --out=*) out=${1#*=}; shift ;;
    --agent) [ $# -ge 2 ] || die "--agent needs a path"; agent=$2; shift 2 ;;
    --agent=*) agent=${1#*=}; shift ;;
    --rootfs-size) [ $# -ge 2 ] || die "--rootfs-size needs a size"; rootfs_size=$2; shift 2 ;;
    --rootfs-size=*) rootfs_size=${1#*=}; shift ;;
    --small) flavour=small; shift ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
if [ $flavour = small ]; then
    out=${out:-${NOID_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest-small}}
    rootfs_size=${rootfs_size:-1G}
else
    out=${out:-${NOID_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/noid/guest}}
    rootfs_size=${rootfs_size:-2G}
fi
agent=${agent:-$REPO_ROOT/build/agent/noid-agent}
[[ $rootfs_size =~ ^[0-9]+[KMG]?$ ]] || die "bad --rootfs-size '$rootfs_size' (want e.g. 1G or 512M)"

need_tool() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' not found: install the Debian package '$2' (scripts/deps.sh installs it)"
}
need_tool apt-get apt
need_tool dpkg-deb dpkg
need_tool lz4 lz4
need_tool cpio cpio
need_tool mkfs.ext4 e2fsprogs
need_tool sha256sum coreutils
need_tool od coreutils
need_tool dd coreutils
if [ $flavour = debian ]; then
    need_tool mmdebstrap mmdebstrap
    [ "$(id -u)" = 0 ] || die "the Debian guest needs root (mmdebstrap, and the files' owners in the image); run as root, or build the busybox guest with --small"
fi

[ -f "$agent" ] || die "agent binary '$agent' not found: build it first (meson setup build && ninja -C build) or pass --agent PATH"
agent=$(cd "$(dirname "$agent")" && pwd)/$(basename "$agent")

# ---- helpers ----

le_u32() { od -An -tu4 --endian=little -j "$2" -N4 "$1" | tr -d ' '; }
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
hexbytes() { od -An -tx1 -j "$2" -N "$3" "$1" | tr -d ' \n'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# Does the ELF file have a PT_INTERP program header (is it dynamic)?
elf_is_dynamic() {
    local f=$1 phoff phentsize phnum i
    [ "$(hexbytes "$f" 0 4)" = 7f454c46 ] || return 2
    phoff=$(od -An -tu8 --endian=little -j 32 -N8 "$f" | tr -d ' ')
    phentsize=$(od -An -tu2 --endian=little -j 54 -N2 "$f" | tr -d ' ')
    phnum=$(od -An -tu2 --endian=little -j 56 -N2 "$f" | tr -d ' ')
    for ((i = 0; i < phnum; i++)); do
        [ "$(le_u32 "$f" $((phoff + i * phentsize)))" = 3 ] && return 0
    done
    return 1
}

# ---- checks and output directory ----

rc=0
elf_is_dynamic "$agent" || rc=$?
case $rc in
0) die "$agent is dynamically linked; the guest needs the static build (musl-gcc or -static)" ;;
2) die "$agent is not an ELF executable" ;;
esac

out=$(realpath -m "$out")
case "$out" in
"$REPO_ROOT" | "$REPO_ROOT"/*) die "output directory '$out' is inside the source tree; pick another (--out)" ;;
esac
debs=$out/debs
work=$out/work
mkdir -p "$debs" "$work" "$out/.stamps"

# Identity of input files for stamps: name, size and mtime (package files),
# or content (small files we write ourselves).
id_meta() { stat -c '%n %s %Y' "$@"; }
id_content() { sha256sum "$@"; }

# step_needed NAME KEY OUTPUT... : true if NAME must run (stamp differs or an
# output is missing).  step_done NAME KEY records success.
step_needed() {
    local name=$1 key=$2 o
    shift 2
    for o in "$@"; do
        [ -e "$o" ] || return 0
    done
    [ "$(cat "$out/.stamps/$name" 2>/dev/null)" != "$key" ]
}
step_done() { printf '%s\n' "$2" >"$out/.stamps/$1"; }
keyof() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }

# Newest of the given .deb files by package version.
newest_deb() {
    local best="" bestv="" f v
    for f in "$@"; do
        [ -f "$f" ] || continue
        v=$(dpkg-deb -f "$f" Version)
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$bestv"; then
            best=$f
            bestv=$v
        fi
    done
    printf '%s' "$best"
}

apt_download() {
    local opts=(-q)
    # as root apt drops to the _apt user, which cannot write to $debs
    [ "$(id -u)" = 0 ] && opts+=(-o APT::Sandbox::User=root)
    (cd "$debs" && apt-get "${opts[@]}" download "$@") >"$work/apt.log" 2>&1
}

script_key=$(id_content "$SELF" | cut -d' ' -f1)
guest_key=$(cd "$GUEST_DIR" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)

# ---- 1. packages ----

if apt_download "$KERNEL_META" "$BUSYBOX_PKG"; then
    online=1
else
    online=0
fi
meta_deb=$(newest_deb "$debs/${KERNEL_META}"_*.deb)
bb_deb=$(newest_deb "$debs/${BUSYBOX_PKG}"_*.deb)
if [ -z "$meta_deb" ] || [ -z "$bb_deb" ]; then
    die "apt-get download $KERNEL_META $BUSYBOX_PKG failed (run 'apt-get update'?):
$(tail -5 "$work/apt.log")"
fi
[ $online = 1 ] || log "warning: apt-get download failed, using the cached .debs in $debs"

# The meta package depends on exactly one real image package.
dep=$(dpkg-deb -f "$meta_deb" Depends)
kpkg=${dep%% *}
kpkg=${kpkg%,}
[[ $kpkg == linux-image-* ]] || die "unexpected dependency of $KERNEL_META: '$dep'"
kpkg_ver=
if [[ $dep =~ \(=\ ([^\)]+)\) ]]; then
    kpkg_ver=${BASH_REMATCH[1]}
fi
kernel_deb=
for f in "$debs/${kpkg}"_*.deb; do
    [ -f "$f" ] || continue
    if [ -z "$kpkg_ver" ] || [ "$(dpkg-deb -f "$f" Version)" = "$kpkg_ver" ]; then
        kernel_deb=$f
    fi
done
if [ -z "$kernel_deb" ]; then
    apt_download "$kpkg${kpkg_ver:+=$kpkg_ver}" ||
        die "apt-get download $kpkg failed:
$(tail -5 "$work/apt.log")"
    kernel_deb=$(newest_deb "$debs/${kpkg}"_*.deb)
    [ -n "$kernel_deb" ] || die "apt-get download $kpkg left no .deb in $debs"
fi
kernel_pkg_ver=$(dpkg-deb -f "$kernel_deb" Version)
bb_pkg_ver=$(dpkg-deb -f "$bb_deb" Version)
log "packages: $kpkg $kernel_pkg_ver, $BUSYBOX_PKG $bb_pkg_ver"

# ---- 2. extract ----

kdir=$work/kernel
bbdir=$work/busybox
key=$(keyof "$(id_meta "$kernel_deb" "$bb_deb")" "$script_key")
if step_needed extract "$key" "$kdir/boot" "$bbdir/bin/busybox"; then
    rm -rf "$kdir" "$bbdir"
    dpkg-deb -x "$kernel_deb" "$kdir"
    dpkg-deb -x "$bb_deb" "$bbdir"
    step_done extract "$key"
    log "extract: unpacked $(basename "$kernel_deb") and $(basename "$bb_deb")"
else
    log "extract: up to date"
fi
krel=$(basename "$(find "$kdir/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -1)")
{ [ -n "$krel" ] && [ -f "$kdir/boot/vmlinuz-$krel" ]; } || die "no kernel found in $kernel_deb"
bb=$bbdir/bin/busybox
[ -x "$bb" ] || die "no busybox in $bb_deb"
extract_key=$key

# ---- 3. vmlinux ----

key=$(keyof "$extract_key" "$script_key")
if step_needed vmlinux "$key" "$out/vmlinux" "$out/vmlinuz"; then
    z=$kdir/boot/vmlinuz-$krel
    [ "$(hexbytes "$z" $((0x202)) 4)" = 48647253 ] || die "$z is not a bzImage (no HdrS)"
    setup_sects=$(u8 "$z" $((0x1f1)))
    [ "$setup_sects" = 0 ] && setup_sects=4
    poff=$(((setup_sects + 1) * 512 + $(le_u32 "$z" $((0x248)))))
    plen=$(le_u32 "$z" $((0x24c)))
    magic=$(hexbytes "$z" "$poff" 4)
    case "$magic" in
    02214c18) ;; # LZ4 legacy frame, what Debian's kernels use
    1f8b*) die "kernel payload is gzip, not LZ4 (this script only handles LZ4)" ;;
    fd377a58) die "kernel payload is xz, not LZ4 (this script only handles LZ4)" ;;
    28b52ffd) die "kernel payload is zstd, not LZ4 (this script only handles LZ4)" ;;
    *) die "unknown kernel payload magic $magic at offset $poff" ;;
    esac
    # The payload ends with the 4-byte uncompressed size, which lz4 would
    # take for another block: cut it and check the size against it.
    size=$(le_u32 "$z" $((poff + plen - 4)))
    dd if="$z" bs=1M iflag=skip_bytes,count_bytes skip="$poff" count=$((plen - 4)) status=none |
        lz4 -dc >"$out/vmlinux.tmp"
    [ "$(hexbytes "$out/vmlinux.tmp" 0 4)" = 7f454c46 ] || die "decompressed kernel is not an ELF file"
    [ "$(stat -c %s "$out/vmlinux.tmp")" = "$size" ] || die "decompressed kernel is $(stat -c %s "$out/vmlinux.tmp") bytes, header says $size"
    mv "$out/vmlinux.tmp" "$out/vmlinux"
    cp "$z" "$out/vmlinuz.tmp" && mv "$out/vmlinuz.tmp" "$out/vmlinuz"
    step_done vmlinux "$key"
    log "vmlinux: $krel, ELF $((size / 1024 / 1024)) MiB from a $((plen / 1024 / 1024)) MiB LZ4 payload"
else
    log "vmlinux: up to date"
fi

# ---- 4. modules (staged for the root fs, with modules.dep) ----

mstage=$work/modules
mdir=$mstage/lib/modules/$krel
key=$(keyof "$extract_key" "$script_key")
if step_needed modules "$key" "$mdir/modules.dep"; then
    rm -rf "$mstage"
    mkdir -p "$mdir"
    prune=()
    for p in $ROOTFS_MODULE_PRUNE; do
        prune+=(-path "kernel/$p" -prune -o)
    done
    dirs=()
    for d in $ROOTFS_MODULE_DIRS; do
        [ -d "$kdir/lib/modules/$krel/kernel/$d" ] && dirs+=("kernel/$d")
    done
    (cd "$kdir/lib/modules/$krel" &&
        find "${dirs[@]}" "${prune[@]}" -name '*.ko*' -print | cpio -pdm --quiet "$mdir")
    # busybox insmod/modprobe want plain .ko: unpack compressed modules here
    while IFS= read -r -d '' m; do
        case "$m" in
        *.ko.xz) need_tool xz xz-utils; xz -dc "$m" >"${m%.xz}" ;;
        *.ko.zst) need_tool zstd zstd; zstd -qdc "$m" >"${m%.zst}" ;;
        *.ko.gz) gzip -dc "$m" >"${m%.gz}" ;;
        esac
        rm -f "$m"
    done < <(find "$mdir" \( -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz' \) -print0)
    for f in modules.builtin modules.builtin.modinfo modules.order; do
        [ -f "$kdir/lib/modules/$krel/$f" ] && cp "$kdir/lib/modules/$krel/$f" "$mdir/"
    done
    "$bb" depmod -b "$mstage" "$krel"
    step_done modules "$key"
    log "modules: $(find "$mdir" -name '*.ko' | wc -l) modules staged, modules.dep made"
else
    log "modules: up to date"
fi
modules_key=$key

# mod_resolve NAME TAG: append to mod_order "TAG path" for NAME and the
# modules it needs (relative to $mdir), dependencies first; a module already
# listed keeps its first tag.
declare -A mod_seen=()
mod_order=()
mod_path() {
    local p
    p=$(grep -E "(^|/)$1\.ko:" "$mdir/modules.dep" | head -1 | cut -d: -f1)
    printf '%s' "$p"
}
mod_resolve() {
    local name=$1 tag=$2 path deps d
    path=$(mod_path "$name")
    [ -n "$path" ] || {
        grep -qE "(^|/)$name\.ko\$" "$mdir/modules.builtin" 2>/dev/null && return 0
        die "module $name not found in $krel"
    }
    [ -n "${mod_seen[$path]:-}" ] && return 0
    mod_seen[$path]=1
    deps=$(grep -E "^$path:" "$mdir/modules.dep" | cut -d: -f2-)
    for d in $deps; do
        d=$(basename "$d" .ko)
        mod_resolve "$d" "$tag"
    done
    mod_order+=("$tag $path")
}

# ---- 5. initrd.cpio ----

key=$(keyof "$extract_key" "$modules_key" "$guest_key" "$script_key" "$INITRD_MODULES")
if step_needed initrd "$key" "$out/initrd.cpio" "$work/initrd/etc/modules"; then
    for m in $INITRD_MODULES; do
        mod_resolve "${m%%:*}" "${m#*:}"
    done
    istage=$work/initrd
    rm -rf "$istage"
    mkdir -p "$istage"/{bin,dev,proc,sys,newroot,etc,lib/modules}
    cp "$bb" "$istage/bin/busybox"
    for a in sh mount insmod switch_root usleep cat echo; do
        ln -s busybox "$istage/bin/$a"
    done
    install -m 0755 "$GUEST_DIR/initramfs-init" "$istage/init"
    {
        echo "# virtio-device-id (- = always) and module, in load order"
        for e in "${mod_order[@]}"; do
            p=${e#* }
            cp "$mdir/$p" "$istage/lib/modules/"
            echo "${e%% *} $(basename "$p" .ko)"
        done
    } >"$istage/etc/modules"
    (cd "$istage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out/initrd.cpio.tmp"
    mv "$out/initrd.cpio.tmp" "$out/initrd.cpio"
    step_done initrd "$key"
    log "initrd.cpio: $(($(stat -c %s "$out/initrd.cpio") / 1024)) KiB, modules: $(grep -v '^#' "$istage/etc/modules" | cut -d' ' -f2 | tr '\n' ' ')"
else
    log "initrd.cpio: up to date"
fi

# ---- 6. the Debian base (mmdebstrap; skipped with --small) ----

# Its key is the mmdebstrap command line and version only: the download is
# the slow part, and nothing else this script does changes what it fetches.
debian_base=$work/debian-base.tar
debian_key=
if [ $flavour = debian ]; then
    # merged /usr by directory links, as debootstrap makes it: the usrmerge
    # package would do the same at the price of perl (~50 MiB) in every VM
    mmdebstrap_args=(--variant="$DEBIAN_VARIANT" --mode=root --format=tar
        --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
        --include="$(printf '%s' "$DEBIAN_PACKAGES" | tr ' ' ,)")
    for o in $DEBIAN_DPKG_EXCLUDES; do
        mmdebstrap_args+=(--dpkgopt="$o")
    done
    # en_US.UTF-8 for those who ask for it; C.UTF-8 is the default
    mmdebstrap_args+=(--customize-hook='echo "en_US.UTF-8 UTF-8" >"$1/etc/locale.gen" && chroot "$1" locale-gen >/dev/null'
        --customize-hook='echo LANG=C.UTF-8 >"$1/etc/default/locale"'
        "$DEBIAN_SUITE")
    debian_key=$(keyof "${mmdebstrap_args[@]}" "$(mmdebstrap --version)")
    if step_needed debian-base "$debian_key" "$debian_base"; then
        log "debian-base: mmdebstrap $DEBIAN_SUITE ($DEBIAN_VARIANT + $DEBIAN_PACKAGES): downloading and unpacking, a few minutes"
        rm -f "$debian_base.tmp"
        # mmdebstrap prints its steps (I: ...) and progress on stderr
        mmdebstrap "${mmdebstrap_args[@]}" "$debian_base.tmp" ||
            die "mmdebstrap failed (see above); is the Debian archive reachable?"
        mv "$debian_base.tmp" "$debian_base"
        step_done debian-base "$debian_key"
        log "debian-base: $(($(stat -c %s "$debian_base") / 1024 / 1024)) MiB tarball"
    else
        log "debian-base: up to date"
    fi
fi

# ---- 7. rootfs.ext4 ----

# The small root: busybox and its applet links, our /etc.
stage_small_root() {
    local rstage=$1
    (
        cd "$rstage"
        mkdir -p bin sbin usr/bin usr/sbin usr/local/bin usr/local/sbin etc dev proc sys run \
            lib/modules mnt home var/log var/lib var/tmp root tmp
        chmod 1777 tmp var/tmp
        chmod 0700 root
    )
    cp "$bb" "$rstage/bin/busybox"
    "$bb" --list-full | while IFS= read -r a; do
        case "$a" in
        bin/busybox | linuxrc | "") continue ;;
        esac
        mkdir -p "$rstage/$(dirname "$a")"
        ln -sf /bin/busybox "$rstage/$a"
    done
    cp -a "$GUEST_DIR/common/." "$GUEST_DIR/small/." "$rstage/"
    chmod 0640 "$rstage/etc/shadow"
    cp -a "$mdir" "$rstage/lib/modules/"
}

# The Debian root: the mmdebstrap tarball, our /etc on top, busybox init as
# /sbin/init, the modules with kmod's index.
stage_debian_root() {
    local rstage=$1 f
    tar -C "$rstage" --numeric-owner -xpf "$debian_base"
    # our files replace Debian's of the same name (a link may replace a file)
    (cd "$GUEST_DIR/common" && find . ! -type d) | while IFS= read -r f; do
        rm -f "$rstage/$f"
    done
    cp -a "$GUEST_DIR/common/." "$GUEST_DIR/debian/." "$rstage/"
    # merged /usr: /sbin is a link to usr/sbin, busybox is /usr/bin/busybox
    [ -x "$rstage/usr/bin/busybox" ] || die "busybox-static is missing from the Debian base"
    ln -sf ../bin/busybox "$rstage/usr/sbin/init"
    mkdir -p "$rstage/usr/lib/modules"
    cp -a "$mdir" "$rstage/usr/lib/modules/"
    chroot "$rstage" /sbin/depmod -a "$krel" || die "depmod in the Debian root failed"
}

agent_sha=$(sha "$agent")
key=$(keyof "$flavour" "$debian_key" "$extract_key" "$modules_key" "$guest_key" "$script_key" "$agent_sha" "$rootfs_size")
if step_needed rootfs "$key" "$out/rootfs.ext4"; then
    rstage=$work/rootfs
    rm -rf "$rstage"
    mkdir -p "$rstage"
    if [ $flavour = small ]; then
        stage_small_root "$rstage"
        # 16k inodes are plenty for busybox and keep the image small
        mkfs_opts=(-N 16384)
    else
        stage_debian_root "$rstage"
        mkfs_opts=()
    fi
    install -m 0755 "$agent" "$rstage/usr/sbin/noid-agent"
    chmod 0755 "$rstage/etc/init.d/rcS"
    cat >"$rstage/etc/noid-guest-release" <<EOF
flavour=$flavour
kernel=$krel
kernel_package=$kpkg $kernel_pkg_ver
busybox_package=$BUSYBOX_PKG $bb_pkg_ver
agent_sha256=$agent_sha
EOF
    rm -f "$out/rootfs.ext4.tmp"
    truncate -s "$rootfs_size" "$out/rootfs.ext4.tmp"
    # -E root_owner: the root directory belongs to root even when the
    # builder is not root (files keep the builder's ids; see below).
    # A 4 MiB journal keeps the data part of the sparse image small: every
    # VM disk (and checkpoint) copies it.
    mkfs.ext4 -q -F -L noid-root -m 0 -J size=4 "${mkfs_opts[@]}" -E root_owner=0:0 \
        -d "$rstage" "$out/rootfs.ext4.tmp" ||
        die "mkfs.ext4 -d failed (e2fsprogs >= 1.43 needed)"
    if [ "$(id -u)" != 0 ]; then
        need_tool debugfs e2fsprogs
        (cd "$rstage" && find . -mindepth 1 | sed 's|^\.||' |
            while IFS= read -r p; do
                printf 'sif "%s" uid 0\nsif "%s" gid 0\n' "$p" "$p"
            done) | debugfs -w -f - "$out/rootfs.ext4.tmp" >/dev/null 2>&1
    fi
    mv "$out/rootfs.ext4.tmp" "$out/rootfs.ext4"
    rm -rf "$rstage" # all of it is in the image now
    step_done rootfs "$key"
    used=$(du -k "$out/rootfs.ext4" | cut -f1)
    log "rootfs.ext4: $flavour, $rootfs_size sparse, $((used / 1024)) MiB used, agent $agent"
else
    log "rootfs.ext4: up to date"
fi

# ---- 8. build.json ----

key=$(keyof "$(id_meta "$out/vmlinux" "$out/vmlinuz" "$out/initrd.cpio" "$out/rootfs.ext4")" \
    "$(cat "$out/.stamps/vmlinux" "$out/.stamps/initrd" "$out/.stamps/rootfs")" "$script_key")
if step_needed manifest "$key" "$out/build.json"; then
    cat >"$out/build.json.tmp" <<EOF
{
  "flavour": "$flavour",
  "kernel_release": "$krel",
  "kernel_package": "$kpkg",
  "kernel_package_version": "$kernel_pkg_ver",
  "busybox_package_version": "$bb_pkg_ver",
  "agent_sha256": "$agent_sha",
  "rootfs_size": "$rootfs_size",
  "initrd_modules": "$(grep -v '^#' "$work/initrd/etc/modules" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')",
  "cmdline": "$CMDLINE",
  "built_at": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "files": {
    "vmlinux": "$(sha "$out/vmlinux")",
    "vmlinuz": "$(sha "$out/vmlinuz")",
    "initrd.cpio": "$(sha "$out/initrd.cpio")",
    "rootfs.ext4": "$(sha "$out/rootfs.ext4")"
  }
}
EOF
    mv "$out/build.json.tmp" "$out/build.json"
    step_done manifest "$key"
    log "build.json: written"
else
    log "build.json: up to date"
fi
log "done: $out"
