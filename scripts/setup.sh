#!/usr/bin/env bash
# Installs everything the lab environment needs on a fresh Debian 12 machine, from Debian's packages only,
# then builds dr-drill's static guest probe. Idempotent: a second run only checks.
#   --tests: also what only the tests need: a real kube-apiserver and etcd (built from Debian's source, a
#            few minutes cold) for the Kubernetes code, and Chromium to open a run's report headless.
#   ASSETS (default /opt/dr-drill): where QEMU 7.2 and the guest kernel are unpacked.
set -euo pipefail
TESTS=0
for a in "$@"; do
  case "$a" in
    --tests) TESTS=1 ;;
    *) printf 'setup: unknown option %s (only --tests)\n' "$a" >&2; exit 2 ;;
  esac
done
ASSETS=${DR_DRILL_ASSETS:-/opt/dr-drill}
cd "$(dirname "$0")/.."
log() { printf 'setup: %s\n' "$*" >&2; }

need_apt=()
for p in ceph-mon ceph-osd ceph-mgr rbd-mirror ceph-common busybox-static iproute2 procps \
         libcapstone4 libfdt1 libslirp0 libvdeplug2 libaio1 liburing2 libpmem1 libnuma1 libdaxctl1 libndctl6 \
         libjpeg62-turbo libpng16-16 libsasl2-2 libgnutls30 libusb-1.0-0 libseccomp2 libpixman-1-0 libglib2.0-0; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# QEMU 7.2 from bookworm cannot be installed next to the preinstalled qemu-utils 10 (Breaks), so its
# packages are unpacked instead; TCG and block-rbd are modules found through QEMU_MODULE_DIR.
if [ ! -x "$ASSETS/qemu/usr/bin/qemu-system-x86_64" ] || [ ! -f "$ASSETS/kernel/vmlinuz" ]; then
  kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
  [ -n "$kpkg" ] || { apt-get update -qq; kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}'); }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  ( cd "$tmp" && apt-get download -qq qemu-system-x86 qemu-system-common qemu-system-data qemu-block-extra seabios "$kpkg" )
  rm -rf "$ASSETS/qemu" "$ASSETS/kernel.tmp"; mkdir -p "$ASSETS/qemu" "$ASSETS/kernel.tmp"
  for d in "$tmp"/qemu-*.deb "$tmp"/seabios*.deb; do dpkg-deb -x "$d" "$ASSETS/qemu"; done
  dpkg-deb -x "$tmp"/linux-image-*.deb "$ASSETS/kernel.tmp"
  kver=${kpkg#linux-image-}
  mkdir -p "$ASSETS/kernel/modules"
  cp "$ASSETS/kernel.tmp/boot/vmlinuz-$kver" "$ASSETS/kernel/vmlinuz"
  for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk virtio_console; do
    f=$(find "$ASSETS/kernel.tmp/lib/modules/$kver" -name "$m.ko*" | head -n1)
    [ -n "$f" ] || { log "kernel $kver has no module $m"; exit 1; }
    case "$f" in *.xz) xz -dc "$f" > "$ASSETS/kernel/modules/$m.ko";; *.zst) zstd -qdc "$f" > "$ASSETS/kernel/modules/$m.ko";; *) cp "$f" "$ASSETS/kernel/modules/$m.ko";; esac
  done
  echo "$kver" > "$ASSETS/kernel/version"
  rm -rf "$ASSETS/kernel.tmp"
fi
missing=$(QEMU_MODULE_DIR="$ASSETS/qemu/usr/lib/x86_64-linux-gnu/qemu" ldd "$ASSETS/qemu/usr/bin/qemu-system-x86_64" "$ASSETS"/qemu/usr/lib/x86_64-linux-gnu/qemu/block-rbd.so | awk '/not found/ {print $1}' | sort -u)
[ -z "$missing" ] || { log "QEMU needs libraries that are not installed: $missing"; exit 1; }

# The guest probe: a static executable (the only installed target is gnu, so crt-static on it).
RUSTFLAGS="-C target-feature=+crt-static" cargo build -q --release -p dr-probe --target x86_64-unknown-linux-gnu
mkdir -p "$ASSETS/bin"
install -m 0755 target/x86_64-unknown-linux-gnu/release/dr-probe "$ASSETS/bin/dr-probe"

ready="QEMU $("$ASSETS/qemu/usr/bin/qemu-system-x86_64" --version | head -n1 | awk '{print $4}'), kernel $(cat "$ASSETS/kernel/version"), ceph $(ceph --version | awk '{print $3}')"
if [ "$TESTS" = 1 ]; then
  # A real kube-apiserver (1.20, from Debian's source) and etcd for the tests of the Kubernetes code.
  bash scripts/build-kube-apiserver.sh
  # Chromium, headless, opens a real run's report in the tests (no network: the page loads nothing).
  if ! command -v chromium >/dev/null; then
    log "apt-get install chromium (the report test opens index.html headless)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  fi
  ready="$ready, $("$ASSETS/k8s/kube-apiserver" --version), $(chromium --version 2>/dev/null | head -n1)"
fi
log "ready: $ready"
