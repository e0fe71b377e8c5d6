#!/usr/bin/env bash
# bench.sh — every benchmark of the project, side by side (`make bench`).
#
#   0. packaging against a plain flatten (scripts/bench-package.sh, issue
#      12): `crane export`, `extract package` from a registry, a
#      docker-archive and an oci-archive, `extract inspect`, on an 800 MB,
#      14-layer image: wall time and peak RSS, medians, ratios and
#      PASS/FAIL against the targets (run it alone for just that);
#   1. the layer index (what the closure costs) vs go-containerregistry's
#      mutate.Extract read to the end, on a generated 530 MB, 8-layer image
#      with many small files: time and peak RSS of each (targets: index time
#      ≤ 1.0× flatten, peak RSS < 150 MB);
#   2. the closure itself on the Fortran fixture's index;
#   3. the Lambda shim: a 200 MB CSV through a cat-like program via the real
#      bootstrap, the Runtime API and local S3, side by side with the program
#      run directly on the file, on pipes, and fed from and to the same S3
#      without the shim (and the S3 round trip alone, no program); and the
#      bootstrap's start → first /next latency;
#   4. the same for the Fortran momentum program (BENCH_SHIM_MB, default 200;
#      set BENCH_SHIM_MB=0 to skip: momentum parses 200 MB in minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== 0. package vs crane export (bin/extract, scripts/bench-package.sh)"
bash scripts/bench-package.sh

echo "== 1. index vs flatten (pkg/image)"
go test -run '^$' -bench 'BenchmarkIndex$|BenchmarkFlatten$' -benchtime 3x -timeout 30m ./pkg/image

echo "== 2. closure (pkg/image)"
go test -run '^$' -bench 'BenchmarkClosure$' -benchmem ./pkg/image

echo "== 3. shim overhead, cat-like program (pkg/local)"
EXTRACT_BENCH=1 go test -run 'TestShimOverhead$' -v -count=1 -timeout 30m ./pkg/local | grep -v '^=== '

mb=${BENCH_SHIM_MB:-200}
if [ "$mb" != 0 ]; then
	echo "== 4. shim overhead, Fortran momentum (${mb} MB)"
	bash scripts/bench-shim.sh "$mb"
fi
