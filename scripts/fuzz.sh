#!/usr/bin/env bash
# fuzz.sh DURATION — runs every fuzz target for DURATION each (`make fuzz`).
# New crashers land in the package's testdata/fuzz and then run as
# regression cases in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-30s}
# Every package with fuzz targets: the list follows the code as it moves.
for pkg in $(grep -l '^func Fuzz' $(git ls-files '*_test.go') | xargs -n1 dirname | sort -u | sed 's|^|./|'); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz'); do
		echo "== $pkg $target ($dur)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$dur" "$pkg"
	done
done
