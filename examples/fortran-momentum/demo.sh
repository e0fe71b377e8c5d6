#!/usr/bin/env bash
# demo.sh — the whole extract story on one machine, offline:
#
#   1. build the momentum image without Docker (the Dockerfile's layers, from
#      the Debian packages in testdata/fixtures/fortran-merged) and push it to
#      a local registry
#   2. extract inspect: config, layers, efficiency, the closure
#   3. extract package: the Lambda zip ("I'm coming out…")
#   4. extract deploy to moto (S3 + Lambda + IAM), twice: the second is a no-op
#   5. upload sample.csv, run the deployed zip on the S3 event with
#      extract invoke, and check output/sample.csv against data/expected.csv
#   6. the same program as a Lambda container image (package --format image),
#      run with extract invoke as Lambda runs images (as root)
#   7. a summary with the time of each step
#
# Run it with `make demo` (which first runs deps, fixtures and build).
# Environment:
#   EXTRACT           the extract binary (default: bin/extract)
#   EXTRACT_FIXTURES  the fixtures directory (default: testdata/fixtures)
#   DEMO_KEEP=1       keep the work directory (image refs, zip, event, logs)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
extract=${EXTRACT:-$repo/bin/extract}
fixtures=${EXTRACT_FIXTURES:-$repo/testdata/fixtures}
rootfs=$fixtures/fortran-merged
function=momentum
bucket=momentum-demo

# ---------------------------------------------------------------- helpers ---
bold=$'\e[1m' dim=$'\e[2m' green=$'\e[32m' red=$'\e[31m' reset=$'\e[0m'
if [ ! -t 1 ] || [ -n "${NO_COLOR:-}" ]; then bold='' dim='' green='' red='' reset=''; fi

