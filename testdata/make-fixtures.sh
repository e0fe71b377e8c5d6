#!/usr/bin/env bash
# make-fixtures.sh OUTDIR — builds the root filesystems the tests, the demo and
# the benchmarks use, from real Debian packages (apt-get download + dpkg-deb -x)
# and the momentum program compiled with the host's gfortran.
#
# Each fixture is OUTDIR/NAME (the root filesystem, usable with chroot) plus
# OUTDIR/NAME.json (the image config to build it with: entrypoint, env,
# workdir, platform, and how to split it into layers; read by
# internal/imagebuild.Fixture). See testdata/README.md.
#
# Idempotent and fast on re-run: nothing is rebuilt while OUTDIR/.stamp holds
# the hash of this script and of the Fortran sources. Downloaded .deb files are
# cached in OUTDIR/debs/ARCH and survive rebuilds.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
src="$repo/examples/fortran-momentum/momentum.f90"
src_files="$repo/examples/fortran-files/report.f90"
mkdir -p "$1"
out=$(cd "$1" && pwd)

hash=$(cat "$0" "$src" "$src_files" | sha256sum | cut -d' ' -f1)
if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$hash" ]; then
	exit 0
fi
# Test binaries of several packages may run this at once: one builds, the
# others wait and then find the stamp.
if command -v flock >/dev/null; then
	exec 9>"$out/.lock"
	flock 9
	if [ -f "$out/.stamp" ] && [ "$(cat "$out/.stamp")" = "$hash" ]; then
		exit 0
	fi
fi
rm -f "$out/.stamp"

log() { echo "make-fixtures: $*" >&2; }
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

# apt lists: fetched once when missing (a fresh container has none), and again
# when arm64 packages are unknown.
apt_updated=0
apt_update() {
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
		apt_updated=1
	fi
}
if [ -z "$(ls /var/lib/apt/lists/*_Packages* 2>/dev/null | head -1)" ]; then
	apt_update
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
	log "dpkg --add-architecture arm64"
	$sudo dpkg --add-architecture arm64
	apt_update
fi
if [ -z "$(ls /var/lib/apt/lists/*binary-arm64_Packages* 2>/dev/null | head -1)" ]; then
	apt_update
fi

# fetch ARCH PKG... — downloads each package once into OUTDIR/debs/ARCH.
fetch() {
	local arch=$1
	shift
	local dir="$out/debs/$arch" pkg
	mkdir -p "$dir"
	for pkg in "$@"; do
		if [ -z "$(ls "$dir/${pkg}"_*.deb 2>/dev/null | head -1)" ]; then
			log "apt-get download $pkg:$arch"
			(cd "$dir" && apt-get download -qq "$pkg:$arch" >/dev/null 2>&1) || {
				apt_update
				(cd "$dir" && apt-get download -qq "$pkg:$arch")
			}
		fi
	done
}

# unpack ROOT ARCH PKG... — dpkg-deb -x of each cached package into ROOT.
unpack() {
	local root=$1 arch=$2
	shift 2
	local pkg deb
	for pkg in "$@"; do
		deb=$(ls "$out/debs/$arch/${pkg}"_*.deb | head -1)
		dpkg-deb -x "$deb" "$root"
	done
}

# merge_usr ROOT — turns a split layout into Debian's merged-/usr layout:
# /bin, /sbin, /lib and /lib64 become symlinks into /usr, as on a fresh
# bookworm install.
merge_usr() {
	local root=$1 d
	for d in bin sbin lib lib64; do
		mkdir -p "$root/usr/$d"
		if [ -d "$root/$d" ] && [ ! -L "$root/$d" ]; then
			cp -a "$root/$d/." "$root/usr/$d/"
			rm -rf "${root:?}/$d"
		fi
		ln -sfn "usr/$d" "$root/$d"
	done
}

