#!/usr/bin/env bash
# Build the Ahoy SD-card image: the whole recipe, top to bottom.
#
#   image/build.sh [arm64|amd64] [release|vmtest]
#
#   arm64 release  the Raspberry Pi image: out/ahoy-<version>-arm64.img.xz, .sha256, .bmap,
#                  and the update image (boot and root only): out/ahoy-<version>-arm64-update.img.xz
#   amd64 vmtest   the same system for a PC VM plus the test agent: out/vm/ahoy-vmtest-amd64.img,
#                  out/vm/vmlinuz, out/vm/initrd.img (booted by image/vmtest/run.py)
#
# Stages:
#   1 base root   mmdebstrap of Debian $SUITE (trixie) with every package below; initramfs made once at
#                 the end. Cached in cache/base-*.tar, keyed by the package list and files/base.
#   2 system      the Ahoy code, its Python venv (wheels from PyPI), files/root (units, config),
#                 users and enabled services.
#   3 partitions  boot (FAT), root (ext4, read-only at run time), data (ext4, AHOYDATA) built from
#                 folders with mkfs.vfat/mtools and mke2fs -d: no loop devices, no mounts.
#   4 output      xz, sha256, bmap; the update image (boot and root, no data partition).
#
# Needs root (ownership in the root file system) and, for arm64, qemu-user via binfmt_misc.
# AHOY_CHECK_TOOLS_ONLY=1 only checks that every tool the build runs is installed.
# The whole script is one block, so bash reads it completely before running it: editing
# this file during a build does not change the running build.
{
set -euo pipefail

ARCH=${1:-arm64}
VARIANT=${2:-release}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${AHOY_IMAGE_CACHE:-$HERE/cache}
OUT=${AHOY_IMAGE_OUT:-$HERE/out}
MIRROR=${AHOY_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${AHOY_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Debian 13 "trixie", the current stable (see README.md for its security support).
SUITE=trixie
# xz -6 takes over 15 minutes on two busy cores; -3 a fraction of that for a slightly bigger file.
XZ_LEVEL=${AHOY_XZ_LEVEL:-3}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/pyproject.toml")
START=$(date +%s)

# ---------------------------------------------------------------- the packages on the card
# Everything the box runs, from Debian trixie main and non-free-firmware only.
PACKAGES=(
  systemd-sysv udev dbus kmod procps netbase  # init and basics
  initramfs-tools zstd                        # the initramfs (read-only root with a RAM overlay)
  e2fsprogs fdisk dosfstools                  # grow and check the data and boot partitions
  iproute2 iw rfkill wireless-regdb           # the Wi-Fi radio and its regulatory rules
  hostapd dnsmasq nftables coturn             # access point, DHCP+DNS, captive redirect, STUN/TURN
  nats-server                                 # several boxes as one site (only with site_name)
  iputils-arping batctl wpasupplicant         # a site's backbone: ARP probes; the Wi-Fi mesh (batman-adv)
  python3 python3-venv                        # the Ahoy service (its venv comes from PyPI wheels)
  fake-hwclock                                # no RTC on a Pi: keep the last time on /data
  openssh-server                              # off unless ahoy.txt has ssh_authorized_key
)
case "$ARCH" in
  arm64) PACKAGES+=(linux-image-arm64 raspi-firmware firmware-brcm80211)
         PIP_PLATFORMS=(manylinux_2_41_aarch64 manylinux_2_39_aarch64 manylinux_2_36_aarch64 manylinux_2_34_aarch64 manylinux_2_28_aarch64
                        manylinux_2_17_aarch64 manylinux2014_aarch64)
         # requirements.txt's aarch64 marker (lgpio) is evaluated on the host, so pip skips
         # lgpio; PyPI has no lgpio wheel for cp313, so it is compiled below (lgpio_module).
         PIP_EXTRA=() ;;
  amd64) PACKAGES+=(linux-image-amd64)
         PIP_PLATFORMS=(manylinux_2_41_x86_64 manylinux_2_39_x86_64 manylinux_2_36_x86_64 manylinux_2_34_x86_64 manylinux_2_28_x86_64
                        manylinux_2_17_x86_64 manylinux2014_x86_64)
         PIP_EXTRA=() ;;
  *) echo "error: architecture must be arm64 or amd64, not $ARCH" >&2; exit 2 ;;
