#!/usr/bin/env bash
# Installs what `make test` and `make demo` need on a fresh Debian machine.
# Idempotent: only missing pieces are installed.
set -euo pipefail

need_apt=()
command -v gfortran >/dev/null || need_apt+=(gfortran)
# the arm64 fixture cross-compiles momentum for aarch64
command -v aarch64-linux-gnu-gfortran >/dev/null || need_apt+=(gfortran-aarch64-linux-gnu)
command -v qemu-aarch64-static >/dev/null || need_apt+=(qemu-user-static)
command -v ldd >/dev/null || need_apt+=(libc-bin)
command -v zip >/dev/null || need_apt+=(zip)
[ -x /usr/bin/time ] || need_apt+=(time) # make bench: wall time and peak RSS

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	$sudo dpkg --add-architecture arm64
	updated=0
else
	updated=1
fi
if [ ${#need_apt[@]} -gt 0 ] || [ "$updated" -eq 0 ] || [ ! -d /var/lib/apt/lists ] || [ -z "$(ls /var/lib/apt/lists/*arm64* 2>/dev/null | head -1)" ]; then
	$sudo apt-get update -qq
fi
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "installing: ${need_apt[*]}" >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# moto (AWS control plane and S3 for the deploy tests and the demo).
if ! command -v moto_server >/dev/null; then
	echo "installing: moto[server] (pip)" >&2
	python3 -m pip install -q 'moto[server]>=5,<6'
fi

# Run arm64 programs through qemu (binfmt_misc), where the kernel allows it.
if [ "$(id -u)" -eq 0 ] && [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ]; then
	if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
		mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || true
	fi
	if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
		cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register 2>/dev/null || true
	fi
fi