# etc ROOT TRIPLET — the small /etc files glibc reads: ld.so.conf as written by
# libc-bin (libc6 ships ld.so.conf.d/TRIPLET.conf), Debian's default
# nsswitch.conf (what libc-bin's postinst installs from
# /usr/share/libc-bin/nsswitch.conf), and minimal passwd and group.
etc() {
	local root=$1
	mkdir -p "$root/etc/ld.so.conf.d" "$root/tmp" "$root/root"
	chmod 1777 "$root/tmp"
	printf 'include /etc/ld.so.conf.d/*.conf\n\n' >"$root/etc/ld.so.conf"
	cat >"$root/etc/nsswitch.conf" <<'EOF'
# /etc/nsswitch.conf
#
# Example configuration of GNU Name Service Switch functionality.
# If you have the `glibc-doc-reference' and `info' packages installed, try:
# `info libc "Name Service Switch"' for information about this file.

passwd:         files
group:          files
shadow:         files
gshadow:        files

hosts:          files dns
networks:       files

protocols:      db files
services:       db files
ethers:         db files
rpc:            db files

netgroup:       nis
EOF
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# config NAME PLATFORM ENTRYPOINT_JSON CMD_JSON WORKDIR LAYERS_JSON — writes
# OUTDIR/NAME.json, read by internal/imagebuild.Fixture.
config() {
	cat >"$out/$1.json" <<EOF
{
  "platform": "$2",
  "config": {
    "Entrypoint": $3,
    "Cmd": $4,
    "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    "WorkingDir": "$5"
  },
  "layers": $6
}
EOF
}

# finish NAME — moves the freshly built OUTDIR/NAME.tmp into place.
finish() {
	rm -rf "${out:?}/$1"
	mv "$out/$1.tmp" "$out/$1"
	log "built $out/$1"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# momentum for both architectures, compiled once per run.
gfortran -O2 -o "$work/momentum-amd64" "$src"
if command -v aarch64-linux-gnu-gfortran >/dev/null; then
	aarch64-linux-gnu-gfortran -O2 -o "$work/momentum-arm64" "$src"
	arm64_prog=/usr/local/bin/momentum
else
	arm64_prog=/usr/bin/sort
	log "aarch64-linux-gnu-gfortran not found: the arm64 fixture runs /usr/bin/sort from coreutils:arm64"
fi

fortran_pkgs=(libc6 libgfortran5 libquadmath0 libgcc-s1)
fetch amd64 "${fortran_pkgs[@]}"
layers_fortran='[{"created_by": "COPY momentum /usr/local/bin/momentum", "prefixes": ["/usr/local"]}]'

# (a) fortran-merged: merged-/usr layout, as bookworm images have it.
root="$out/fortran-merged.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${fortran_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
install -D -m 0755 "$work/momentum-amd64" "$root/usr/local/bin/momentum"
finish fortran-merged
config fortran-merged linux/amd64 '["/usr/local/bin/momentum"]' null / "$layers_fortran"

# (a2) fortran-files: fortran-merged with examples/fortran-files'
# momentum-report instead of momentum, which writes named files (-o FILE, or
# table.csv, summary.csv and plots/ in its WORKDIR /work).
gfortran -O2 -o "$work/momentum-report" "$src_files"
root="$out/fortran-files.tmp"
rm -rf "$root"
cp -a "$out/fortran-merged" "$root"
rm "$root/usr/local/bin/momentum"
install -D -m 0755 "$work/momentum-report" "$root/usr/local/bin/momentum-report"
install -d -m 0755 "$root/work"
finish fortran-files
config fortran-files linux/amd64 '["/usr/local/bin/momentum-report"]' null /work \
	'[{"created_by": "COPY momentum-report /usr/local/bin/momentum-report", "prefixes": ["/usr/local", "/work"]}]'

# (b) fortran-split: the same packages extracted as shipped, without the /usr
# merge: real /lib, /lib64 (holding the ld-linux-x86-64.so.2 symlink) and
# /usr/lib directories, as older images have them.
root="$out/fortran-split.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${fortran_pkgs[@]}"
etc "$root" x86_64-linux-gnu
install -D -m 0755 "$work/momentum-amd64" "$root/usr/local/bin/momentum"
finish fortran-split
config fortran-split linux/amd64 '["/usr/local/bin/momentum"]' null / "$layers_fortran"

# (c) arm64: libquadmath does not exist on arm64 (it is x86 and ppc64 only);
# the cross-compiled momentum needs libgfortran, libgcc_s, libm and libc.
arm64_pkgs=(libc6 libgfortran5 libgcc-s1)
if [ "$arm64_prog" = /usr/bin/sort ]; then
	arm64_pkgs+=(coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0)
fi
fetch arm64 "${arm64_pkgs[@]}"
root="$out/arm64.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" arm64 "${arm64_pkgs[@]}"
merge_usr "$root"
etc "$root" aarch64-linux-gnu
if [ "$arm64_prog" = /usr/local/bin/momentum ]; then
	install -D -m 0755 "$work/momentum-arm64" "$root/usr/local/bin/momentum"
fi
finish arm64
config arm64 linux/arm64 "[\"$arm64_prog\"]" null / "$layers_fortran"

# (d) sh-tools: dash and coreutils for script entrypoints. /bin/sh -> dash as
# on Debian; /usr/local/bin/sorted.sh is a "#!/bin/sh" script that sorts CSV
# rows and /usr/local/bin/count is a "#!/usr/bin/env sh" script.
sh_pkgs=(libc6 dash coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0)
fetch amd64 "${sh_pkgs[@]}"
root="$out/sh-tools.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${sh_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
ln -sfn dash "$root/usr/bin/sh"
mkdir -p "$root/usr/local/bin" "$root/work"
cat >"$root/usr/local/bin/sorted.sh" <<'EOF'
#!/bin/sh
# Copies the CSV header from stdin, then the remaining rows sorted.
set -e
IFS= read -r header
printf '%s\n' "$header"
sort -t, -k1,1g
EOF
cat >"$root/usr/local/bin/count" <<'EOF'
#!/usr/bin/env sh
# Prints the number of data rows (lines after the header) on stdin.
tail -n +2 | wc -l
EOF
chmod 0755 "$root/usr/local/bin/sorted.sh" "$root/usr/local/bin/count"
finish sh-tools
config sh-tools linux/amd64 '["/usr/local/bin/sorted.sh"]' null /work \
	'[{"created_by": "COPY sorted.sh count /usr/local/bin/", "prefixes": ["/usr/local", "/work"]}]'

# (e) sh-tools gets mawk and tally.sh: a "#!/bin/sh" script whose body runs
# tail, cut, sort, uniq -c and awk, and sources a helper file (". FILE") that
# runs tr. Only the script's body names those programs.
fetch amd64 mawk
root="$out/sh-tools"
unpack "$root" amd64 mawk
ln -sfn /etc/alternatives/awk "$root/usr/bin/awk"
mkdir -p "$root/etc/alternatives" "$root/usr/local/lib/tally"
ln -sfn /usr/bin/mawk "$root/etc/alternatives/awk"
cat >"$root/usr/local/lib/tally/common.sh" <<'EOF'
# Sourced by tally.sh: lower-cases its input.
lower() {
	tr '[:upper:]' '[:lower:]'
}
EOF
cat >"$root/usr/local/bin/tally.sh" <<'EOF'
#!/bin/sh
# Counts the values of the first CSV column (header skipped), most frequent
# first: "value,count" lines.
set -e
. /usr/local/lib/tally/common.sh
tail -n +2 | cut -d, -f1 | lower | sort | uniq -c | sort -k1,1nr -k2,2 |
	awk '{ printf "%s,%d\n", $2, $1 }'
EOF
chmod 0755 "$root/usr/local/bin/tally.sh"
config sh-tools linux/amd64 '["/usr/local/bin/sorted.sh"]' null /work \
	'[{"created_by": "COPY sorted.sh count tally.sh /usr/local/", "prefixes": ["/usr/local", "/work"]}]'

# (f) python: python3.11 from python3-minimal and libpython3.11-stdlib, with
# only part of the stdlib's library dependencies (no sqlite, readline,
# ncurses, db, nsl: their lib-dynload modules are left out with a warning).
# /app/main.py ("#!/usr/bin/env python3") imports csv, statistics, json and
# the local module helper, which imports fmtlib from /opt/pylib, a directory
# named by a .pth file in dist-packages.
py_pkgs=(libc6 python3-minimal python3.11-minimal libpython3.11-minimal libpython3.11-stdlib
	libexpat1 zlib1g libssl3 libffi8 libbz2-1.0 liblzma5 libcrypt1 libuuid1 media-types
	coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0)
fetch amd64 "${py_pkgs[@]}"
root="$out/python.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${py_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
mkdir -p "$root/app" "$root/opt/pylib" "$root/usr/lib/python3/dist-packages"
echo /opt/pylib >"$root/usr/lib/python3/dist-packages/local-libs.pth"
cat >"$root/opt/pylib/fmtlib.py" <<'EOF'
"""Formatting helpers found through a .pth file."""


def fixed(x):
    return "%.3f" % x
EOF
cat >"$root/app/helper.py" <<'EOF'
"""Local helper module of main.py."""
from fmtlib import fixed


def momentum(mass, velocity):
    return fixed(float(mass) * float(velocity))
EOF
cat >"$root/app/main.py" <<'EOF'
#!/usr/bin/env python3
"""Reads mass,velocity CSV rows on stdin; writes momentum rows and a JSON summary."""
import csv
import json
import statistics
import sys

import helper

rows = list(csv.DictReader(sys.stdin))
out = csv.writer(sys.stdout, lineterminator="\n")
out.writerow(["mass", "velocity", "momentum"])
values = []
for r in rows:
    p = helper.momentum(r["mass"], r["velocity"])
    values.append(float(p))
    out.writerow([r["mass"], r["velocity"], p])
summary = {"n": len(values), "mean": round(statistics.mean(values), 3), "median": statistics.median(values)}
print(json.dumps(summary, sort_keys=True))
EOF
chmod 0755 "$root/app/main.py"
finish python
config python linux/amd64 '["/app/main.py"]' null /app \
	'[{"created_by": "COPY app /app", "prefixes": ["/app", "/opt/pylib", "/usr/lib/python3/dist-packages/local-libs.pth"]}]'

# (g) perl: perl-base only (List::Util and its XS part are in perl-base); the
# entrypoint is a one-liner using List::Util's sum and max.
pl_pkgs=(libc6 libcrypt1 perl-base)
fetch amd64 "${pl_pkgs[@]}"
root="$out/perl.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${pl_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
finish perl
config perl linux/amd64 \
	'["perl", "-MList::Util=sum,max", "-ne", "next if $. == 1; chomp; my @f = split /,/; printf \"%s,%s,%s\\n\", $f[0], sum(@f[1..$#f]), max(@f[1..$#f]);"]' \
	null / '[]'

# (h) c-nss: a C program (host gcc, bookworm's glibc 2.36 like the fixture's
# libc6) printing, for each epoch second on stdin, the local time
# (localtime: /etc/localtime -> Europe/Berlin from tzdata) and the name of
# the running user (getpwuid: /etc/passwd).
cn_pkgs=(libc6 tzdata)
fetch amd64 "${cn_pkgs[@]}"
root="$out/c-nss.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${cn_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
printf 'root:x:0:0:root:/root:/bin/sh\nappuser:x:65534:65534:App User:/nonexistent:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nappgroup:x:65534:\n' >"$root/etc/group"
ln -sfn /usr/share/zoneinfo/Europe/Berlin "$root/etc/localtime"
cat >"$work/whenwho.c" <<'EOF'
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void) {
	struct passwd *pw = getpwuid(getuid());
	struct group *gr = getgrgid(getgid());
	char line[256], buf[128];
	while (fgets(line, sizeof line, stdin)) {
		char *end;
		long long v = strtoll(line, &end, 10);
		if (end == line)
			continue;
		time_t t = (time_t)v;
		struct tm *tm = localtime(&t);
		strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z %z", tm);
		printf("%lld,%s,%s,%s\n", v, buf, pw ? pw->pw_name : "?", gr ? gr->gr_name : "?");
	}
	return 0;
}
EOF
gcc -O2 -o "$work/whenwho" "$work/whenwho.c"
install -D -m 0755 "$work/whenwho" "$root/usr/local/bin/whenwho"
finish c-nss
config c-nss linux/amd64 '["/usr/local/bin/whenwho"]' null / \
	'[{"created_by": "COPY whenwho /usr/local/bin/whenwho", "prefixes": ["/usr/local"]}]'
# USER appuser: the data rules bundle /etc/passwd and /etc/group for it.
sed -i 's|"WorkingDir": "/"|"WorkingDir": "/",\n    "User": "appuser"|' "$out/c-nss.json"

# (i) busybox: busybox's sh and applets (the links "busybox --install -s"
# makes, as Alpine-style images have them); /usr/local/bin/tally is a
# "#!/bin/sh" script (sh -> busybox) piping through applets.
bb_pkgs=(libc6 busybox)
fetch amd64 "${bb_pkgs[@]}"
root="$out/busybox.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${bb_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
for applet in sh sort uniq awk tail cut tr head wc cat; do
	ln -sfn /bin/busybox "$root/usr/bin/$applet"
done
mkdir -p "$root/usr/local/bin"
cat >"$root/usr/local/bin/tally" <<'EOF'
#!/bin/sh
# Counts the values of the first CSV column (header skipped), most frequent
# first, with busybox applets.
tail -n +2 | cut -d, -f1 | tr 'A-Z' 'a-z' | sort | uniq -c | sort -k1,1nr -k2,2 |
	awk '{ printf "%s,%d\n", $2, $1 }'
EOF
chmod 0755 "$root/usr/local/bin/tally"
finish busybox
config busybox linux/amd64 '["/usr/local/bin/tally"]' null / \
	'[{"created_by": "COPY tally /usr/local/bin/tally", "prefixes": ["/usr/local"]}]'

# Programs that open files at absolute paths compiled into them (or written
# into their scripts): a zip moves those files under /var/task, so these
# fixtures tell the zip from the image format (testdata/originalpaths).

# (j) tcl: tclsh8.6 finds its library (init.tcl, clock.tcl, msgcat) at the
# compiled-in /usr/share/tcltk/tcl8.6. /usr/local/bin/colsum.tcl
# ("#!/usr/bin/tclsh8.6") sums each CSV row and names its date's weekday
# with clock scan/format, which init.tcl loads from clock.tcl on first use.
# tzdata is libtcl8.6's dependency (clock's local zones); -gmt 1 needs none.
tcl_pkgs=(libc6 tcl8.6 libtcl8.6 zlib1g tzdata)
fetch amd64 "${tcl_pkgs[@]}"
root="$out/tcl.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${tcl_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
mkdir -p "$root/usr/local/bin"
cat >"$root/usr/local/bin/colsum.tcl" <<'EOF'
#!/usr/bin/tclsh8.6
# Reads "date,value..." CSV rows on stdin (a header first) and prints, for
# each row, the date, its weekday (UTC) and the sum of its values.
gets stdin header
puts "date,weekday,sum"
while {[gets stdin line] >= 0} {
    if {[string trim $line] eq ""} continue
    set fields [split $line ,]
    set t [clock scan [lindex $fields 0] -format %Y-%m-%d -gmt 1]
    set sum [tcl::mathop::+ {*}[lrange $fields 1 end]]
    puts [format "%s,%s,%.3f" [clock format $t -format %Y-%m-%d -gmt 1] \
        [clock format $t -format %A -gmt 1] $sum]
}
EOF
chmod 0755 "$root/usr/local/bin/colsum.tcl"
finish tcl
config tcl linux/amd64 '["/usr/local/bin/colsum.tcl"]' null / \
	'[{"created_by": "COPY colsum.tcl /usr/local/bin/colsum.tcl", "prefixes": ["/usr/local"]}]'

# (k) fontconfig: fc-match reads /etc/fonts/fonts.conf (compiled in), which
# includes conf.d and names the font directories (/usr/share/fonts).
# /etc/fonts/conf.d gets the links fontconfig-config's postinst makes with
# the default debconf answers (hinting slight, no bitmaps). No font cache:
# fc-cache is not run (its cache records directory times), so fontconfig
# scans the six DejaVu fonts on every run.
# /usr/local/bin/fontmatch ("#!/bin/sh") prints, for each family named in
# the CSV on stdin (a header, then one name per row), "family: file".
fc_pkgs=(libc6 dash fontconfig fontconfig-config libfontconfig1 libfreetype6 fonts-dejavu-core
	libexpat1 libbrotli1 libpng16-16 zlib1g)
fetch amd64 "${fc_pkgs[@]}"
root="$out/fontconfig.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${fc_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
ln -sfn dash "$root/usr/bin/sh"
for conf in 10-hinting-slight.conf 70-no-bitmaps.conf; do
	ln -sfn "/usr/share/fontconfig/conf.avail/$conf" "$root/etc/fonts/conf.d/$conf"
done
mkdir -p "$root/usr/local/share/fonts" "$root/usr/local/bin"
cat >"$root/usr/local/bin/fontmatch" <<'EOF'
#!/bin/sh
# Prints, for each font family named in the CSV on stdin (a header, then one
# name per row), the font fontconfig picks for it: "family: file".
IFS= read -r header
while IFS=, read -r name rest; do
	[ -n "$name" ] || continue
	fc-match -f '%{family[0]}: %{file}\n' "$name"
done
EOF
chmod 0755 "$root/usr/local/bin/fontmatch"
finish fontconfig
config fontconfig linux/amd64 '["/usr/local/bin/fontmatch"]' null / \
	'[{"created_by": "COPY fontmatch /usr/local/bin/fontmatch", "prefixes": ["/usr/local/bin"]}]'

# (l) shapp: a shell app with its own configuration file and template.
# /usr/local/bin/report ("#!/bin/sh") reads its settings from
# /etc/report/report.conf with sed (a plain read, not ". FILE"), fills in
# the header template /usr/share/report/header.tmpl and formats the CSV on
# stdin with awk (mawk) and tr.
sa_pkgs=(libc6 dash sed mawk coreutils libacl1 libattr1 libgmp10 libselinux1 libpcre2-8-0)
fetch amd64 "${sa_pkgs[@]}"
root="$out/shapp.tmp"
rm -rf "$root"
mkdir -p "$root"
unpack "$root" amd64 "${sa_pkgs[@]}"
merge_usr "$root"
etc "$root" x86_64-linux-gnu
ln -sfn dash "$root/usr/bin/sh"
mkdir -p "$root/etc/alternatives" "$root/etc/report" "$root/usr/share/report" "$root/usr/local/bin"
ln -sfn /usr/bin/mawk "$root/etc/alternatives/awk"
ln -sfn /etc/alternatives/awk "$root/usr/bin/awk"
cat >"$root/etc/report/report.conf" <<'EOF'
# Settings of /usr/local/bin/report.
title=Momentum by row
sep=;
decimals=2
EOF
cat >"$root/usr/share/report/header.tmpl" <<'EOF'
==== @TITLE@ ====
columns: @COLUMNS@
EOF
cat >"$root/usr/local/bin/report" <<'EOF'
#!/bin/sh
# Formats the CSV on stdin (a header, then numeric rows) as a report: the
# header template filled in, then each row's fields joined by the configured
# separator with the configured decimals, and a total of the last column.
set -e
title=$(sed -n 's/^title=//p' /etc/report/report.conf)
sep=$(sed -n 's/^sep=//p' /etc/report/report.conf)
decimals=$(sed -n 's/^decimals=//p' /etc/report/report.conf)
IFS= read -r header
columns=$(printf '%s\n' "$header" | tr ',' ' ' | tr '[:lower:]' '[:upper:]')
sed -e "s/@TITLE@/$title/" -e "s/@COLUMNS@/$columns/" /usr/share/report/header.tmpl
awk -F, -v sep="$sep" -v d="$decimals" '
{
	line = ""
	for (i = 1; i <= NF; i++)
		line = line (i > 1 ? sep : "") sprintf("%10." d "f", $i)
	print line
	total += $NF
	n++
}
END { printf "%d rows, total %." d "f\n", n, total }'
EOF
chmod 0755 "$root/usr/local/bin/report"
finish shapp
config shapp linux/amd64 '["/usr/local/bin/report"]' null / \
	'[{"created_by": "COPY report/ /", "prefixes": ["/usr/local/bin", "/etc/report", "/usr/share/report"]}]'

echo "$hash" >"$out/.stamp"
log "fixtures ready in $out"