esac
case "$VARIANT" in
  release) ;;
  # The VM test plays the phones inside the VM: stations (wpa_supplicant) and a DHCP client.
  vmtest) PACKAGES+=(wpasupplicant busybox)
          PIP_EXTRA+=(websockets) ;;  # the simulated phones' WebSocket client
  *) echo "error: variant must be release or vmtest, not $VARIANT" >&2; exit 2 ;;
esac

# ---------------------------------------------------------------- helpers
stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
die() { echo "error: $*" >&2; exit 1; }

MISSING=()
need() {  # need COMMAND PACKAGE: remember PACKAGE when COMMAND is absent
  command -v "$1" >/dev/null 2>&1 || MISSING+=("$2")
}

WORK=""
cleanup() {
  local status=$?
  set +e
  # Stage 2 mounts nothing and the image is assembled without loop devices, so only the
  # scratch folder (and anything mmdebstrap left mounted below it) needs to go.
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    grep -o " $WORK[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf --one-file-system "$WORK"
  fi
  [ $status -eq 0 ] || echo "build failed after $(( $(date +%s) - START )) s (exit $status)" >&2
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- 0 checks
stage "checks: $ARCH $VARIANT, Ahoy $VERSION"
[ "$(id -u)" -eq 0 ] || die "the image build needs root (file ownership in the root file system): run 'sudo make image'"
need mmdebstrap mmdebstrap
need mke2fs e2fsprogs
need mkfs.vfat dosfstools
need mcopy mtools
need sfdisk fdisk
need xz xz-utils
need python3 python3
need git git
python3 -m pip --version >/dev/null 2>&1 || MISSING+=(python3-pip)
if [ "$VARIANT" = release ]; then need bmaptool bmap-tools; fi
# lgpio (gpiozero's pin factory on the Pi) has no wheel for trixie's Python: built from its
# source with SWIG and a compiler for arm64.
if [ "$ARCH" = arm64 ]; then
  need swig swig
  # The compiler alone is not enough: without arm64's C headers (only recommended, so
  # absent after --no-install-recommends) it stops at <bits/libc-header-start.h>.
  compiles() { printf '#include <stdio.h>\n#include <sys/types.h>\n' | "$1" -fsyntax-only -x c - >/dev/null 2>&1; }
  # A native build is not what README's (amd64) line is for: on one line and quoted, so
  # the recipe test (tests/image) does not ask the README for these two.
  if [ "$(uname -m)" = aarch64 ]; then
    need gcc gcc; compiles gcc || MISSING+=("libc6-dev")
  else
    need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
    compiles aarch64-linux-gnu-gcc || MISSING+=(libc6-dev-arm64-cross)
  fi
fi
# mmdebstrap stops at once without arch-test when the target is a foreign architecture.
if [ "$ARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  need arch-test arch-test
  need qemu-aarch64-static qemu-user-static
  need update-binfmts binfmt-support
fi
[ ${#MISSING[@]} -eq 0 ] || die "missing tools; install them all with:
    apt-get install ${MISSING[*]}"
# AHOY_CHECK_TOOLS_ONLY=1: stop here (check_apt_line.py runs this in a clean root).
if [ "${AHOY_CHECK_TOOLS_ONLY:-0}" = 1 ]; then echo "every build tool is installed"; exit 0; fi
if [ "$ARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  [ -e /proc/sys/fs/binfmt_misc/status ] || die "binfmt_misc is not mounted, so arm64 programs cannot run here. Fix:
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    update-binfmts --enable qemu-aarch64"
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "qemu-aarch64 is not registered with binfmt_misc. Fix:
    apt-get install qemu-user-static binfmt-support
    update-binfmts --enable qemu-aarch64"
  grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 is registered but disabled. Fix:
    update-binfmts --enable qemu-aarch64"
  grep -q '^flags:.*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 || die "qemu-aarch64 is registered without the F flag, so it cannot run inside a chroot. Fix:
    apt-get install qemu-user-static && update-binfmts --enable qemu-aarch64"
fi

mkdir -p "$CACHE/debs" "$CACHE/pip" "$OUT"
WORK=$(mktemp -d "$CACHE/work.XXXXXX")
ROOT="$WORK/root"

# ---------------------------------------------------------------- 1 base root
# The key covers what goes into the base: packages, mirrors and files/base (initramfs setup).
KEY=$( { echo "$SUITE $ARCH ${PACKAGES[*]} $MIRROR $SECURITY_MIRROR"; sed -n '/^base_hooks()/,/^}/p' "$0";
         (cd "$HERE/files/base" && find . -type f | LC_ALL=C sort | xargs sha256sum); } |
       sha256sum | cut -c1-16)
BASE="$CACHE/base-$ARCH-$VARIANT-$KEY.tar"

base_hooks() {
  # Run mkinitramfs once at the end instead of after every package that triggers it: under
  # qemu-user each run takes minutes. The real program is moved aside while apt installs.
  ESSENTIAL_HOOKS=(
    --essential-hook='chroot "$1" dpkg-divert --quiet --local --rename --divert /usr/sbin/update-initramfs.ahoy --add /usr/sbin/update-initramfs'
    --essential-hook='mkdir -p "$1/usr/sbin" && printf "#!/bin/sh\nexit 0\n" > "$1/usr/sbin/update-initramfs" && chmod 755 "$1/usr/sbin/update-initramfs"'
  )
  CUSTOMIZE_HOOKS=(
    # keep the downloaded packages for the next build
    --customize-hook="sync-out /var/cache/apt/archives '$CACHE/debs'"
    --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*_Packages* "$1"/var/lib/apt/lists/*_InRelease'
    # initramfs and raspi-firmware settings (after the packages, so no conffile questions)
    --customize-hook="tar -C '$HERE/files/base' --owner=0 --group=0 -c . | tar -C \"\$1\" -x --no-same-owner --keep-directory-symlink"
    --customize-hook='rm -f "$1/usr/sbin/update-initramfs" && chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs'
    --customize-hook='echo "==> initramfs (once, MODULES=list)"; chroot "$1" update-initramfs -c -k all'
    # raspi-firmware's kernel hook copies the kernel, initrd and device trees to /boot/firmware
    # and writes config.txt and cmdline.txt; run it now that the initrd exists.
    --customize-hook='for k in "$1"/boot/vmlinuz-*; do [ ! -x "$1/etc/kernel/postinst.d/z50-raspi-firmware" ] || chroot "$1" /etc/kernel/postinst.d/z50-raspi-firmware "${k##*/vmlinuz-}"; done'
  )
}

if [ -f "$BASE" ]; then
  stage "1 base root: cached $(basename "$BASE")"
else
  stage "1 base root: mmdebstrap $SUITE $ARCH (${#PACKAGES[@]} packages; initramfs under qemu takes minutes)"
  base_hooks
  mkdir -p "$ROOT"
  mmdebstrap --mode=root --arch="$ARCH" --variant=minbase \
    --components=main,non-free-firmware \
    --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --skip=essential/unlink --skip=download/empty \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
    --setup-hook="sync-in '$CACHE/debs' /var/cache/apt/archives" \
    "${ESSENTIAL_HOOKS[@]}" "${CUSTOMIZE_HOOKS[@]}" \
    "$SUITE" "$ROOT" \
    "deb $MIRROR $SUITE main non-free-firmware" \
    "deb $MIRROR $SUITE-updates main non-free-firmware" \
    "deb $SECURITY_MIRROR $SUITE-security main non-free-firmware"
  stage "1 base root: saving $(basename "$BASE")"
  rm -f "$CACHE"/base-"$ARCH"-"$VARIANT"-*.tar
  tar -C "$ROOT" --xattrs --xattrs-include='*' --numeric-owner -cf "$BASE.part" . && mv "$BASE.part" "$BASE"
  rm -rf --one-file-system "$ROOT"
fi
mkdir -p "$ROOT"
tar -C "$ROOT" --xattrs --xattrs-include='*' --numeric-owner -xf "$BASE"

# ---------------------------------------------------------------- 2 system
stage "2 system: Ahoy code into /opt/ahoy/app"
APP="$ROOT/opt/ahoy/app"
mkdir -p "$APP"
# The working tree (not HEAD) so the image holds what the tests ran against.
(cd "$REPO" && tar --exclude=__pycache__ --exclude='*.pyc' --owner=0 --group=0 -c \
   appliance provisioning webclient pyproject.toml requirements.txt) | tar -C "$APP" -x
(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo unknown) > "$APP/COMMIT"

# The root's own Python (trixie: 3.13) decides which wheels fit.
PYVER=$(cd "$ROOT/usr/lib" && ls -d python3.[0-9]* | sed -n 's/^python\(3\.[0-9]*\)$/\1/p' | sort -V | tail -1)
[ -n "$PYVER" ] || die "no python3.X in the base root"
CPTAG=cp${PYVER/./}
stage "2 system: Python venv with wheels for $ARCH/$CPTAG (cache: cache/pip)"
chroot "$ROOT" python3 -m venv --without-pip /opt/ahoy/venv
SITE="$ROOT/opt/ahoy/venv/lib/python$PYVER/site-packages"
PLATFORM_ARGS=(); for p in "${PIP_PLATFORMS[@]}"; do PLATFORM_ARGS+=(--platform "$p"); done
# A requirement published only as a source archive (nats-py 2.9.0 is pure Python) has no wheel
# for --platform to find: build wheels here once; the install below takes the py3-none-any ones
# and ignores those made for this machine.
WHEELS="$CACHE/wheels"
mkdir -p "$WHEELS"
python3 -m pip wheel --quiet --disable-pip-version-check --no-deps --cache-dir "$CACHE/pip" \
  -w "$WHEELS" -r "$REPO/requirements.txt" 2>&1 |
  { grep -v "is ignored: it is neither a file nor a directory" || true; }
PLATFORM_ARGS+=(--find-links "$WHEELS")
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --root-user-action=ignore --cache-dir "$CACHE/pip" --only-binary=:all: --python-version "$PYVER" \
  --implementation cp --abi "$CPTAG" "${PLATFORM_ARGS[@]}" --target "$SITE" \
  -r "$REPO/requirements.txt" "${PIP_EXTRA[@]}" 2>&1 |
  { grep -v "is ignored: it is neither a file nor a directory" || true; }  # local find-links
lgpio_module() {
  # lgpio's C library and its SWIG wrapper, linked statically into one extension module
  # (as its PyPI wheels are), for the root's Python; cached in cache/lgpio/.
  local version=0.2.2.0
  local out="$CACHE/lgpio/$version-$CPTAG-aarch64" scratch="$WORK/lgpio"
  if [ ! -f "$out/lgpio.py" ]; then
    mkdir -p "$scratch"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: \
      --cache-dir "$CACHE/pip" -d "$scratch" "lgpio==$version" 2>&1 |
      { grep -v "is ignored: it is neither a file nor a directory" || true; }
    tar -C "$scratch" -xzf "$scratch/lgpio-$version.tar.gz"
    # Python's headers for arm64 (pyconfig.h differs per architecture), from the archive.
    python3 - "$MIRROR" "$SUITE" "libpython$PYVER-dev" "$scratch/pydev.deb" <<'PY'
import lzma, re, sys, urllib.request
mirror, suite, package, target = sys.argv[1:]
index = urllib.request.urlopen(f"{mirror}/dists/{suite}/main/binary-arm64/Packages.xz").read()
for stanza in lzma.decompress(index).decode().split("\n\n"):
    if stanza.startswith(f"Package: {package}\n"):
        name = re.search(r"^Filename: (.*)$", stanza, re.M).group(1)
        with open(target, "wb") as out:
            out.write(urllib.request.urlopen(f"{mirror}/{name}").read())
        break
else:
    sys.exit(f"{package} is not in {suite}")
PY
    dpkg-deb -x "$scratch/pydev.deb" "$scratch/sysroot"
    local inc="$scratch/sysroot/usr/include" cc=aarch64-linux-gnu-gcc
    [ "$(uname -m)" != aarch64 ] || cc=gcc
    (cd "$scratch/lgpio-$version" &&
     swig -python -o lgpio_wrap.c lgpio.i &&
     "$cc" -shared -fPIC -O2 -pthread -Isrc -I"$inc" -I"$inc/python$PYVER" \
       -o "_lgpio.cpython-${CPTAG#cp}-aarch64-linux-gnu.so" lgpio_wrap.c src/lg*.c src/rgpiod.c -lrt -ldl)
    mkdir -p "$out.part"
    cp "$scratch/lgpio-$version/lgpio.py" "$scratch/lgpio-$version"/_lgpio.*.so "$out.part/"
    rm -rf "$out" && mv "$out.part" "$out"
  fi
  cp "$out"/* "$SITE/"
}
if [ "$ARCH" = arm64 ]; then
  stage "2 system: lgpio $CPTAG aarch64 (compiled once; cache: cache/lgpio)"
  lgpio_module
fi
# The root is read-only at run time: compile now so Python never tries to write .pyc files.
python3 -m compileall -q -j 2 "$SITE" "$APP" >/dev/null || true

stage "2 system: units and configuration from files/root"
tar -C "$HERE/files/root" --owner=0 --group=0 -c . | tar -C "$ROOT" -x --no-same-owner --keep-directory-symlink
install -D -m 0644 "$REPO/provisioning/ahoy.txt.example" "$ROOT/usr/share/ahoy/ahoy.txt.example"
mkdir -p "$ROOT/data"
if [ "$VARIANT" = vmtest ]; then
  tar -C "$HERE/vmtest/files" --owner=0 --group=0 -c . | tar -C "$ROOT" -x --no-same-owner --keep-directory-symlink
  install -m 0644 "$REPO/tests/provisioning/phone_client.py" "$ROOT/opt/ahoy/vmtest/phone_client.py"
fi
chroot "$ROOT" /bin/sh -eu <<'EOF'
# The service runs as an unprivileged user with a fixed id, so the boot partition's
# mount options (gid=) can name it.
groupadd --system --gid 900 ahoy
useradd --system --uid 900 --gid ahoy --home-dir /data/ahoy --no-create-home --shell /usr/sbin/nologin ahoy
groupadd --system gpio && usermod -a -G gpio ahoy
# Started by provisioning once their config files exist, not on their own.
systemctl disable --quiet dnsmasq.service coturn.service hostapd.service nats-server.service \
  2>/dev/null || true
systemctl mask --quiet systemd-networkd-wait-online.service
systemctl enable --quiet systemd-networkd.service ahoy-data-partition.service ahoy-provision.service \
  ahoy.service ahoy-requests.path ahoy-clock-save.timer ssh.service ahoy-backbone.service
if [ -f /etc/systemd/system/ahoy-vmtest.service ]; then systemctl enable --quiet ahoy-vmtest.service; fi
# Every card would share these: sshd gets per-box keys on /data at first start instead.
rm -f /etc/ssh/ssh_host_*
# systemd makes a machine id at boot (in RAM: the root is read-only).
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
echo ahoy > /etc/hostname
EOF
printf '127.0.0.1\tlocalhost\n127.0.1.1\tahoy\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ROOT/etc/hosts"
# The box answers its own DNS questions (dnsmasq); `ip netns exec` also needs the file.
rm -f "$ROOT/etc/resolv.conf" && echo "nameserver 127.0.0.1" > "$ROOT/etc/resolv.conf"
# The clock is saved on /data (see /etc/default/fake-hwclock), not here.
rm -f "$ROOT/etc/fake-hwclock.data"
rm -rf "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/tmp/*

# ---------------------------------------------------------------- 3 partitions
stage "3 partitions: boot (FAT), root (ext4), data (ext4 AHOYDATA)"
BOOTDIR="$WORK/boot"
mkdir -p "$BOOTDIR"
if [ "$ARCH" = arm64 ]; then
  cp -a "$ROOT/boot/firmware/." "$BOOTDIR/"
  [ -f "$BOOTDIR/cmdline.txt" ] || die "raspi-firmware did not write cmdline.txt"
else
  # The VM boots the kernel directly (qemu -kernel); the boot partition holds the config.
  cp "$ROOT"/boot/vmlinuz-* "$BOOTDIR/vmlinuz"
  cp "$ROOT"/boot/initrd.img-* "$BOOTDIR/initrd.img"
fi
rm -rf "$ROOT/boot/firmware" && mkdir -p "$ROOT/boot/firmware"
if [ "$VARIANT" = vmtest ]; then
  cp "$HERE/vmtest/ahoy.txt" "$BOOTDIR/ahoy.txt"
else
  # The user's file: every key present and commented out, so the defaults apply until edited.
  cp "$REPO/provisioning/ahoy.txt.example" "$BOOTDIR/ahoy.txt"
fi

# The layout is fixed, the same in every version: an update image (boot and root only) is
# flashed over a card and must end exactly where the data partition starts.
SECTOR=512
BOOT_MB=256
ROOT_MB=1536
DATA_MB=64   # grown to fill the card at first boot
USED_MB=$(du -sm --apparent-size "$ROOT" | cut -f1)
[ $(( USED_MB * 110 / 100 + 64 )) -le $ROOT_MB ] || die "the root ($USED_MB MiB) no longer fits its fixed $ROOT_MB MiB partition with room to spare; changing ROOT_MB breaks updates of boxes in the field"
IMG="$WORK/ahoy.img"
BOOT_START=$(( 4 * 1024 * 1024 / SECTOR ))
BOOT_SECTORS=$(( BOOT_MB * 2048 ))
ROOT_START=$(( BOOT_START + BOOT_SECTORS ))
ROOT_SECTORS=$(( ROOT_MB * 2048 ))
DATA_START=$(( ROOT_START + ROOT_SECTORS ))
DATA_SECTORS=$(( DATA_MB * 2048 ))
truncate -s $(( (DATA_START + DATA_SECTORS) * SECTOR )) "$IMG"
# MBR: the Pi 3 and Zero 2 W boot ROMs do not read GPT.
sfdisk --quiet "$IMG" <<EOF
label: dos
label-id: 0xa5010e00
start=$BOOT_START, size=$BOOT_SECTORS, type=c, bootable
start=$ROOT_START, size=$ROOT_SECTORS, type=83
start=$DATA_START, size=$DATA_SECTORS, type=83
EOF

FAKETIME=$(git -C "$REPO" log -1 --format=%ct 2>/dev/null || date +%s)
export SOURCE_DATE_EPOCH=$FAKETIME E2FSPROGS_FAKE_TIME=$FAKETIME
mkfs.vfat -F 32 -n AHOYBOOT -i a5010e01 -C "$WORK/boot.fs" $(( BOOT_SECTORS / 2 )) >/dev/null
mcopy -s -p -m -i "$WORK/boot.fs" "$BOOTDIR"/* ::/
mke2fs -q -t ext4 -L AHOYROOT -U 5e1f0a40-0001-4a0e-9a5e-a401a401a401 -E root_owner=0:0 \
  -O ^has_journal -m 0 -d "$ROOT" "$WORK/root.fs" "${ROOT_MB}M"
mkdir -p "$WORK/data/ahoy"
chown 900:900 "$WORK/data/ahoy"
mke2fs -q -t ext4 -L AHOYDATA -U 5e1f0a40-0003-4a0e-9a5e-a401a401a401 -m 1 -d "$WORK/data" \
  "$WORK/data.fs" "${DATA_MB}M"
dd if="$WORK/boot.fs" of="$IMG" bs=1M seek=$(( BOOT_START * SECTOR )) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$WORK/root.fs" of="$IMG" bs=1M seek=$(( ROOT_START * SECTOR )) oflag=seek_bytes conv=notrunc,sparse status=none
dd if="$WORK/data.fs" of="$IMG" bs=1M seek=$(( DATA_START * SECTOR )) oflag=seek_bytes conv=notrunc,sparse status=none

# The update image: the same partition table, boot and root, and nothing of the data
# partition, so flashing it over a card keeps /data. Its boot partition has no ahoy.txt
# (the box puts the owner's back from its copy on /data), and its table lets the data
# partition run to the largest size an MBR can say: Linux limits it to the end of the
# card, and ahoy-data-partition writes the card's real end into the table at boot.
UPDATE="$WORK/ahoy-update.img"
cp "$WORK/boot.fs" "$WORK/boot-update.fs"
mdel -i "$WORK/boot-update.fs" ::ahoy.txt
dd if="$IMG" of="$UPDATE" bs=1M count=$(( DATA_START * SECTOR )) iflag=count_bytes conv=sparse status=none
dd if="$WORK/boot-update.fs" of="$UPDATE" bs=1M seek=$(( BOOT_START * SECTOR )) oflag=seek_bytes conv=notrunc,sparse status=none
python3 - "$UPDATE" "$DATA_START" <<'PY'
import struct, sys
path, start = sys.argv[1], int(sys.argv[2])
with open(path, "r+b") as image:
    image.seek(446 + 2 * 16 + 8)  # the third entry's first sector and sector count
    first, = struct.unpack("<I", image.read(4))
    assert first == start, (first, start)
    image.write(struct.pack("<I", 0xFFFFFFFF - start))
PY

# ---------------------------------------------------------------- 4 output
if [ "$VARIANT" = vmtest ]; then
  stage "4 output: out/vm"
  mkdir -p "$OUT/vm"
  mv "$IMG" "$OUT/vm/ahoy-vmtest-$ARCH.img"
  mv "$UPDATE" "$OUT/vm/ahoy-vmtest-$ARCH-update.img"
  cp "$BOOTDIR/vmlinuz" "$BOOTDIR/initrd.img" "$OUT/vm/"
  ls -lh "$OUT/vm"
else
  NAME="ahoy-$VERSION-$ARCH.img"
  UPNAME="ahoy-$VERSION-$ARCH-update.img"
  stage "4 output: bmap, xz -$XZ_LEVEL, sha256 -> out/$NAME.xz and out/$UPNAME.xz"
  for n in "$NAME" "$UPNAME"; do rm -f "$OUT/$n" "$OUT/$n.xz" "$OUT/$n.bmap" "$OUT/$n.xz.sha256"; done
  bmaptool -q create -o "$OUT/$NAME.bmap" "$IMG"
  bmaptool -q create -o "$OUT/$UPNAME.bmap" "$UPDATE"
  xz -T2 -"$XZ_LEVEL" -c "$IMG" > "$OUT/$NAME.xz.part" && mv "$OUT/$NAME.xz.part" "$OUT/$NAME.xz"
  xz -T2 -"$XZ_LEVEL" -c "$UPDATE" > "$OUT/$UPNAME.xz.part" && mv "$OUT/$UPNAME.xz.part" "$OUT/$UPNAME.xz"
  (cd "$OUT" && sha256sum "$NAME.xz" > "$NAME.xz.sha256" && sha256sum "$UPNAME.xz" > "$UPNAME.xz.sha256")
  # check_image.py reads the uncompressed images.
  mv "$IMG" "$OUT/$NAME"
  mv "$UPDATE" "$OUT/$UPNAME"
  ls -lh "$OUT"/ahoy-"$VERSION"-"$ARCH"*
fi
stage "done in $(( $(date +%s) - START )) s"
exit 0
}
