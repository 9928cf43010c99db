#!/usr/bin/env bash
# Installs and builds everything the real-kernel harness needs, from Debian's registry only:
#   kernel/setup.sh [6.1|6.12|all]        (default: all)
#   FTSIM_KERNEL_SOURCES=1 kernel/setup.sh  also installs the pinned linux-source package
#                                           (/usr/src/linux-source-*.tar.xz: what the presets cite)
# Output: $FTSIM_KERNEL_DIR (default: <repo>/target/kernel)/<name>/ with vmlinuz, initrd.cpio.gz,
# and the guest artefacts (livepatch and kprobe modules built against that kernel's headers, the
# BPF loader). Idempotent: finished steps are skipped. Versions come from kernel/pins.env only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
out="${FTSIM_KERNEL_DIR:-$repo/target/kernel}"
. "$here/pins.env"
want="${1:-all}"

die() { echo "ftsim kernel setup: $*" >&2; exit 3; }
log() { echo "ftsim kernel setup: $*" >&2; }

apt_install() {
    # $@: package[=version] ...; names the package the registry no longer has.
    local missing=()
    for p in "$@"; do
        local name="${p%%=*}" ver=""
        [[ "$p" == *=* ]] && ver="${p#*=}"
        if [ -n "$ver" ]; then
            [ "$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null || true)" = "$ver" ] || missing+=("$p")
        else
            dpkg-query -W -f='${Status}' "$name" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
    if [ ! -f /var/lib/apt/periodic/ftsim-updated ] || [ -z "$(find /var/lib/apt/lists -name '*Packages' 2>/dev/null | head -1)" ]; then
        apt-get update -q >&2 || die "apt-get update failed"
        mkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/ftsim-updated
    fi
    for p in "${missing[@]}"; do
        local name="${p%%=*}"
        if [[ "$p" == *=* ]]; then
            apt-cache madison "$name" | awk '{print $3}' | grep -qxF "${p#*=}" ||
                die "the registry no longer has $p (pinned in kernel/pins.env); available: $(apt-cache madison "$name" | awk '{print $3}' | tr '\n' ' ')"
        fi
    done
    log "apt-get install ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        die "apt-get install ${missing[*]} failed"
}

# Host tools.
apt_install $HOST_PACKAGES

setup_kernel() {
    local name="$1" spec="$2"
    read -r release image headers source <<<"$spec"
    local dir="$out/$name"
    mkdir -p "$dir"
    apt_install "$headers"
    if [ "${FTSIM_KERNEL_SOURCES:-0}" = 1 ]; then apt_install "$source"; fi
    [ -d "/usr/src/linux-headers-$release" ] || die "headers for $release missing after installing $headers"

    # The image: downloaded and unpacked into the cache, never installed on the host.
    if [ ! -f "$dir/vmlinuz" ]; then
        local dl="$dir/deb"
        rm -rf "$dl" && mkdir -p "$dl"
        local pkg="${image%%=*}" ver="${image#*=}"
        apt-cache madison "$pkg" | awk '{print $3}' | grep -qxF "$ver" ||
            die "the registry no longer has $image (pinned in kernel/pins.env)"
        (cd "$dl" && apt-get download -q "$pkg=$ver" >&2) || die "apt-get download $image failed"
        dpkg-deb -x "$dl"/*.deb "$dl/root"
        cp "$dl/root/boot/vmlinuz-$release" "$dir/vmlinuz.tmp"
        cp "$dl/root/boot/config-$release" "$dir/config"
        # the virtio and 9p modules the initramfs loads (6.1: virtio too; 6.12: .ko.xz)
        mkdir -p "$dir/mods"
        local order=""
        for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci netfs fscache 9pnet 9pnet_virtio 9p; do
            local f
            f=$(find "$dl/root/lib/modules/$release" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
            [ -n "$f" ] || continue
            case "$f" in
                *.xz) xz -dc "$f" > "$dir/mods/$m.ko" ;;
                *) cp "$f" "$dir/mods/$m.ko" ;;
            esac
            order="$order $m"
        done
        echo "$order" > "$dir/mods/order"
        rm -rf "$dl"
        mv "$dir/vmlinuz.tmp" "$dir/vmlinuz"
    fi

    # The initramfs: busybox, the init, the modules.
    if [ ! -f "$dir/initrd.cpio.gz" ] || [ "$here/guest/init" -nt "$dir/initrd.cpio.gz" ]; then
        local ird="$dir/initrd"
        rm -rf "$ird" && mkdir -p "$ird"/{bin,proc,sys,dev,modules,host,tmp}
        cp /bin/busybox "$ird/bin/busybox"
        cp "$here/guest/init" "$ird/init"
        cp "$dir/mods/"*.ko "$ird/modules/" 2>/dev/null || true
        tr ' ' '\n' < "$dir/mods/order" | grep . > "$ird/modules/order" || true
        (cd "$ird" && find . | cpio -o -H newc 2>/dev/null | gzip -1) > "$dir/initrd.cpio.gz.tmp"
        mv "$dir/initrd.cpio.gz.tmp" "$dir/initrd.cpio.gz"
        rm -rf "$ird"
    fi

    # The guest artefacts: modules against this kernel's headers, the loader.
    make -s -C "$here/guest" OUT="$dir/guest" KDIR="/usr/src/linux-headers-$release" >&2 ||
        die "building the guest modules for $release failed (make -C kernel/guest KDIR=/usr/src/linux-headers-$release)"
    echo "$release" > "$dir/release"
    log "$name ready in $dir"
}

case "$want" in
    6.1) setup_kernel 6.1 "$KERNEL_6_1" ;;
    6.12) setup_kernel 6.12 "$KERNEL_6_12" ;;
    all) setup_kernel 6.1 "$KERNEL_6_1"; setup_kernel 6.12 "$KERNEL_6_12" ;;
    *) echo "usage: kernel/setup.sh [6.1|6.12|all]" >&2; exit 2 ;;
esac
