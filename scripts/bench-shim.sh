#!/usr/bin/env bash
# bench-shim.sh — what the Lambda shim costs: the momentum program of the
# Fortran fixture on a large CSV, run directly (its own bundled loader and
# libraries, from the unpacked package) and through `extract invoke` (local
# Runtime API, the package's real bootstrap, in-process S3 streaming the
# object in and a multipart upload out). Prints both times, their ratio
# (target ≤ 1.15×) and the bootstrap's start → first /next latency (target
# < 20 ms), and checks that both outputs are byte-for-byte equal.
#
#   scripts/bench-shim.sh [SIZE_MB]      (default 200; needs `make fixtures`)
#   BENCH_SHIM_ROUNDS=N                  rounds (default 3)
#
# For the cat-like worst case (no work in the program, all shim) see
#   EXTRACT_BENCH=1 go test -run TestShimOverhead -v ./pkg/local
set -euo pipefail

size_mb=${1:-200}
rounds=${BENCH_SHIM_ROUNDS:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
rootfs=${EXTRACT_FIXTURES:-$repo/testdata/fixtures}/fortran-merged
[ -d "$rootfs" ] || { echo "bench-shim: $rootfs missing: run make fixtures" >&2; exit 1; }

work=$(mktemp -d)
registry_pid=''
link=''
cleanup() {
	[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null || true
	[ -n "$link" ] && [ -L "$link" ] && rm -f "$link"
	rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

(cd "$repo" && go build -o "$work/democtl" ./internal/demo/cmd/democtl && go build -o "$work/extract" ./cmd/extract)

./democtl registry --addr-file registry.addr --log registry.log &
registry_pid=$!
for _ in $(seq 200); do [ -s registry.addr ] && break; sleep 0.05; done
image=$(cat registry.addr)/bench/momentum:v1
./democtl push --rootfs "$rootfs" "$image" >/dev/null
./extract package "$image" -o m-file.zip >/dev/null 2>&1
./extract package "$image" --stdout pipe -o m-pipe.zip >/dev/null 2>&1

python3 - "$size_mb" <<'PY'
import random, sys
random.seed(1)
limit = int(sys.argv[1]) << 20
with open("big.csv", "w") as f:
    f.write("mass,velocity\n")
    n, lines = 0, []
    while n < limit:
        l = "%.3f,%.3f\n" % (random.random() * 1000, random.random() * 100)
        lines.append(l)
        n += len(l)
        if len(lines) > 100000:
            f.write("".join(lines))
            lines = []
    f.write("".join(lines))
PY
echo "input: $(stat -c %s big.csv) bytes"

mkdir pkg && (cd pkg && unzip -q ../m-file.zip)
link=$(python3 -c 'import json,sys; print(json.load(open("pkg/extract.json"))["link_dir"])')
libs=$(python3 -c 'import json; m=json.load(open("pkg/extract.json")); print(":".join("'"$work"'/pkg/rootfs"+d for d in m.get("library_path", [])))')
program=$(python3 -c 'import json; print(json.load(open("pkg/extract.json"))["program"])')

# Rounds alternate the runs, so a slow spell of the machine hits them alike;
# medians are reported. The pipe package is the same program with
# --stdout pipe: what the default (stdout as a file) saves.
for r in $(seq "$rounds"); do
	ln -sfn "$work/pkg" "$link"
	start=$EPOCHREALTIME
	LD_LIBRARY_PATH=$libs "pkg/rootfs$program" <big.csv >direct.out
	end=$EPOCHREALTIME
	rm -f "$link"
	python3 -c "print($end - $start)" >>direct.times
	for v in file pipe; do
		./extract invoke "m-$v.zip" --csv big.csv --timeout 15m 2>"invoke-$v.log" >"invoke-$v.out"
		grep -o 'duration_ns=[0-9]*' "invoke-$v.log" | head -1 | cut -d= -f2 >>"invoke-$v.times"
		grep -o 'init_ns=[0-9]*' "invoke-$v.log" | head -1 | cut -d= -f2 >>"init.times"
		cmp direct.out "invoke-$v.out" >/dev/null || { echo "bench-shim: --stdout $v output differs from the direct run's" >&2; exit 1; }
	done
	echo "round $r: direct $(tail -1 direct.times | cut -c1-7) s, invocation $(($(tail -1 invoke-file.times) / 1000000)) ms (--stdout pipe: $(($(tail -1 invoke-pipe.times) / 1000000)) ms)"
done
python3 - <<'PY'
import statistics as st
def col(f, scale=1.0):
    return [float(l) * scale for l in open(f) if l.strip()]
d, f, p, i = col("direct.times"), col("invoke-file.times", 1e-9), col("invoke-pipe.times", 1e-9), col("init.times", 1e-6)
md, mf, mp = st.median(d), st.median(f), st.median(p)
print("median of %d: direct %.2f s, invocation %.2f s: %.3f× (target ≤ 1.15×); with --stdout pipe %.2f s: %.3f×" % (len(d), md, mf, mf / md, mp, mp / md))
print("bootstrap start → first /next: median %.1f ms, best %.1f ms (target < 20 ms)" % (st.median(i), min(i)))
PY
echo "outputs identical ($(stat -c %s direct.out) bytes)"