steps=() times=()
step_no=0 step_start=0 step_name=''
demo_start=$EPOCHREALTIME

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
step() {
	end_step
	step_no=$((step_no + 1))
	step_name=$1
	step_start=$EPOCHREALTIME
	printf '\n%s== %d. %s%s\n' "$bold" "$step_no" "$step_name" "$reset"
}
end_step() {
	if [ -n "$step_name" ]; then
		steps+=("$step_no. $step_name")
		times+=("$(elapsed "$step_start" "$EPOCHREALTIME")")
		step_name=''
	fi
}
say() { printf '%s%s%s\n' "$dim" "$*" "$reset"; }
show() { printf '%s$ %s%s\n' "$bold" "$*" "$reset"; }
run() {
	show "$@"
	"$@"
}
die() {
	printf '%sdemo: %s%s\n' "$red" "$*" "$reset" >&2
	exit 1
}
# no_progress drops extract's per-layer download progress (stderr), so the
# audience sees the report.
no_progress() { awk '!/^(indexing )?layer [0-9]+\/[0-9]+ sha256:/ { print; fflush() }'; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# Everything the demo starts is stopped, and its files removed, on any exit.
work=$(mktemp -d "${TMPDIR:-/tmp}/extract-demo.XXXXXX")
registry_pid='' moto_pid=''
cleanup() {
	local rc=$?
	set +e
	if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null; wait "$registry_pid" 2>/dev/null; fi
	if [ -n "$moto_pid" ]; then kill -- -"$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null; fi
	if [ "$rc" -ne 0 ]; then
		printf '%sdemo failed (exit %d) in step "%s"%s\n' "$red" "$rc" "${step_name:-setup}" "$reset" >&2
		for log in "$work"/*.log; do
			[ -s "$log" ] || continue
			printf '%s--- last lines of %s ---%s\n' "$dim" "${log##*/}" "$reset" >&2
			if [ "${log##*/}" = registry.log ]; then tail -n 4 "$log" >&2; else tail -n 15 "$log" >&2; fi
		done
	fi
	cd /
	if [ -n "${DEMO_KEEP:-}" ]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------ preflight ---
[ -x "$extract" ] || die "$extract not found: run 'make build' (or set EXTRACT)"
[ -x "$rootfs/usr/local/bin/momentum" ] || die "$rootfs not found: run 'make fixtures' (or set EXTRACT_FIXTURES)"
command -v moto_server >/dev/null || die "moto_server not found: run 'make deps'"
# The demo's own helper (registry, image build, S3 calls): a cached go build.
# Commands run in the work directory with extract and democtl on PATH, so
# the lines shown read as a user would type them.
mkdir -p "$work/bin"
(cd "$repo" && go build -o "$work/bin/democtl" ./internal/demo/cmd/democtl) || die "building democtl"
ln -s "$(cd "$(dirname "$extract")" && pwd)/$(basename "$extract")" "$work/bin/extract"
ln -s "$here/data" "$work/data"
export PATH=$work/bin:$PATH
cd "$work"

printf '%sextract — a Fortran program from a container image to AWS Lambda, offline%s\n' "$bold" "$reset"
say "$(extract --version 2>&1 | head -n 1)"

# ------------------------------------------------------------- 1. image ---
step "Build the momentum image without Docker, push it to a local registry"
say "layers as examples/fortran-momentum/Dockerfile makes them, from Debian packages"
democtl registry --addr-file "registry.addr" --log "registry.log" &
registry_pid=$!
for _ in $(seq 100); do
	[ -s "registry.addr" ] && break
	kill -0 "$registry_pid" 2>/dev/null || die "the registry exited"
	sleep 0.05
done
[ -s "registry.addr" ] || die "the registry did not start"
registry=$(cat "registry.addr")
image=$registry/demo/momentum:v1
say "registry: go-containerregistry pkg/registry on http://$registry"
show democtl push --rootfs "${rootfs#"$repo"/}" "$image"
democtl push --rootfs "$rootfs" "$image" >push.out
read -r image_digest image_bytes image_raw_bytes <"push.out"
echo "pushed $image"
echo "       $image_digest"
echo "       $(mb "$image_bytes") compressed, $(mb "$image_raw_bytes") uncompressed"

# ----------------------------------------------------------- 2. inspect ---
step "Inspect: the entrypoint, the layers, and what the program needs"
run extract inspect "$image" 2>&1 | no_progress

# ----------------------------------------------------------- 3. package ---
step "Package: the program and its closure, as a Lambda zip"
say "--format auto: a zip, unless the program names image paths a zip would move"
run extract package "$image" --format auto -o "momentum.zip" 2>&1 | no_progress
zip_bytes=$(stat -c %s "momentum.zip")
echo "image $(mb "$image_bytes") (compressed layers) -> zip $(mb "$zip_bytes")"

# ------------------------------------------------------------ 4. deploy ---
step "Deploy to AWS (moto): role, function, permission, S3 trigger"
# A free port can be taken between the check and moto's bind: moto then
# exits, and the demo tries another port.
moto_up() {
	local i
	for i in $(seq 60); do
		democtl wait --timeout 500ms "http://127.0.0.1:$moto_port/moto-api/" 2>/dev/null && return 0
		kill -0 "$moto_pid" 2>/dev/null || return 1
	done
	return 1
}
for attempt in 1 2 3; do
	moto_port=$(democtl freeport)
	setsid moto_server -H 127.0.0.1 -p "$moto_port" >>"moto.log" 2>&1 &
	moto_pid=$!
	moto_up && break
	kill -- -"$moto_pid" 2>/dev/null || true
	wait "$moto_pid" 2>/dev/null || true
	moto_pid=''
	[ "$attempt" -lt 3 ] || die "moto_server did not start (see moto.log)"
done
export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_SESSION_TOKEN=''
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE
say "moto_server on $AWS_ENDPOINT_URL (AWS_ENDPOINT_URL, dummy credentials, $AWS_REGION)"
run democtl mb "$bucket"
run extract deploy "momentum.zip" --function "$function" --bucket "$bucket"
say "again, as a CI re-run would: nothing to change"
show extract deploy "momentum.zip" --function "$function" --bucket "$bucket" --json
extract deploy "momentum.zip" --function "$function" --bucket "$bucket" --json >redeploy.json
grep '"changes"' redeploy.json || true
python3 - "redeploy.json" <<'EOF' || die "the second deploy was not a no-op"
import json, sys
doc = json.load(open(sys.argv[1]))
if "changes" not in doc:
    sys.exit("no \"changes\" in the deploy result")
if doc["changes"]:
    sys.exit("changes: %r, want none" % (doc["changes"],))
EOF
echo "${green}second deploy: no changes${reset}"

# -------------------------------------------------------------- 5. run ---
step "Upload sample.csv; run the deployed zip on the S3 event"
run democtl put data/sample.csv "s3://$bucket/input/sample.csv"
say "moto stores the trigger but cannot run functions: build the event S3 sends,"
say "from the bucket's notification configuration, and invoke the zip locally"
run democtl event --function "$function" "s3://$bucket/input/sample.csv" -o "event.json"
AWS_ENDPOINT_URL_S3=$AWS_ENDPOINT_URL run extract invoke "momentum.zip" --event "event.json"
run democtl get "s3://$bucket/output/sample.csv" "output.csv"
cat "output.csv"
diff -u data/expected.csv "output.csv" || die "output/sample.csv differs from data/expected.csv"
echo "${green}output/sample.csv == data/expected.csv${reset}"

# ------------------------------------------------------------ 6. image ---
step "The same program as a Lambda container image, files at their original paths"
run extract package "$image" --format image -o "oci:momentum-image" 2>&1 | no_progress
if [ "$(id -u)" = 0 ]; then
	say "run it as Lambda runs an image: root read-only, /tmp writable, uid 65534"
	show extract invoke "oci:momentum-image" --csv data/sample.csv
	extract invoke "oci:momentum-image" --csv data/sample.csv 2>&1 >"image-output.csv" | no_progress
	diff -u data/expected.csv "image-output.csv" || die "the image's output differs from data/expected.csv"
	echo "${green}image output == data/expected.csv${reset}"
else
	say "running an image package locally needs root (a chroot in a mount namespace): skipped"
fi

# ----------------------------------------------------------- 7. summary ---
end_step
total=$(elapsed "$demo_start" "$EPOCHREALTIME")
printf '\n%s== Summary%s\n' "$bold" "$reset"
width=5
for s in "${steps[@]}"; do [ "${#s}" -gt "$width" ] && width=${#s}; done
for i in "${!steps[@]}"; do
	printf '  %-*s %6ss\n' "$width" "${steps[$i]}" "${times[$i]}"
done
printf '  %-*s %6ss\n' "$width" "total" "$total"
echo "  image $(mb "$image_bytes") -> zip $(mb "$zip_bytes"); the Fortran program ran unchanged"
