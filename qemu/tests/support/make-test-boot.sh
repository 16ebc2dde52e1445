#!/bin/sh
# Prepares a kernel and initramfs for baton-qemu's boot tests (tests/boot.rs) in $1
# (default /tmp/baton-qemu-test): Debian's arm64 kernel over plain HTTP from deb.debian.org,
# its virtio-net modules, and tinyinit (built for aarch64-unknown-linux-musl) as /init.
# Needs: curl, xz-utils, cpio, binutils (ar), and the Rust target aarch64-unknown-linux-musl.
set -eu
out=${1:-/tmp/baton-qemu-test}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
cd "$out"
if [ ! -f linux-image.deb ]; then
    curl -fsS -o Packages.xz http://deb.debian.org/debian/dists/bookworm/main/binary-arm64/Packages.xz
    file=$(xz -dc Packages.xz | sed -n 's/^Filename: \(.*linux-image-6\.1\.0-[0-9]*-arm64_.*\.deb\)$/\1/p' | sort -V | tail -n 1)
    curl -fsS -o linux-image.deb "http://deb.debian.org/debian/$file"
fi
rm -rf deb root && mkdir deb root root/modules
(cd deb && ar x ../linux-image.deb && tar -xf data.tar.xz)
cp deb/boot/vmlinuz-* vmlinuz
for m in virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net; do
    cp "$(find deb/lib/modules -name "$m.ko")" root/modules/
    echo "$m.ko" >> root/modules/order
done
CARGO_TARGET_DIR="$out/target" cargo build --quiet --release \
    --config 'target.aarch64-unknown-linux-musl.linker="rust-lld"' \
    --manifest-path "$here/tinyinit/Cargo.toml" --target aarch64-unknown-linux-musl
cp target/aarch64-unknown-linux-musl/release/tinyinit root/init
(cd root && find . | cpio --quiet -o -H newc) > initramfs
rm -rf deb root "$here/tinyinit/Cargo.lock"
echo "kernel and initramfs in $out"
