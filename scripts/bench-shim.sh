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
#
# For the cat-like worst case (no work in the program, all shim) see
#   EXTRACT_BENCH=1 go test -run TestShimOverhead -v ./pkg/lambda
set -euo pipefail

size_mb=${1:-200}
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
./extract package "$image" -o m.zip >/dev/null 2>&1

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

mkdir pkg && (cd pkg && unzip -q ../m.zip)
link=$(python3 -c 'import json,sys; print(json.load(open("pkg/extract.json"))["link_dir"])')
ln -sfn "$work/pkg" "$link"
libs=$(python3 -c 'import json; m=json.load(open("pkg/extract.json")); print(":".join("'"$work"'/pkg/rootfs"+d for d in m.get("library_path", [])))')
program=$(python3 -c 'import json; print(json.load(open("pkg/extract.json"))["program"])')

start=$EPOCHREALTIME
LD_LIBRARY_PATH=$libs "pkg/rootfs$program" <big.csv >direct.out
end=$EPOCHREALTIME
rm -f "$link"

./extract invoke m.zip --csv big.csv --json --timeout 15m 2>invoke.log >invoke.json
python3 - "$start" "$end" <<'PY'
import json, sys
direct = float(sys.argv[2]) - float(sys.argv[1])
r = json.load(open("invoke.json"))
open("invoke.out", "w").write(r["output"])
inv = r["duration_ns"] / 1e9
print("direct:     %.3f s" % direct)
print("invocation: %.3f s  (ratio %.3f×, target ≤ 1.15×)" % (inv, inv / direct))
print("bootstrap start → first /next: %.1f ms (target < 20 ms)" % (r["init_duration_ns"] / 1e6))
PY
cmp direct.out invoke.out && echo "outputs identical ($(stat -c %s direct.out) bytes)"
