#!/usr/bin/env bash
# make docker-smoke: build the real Dockerfile on a local Debian base with the CPU extra, then
# train, export and caption in the container as its non-root user, and check the files on the host.
# make docker-smoke-gpu (--gpu): build it with the GPU install set instead (onnxruntime-gpu with the
# CUDA and cuDNN wheels, torch's CUDA wheels, bitsandbytes, ray where pyproject.toml has that extra;
# not TensorRT, whose libraries come from NVIDIA's index) and check in the container, without a GPU,
# what can be checked without one: the packages, the providers, the loader path, `dlhw env`.
#
#   scripts/docker_smoke.sh            # needs a Docker daemon, or root + dockerd to start one
#   scripts/docker_smoke.sh --gpu
#
# - Daemon: the one that answers (DOCKER_HOST or the default socket); else, as root, a private
#   dockerd with its data and exec roots in a temporary directory, no iptables, no bridge,
#   stopped by its PID at the end. Builds use --network=host, the containers --network=none.
# - Base: no registry is needed. dlhw-base:bookworm is imported from a Debian rootfs that
#   `debootstrap --variant=minbase` builds once from the host's apt mirror.
# - Cached in ${XDG_CACHE_HOME:-~/.cache}/dlhw/docker-smoke/: that rootfs, and dlhw-cache/, the
#   container's /cache/dlhw (the tiny encoder the caption recipes pretrain once).
# - pip inside the build reaches what the host's pip reaches: where the host's pip trusts a CA
#   bundle or names an http(s) index, a derived base carries that bundle and an /etc/pip.conf.
# Where there is no daemon and none can be started, it prints one line saying why and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

# The install sets the two smokes build (EXTRAS of the Dockerfile). The GPU set leaves out the
# tensorrt extra: tensorrt-cu13-libs downloads its libraries from pypi.nvidia.com at install time.
CPU_EXTRAS=cpu
GPU_EXTRAS=gpu,ray
TENSORRT_LINE="TensorRT: skipped -- the tensorrt extra (tensorrt-cu13) installs its libraries from NVIDIA's index (pypi.nvidia.com), which this build does not reach; the GPU image's default EXTRAS installs it"

case "${1:-}" in
    "") MODE=cpu NAME=docker-smoke ;;
    --gpu) MODE=gpu NAME=docker-smoke-gpu ;;
    *) echo "usage: $0 [--gpu]" >&2; exit 2 ;;
esac
SUITE=bookworm
BASE_IMAGE=dlhw-base:$SUITE
if [ "$MODE" = gpu ]; then IMAGE=${DLHW_SMOKE_IMAGE:-dlhw:smoke-gpu}; else IMAGE=${DLHW_SMOKE_IMAGE:-dlhw:smoke}; fi
CACHE_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/dlhw/docker-smoke
ROOTFS_TAR=$CACHE_DIR/debian-$SUITE-minbase.tar

skip() { echo "$NAME: skipped: $*"; exit 0; }
say() { printf '\n=== %s\n' "$*"; }

work=""
daemon_pid=""
containers="dlhw-smoke-$$"
cleanup() {
    local rc=$?
    if [ -n "$daemon_pid" ]; then
        echo "stopping the private dockerd (pid $daemon_pid)"
        kill "$daemon_pid" 2>/dev/null || true
        for _ in $(seq 60); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.5; done
        if kill -0 "$daemon_pid" 2>/dev/null; then kill -9 "$daemon_pid" 2>/dev/null || true; fi
        wait "$daemon_pid" 2>/dev/null || true
        # What dockerd leaves mounted under its roots (the network namespace handle).
        awk -v w="$work/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r \
            | while read -r mount; do umount "$mount" || true; done
        [ "$rc" = 0 ] || { echo "--- last lines of dockerd.log"; tail -n 20 "$work/dockerd.log" || true; }
    elif docker info >/dev/null 2>&1; then
        # A daemon we did not start: remove only this run's containers (all run with --rm anyway).
        local left
        left=$(docker ps -aq --filter "name=$containers-" || true)
        [ -z "$left" ] || docker rm -f $left >/dev/null || true
    fi
    if [ -n "$work" ]; then rm -rf "$work" || echo "could not remove $work"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STEPS=()
# step NAME COMMAND...: run it with its output shown, record its wall time, stop on failure.
step() {
    local name=$1 t0 t1 rc=0
    shift
    say "$name"
    t0=$(date +%s.%N)
    "$@" || rc=$?
    t1=$(date +%s.%N)
    local seconds
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" != 0 ]; then
        echo "$NAME: FAILED at '$name' (exit $rc) after ${seconds}s"
        exit 1
    fi
    STEPS+=("$(printf '%-62s %8ss' "$name" "$seconds")")
    echo "--- $name: ${seconds}s"
}

# ---- a daemon -------------------------------------------------------------------------------
command -v docker >/dev/null || skip "no docker client (apt-get install docker.io)"
if ! docker info >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || skip "no Docker daemon answers and starting one needs root"
    command -v dockerd >/dev/null || skip "no Docker daemon answers and dockerd is not installed (apt-get install docker.io)"
    work=$(mktemp -d "${TMPDIR:-/tmp}/dlhw-docker-smoke.XXXXXX")
    dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/dockerd.pid" \
        -H "unix://$work/docker.sock" --iptables=false --bridge=none --ip-forward=false \
        >"$work/dockerd.log" 2>&1 &
    daemon_pid=$!
    export DOCKER_HOST="unix://$work/docker.sock"
    for _ in $(seq 120); do
        docker info >/dev/null 2>&1 && break
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
        reason=$(grep -v '^\s*$' "$work/dockerd.log" | tail -n 1 | cut -c1-200)
        skip "could not start a Docker daemon: ${reason:-no answer within 60 s}"
    fi
    echo "started a private dockerd (pid $daemon_pid) in $work"
else
    work=$(mktemp -d "${TMPDIR:-/tmp}/dlhw-docker-smoke.XXXXXX")
    echo "using the Docker daemon at ${DOCKER_HOST:-the default socket}"
fi
docker version --format 'client {{.Client.Version}}, daemon {{.Server.Version}}'

# ---- the Debian base, built once ------------------------------------------------------------
# The first `deb` mirror the host's apt uses for $SUITE (one-line or deb822 sources); empty means
# debootstrap's default.
debian_mirror() {
    python3 - "$SUITE" <<'PY'
import glob, re, sys
suite = sys.argv[1]
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        words = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite and "://" in words[1]:
            sys.exit(print(words[1]))
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        fields = dict(re.findall(r"^([\w-]+):\s*(.*)$", stanza, flags=re.M))
        if ("deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split()
                and fields.get("Enabled", "yes") != "no"):
            sys.exit(print(fields["URIs"].split()[0]))
PY
}

build_rootfs() {
    local mirror rootfs=$work/rootfs
    mirror=$(debian_mirror)
    echo "debootstrap --variant=minbase $SUITE from ${mirror:-the default mirror of debootstrap}"
    debootstrap --variant=minbase "$SUITE" "$rootfs" ${mirror:+"$mirror"} >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log"; return 1; }
    mkdir -p "$CACHE_DIR"
    tar -C "$rootfs" -c . >"$ROOTFS_TAR.part" && mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    rm -rf "$rootfs"
    ls -l "$ROOTFS_TAR"
}

if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "base image $BASE_IMAGE: present"
else
    if [ ! -s "$ROOTFS_TAR" ]; then
        [ "$(id -u)" = 0 ] || skip "no $BASE_IMAGE image and debootstrap needs root"
        command -v debootstrap >/dev/null || skip "no $BASE_IMAGE image and debootstrap is not installed (apt-get install debootstrap)"
        step "debootstrap $SUITE (once; cached)" build_rootfs
    else
        echo "Debian rootfs: cached at $ROOTFS_TAR"
    fi
    step "import $BASE_IMAGE" docker import "$ROOTFS_TAR" "$BASE_IMAGE"
fi

# ---- what the host's pip trusts and where it looks ------------------------------------------
pip_setting() {  # pip_setting ENV_NAME CONFIG_KEY: the environment wins over the config files
    local value=${!1:-}
    [ -n "$value" ] || value=$(python3 -m pip config get "global.$2" 2>/dev/null || true)
    printf '%s' "$value"
}
http_only() { tr ' ' '\n' | grep -E '^https?://' | paste -sd' ' - || true; }

build_base=$BASE_IMAGE
pip_ca=$(pip_setting PIP_CERT cert)
pip_index=$(pip_setting PIP_INDEX_URL index-url | http_only)
pip_extra=$(pip_setting PIP_EXTRA_INDEX_URL extra-index-url | http_only)
pip_trusted=$(pip_setting PIP_TRUSTED_HOST trusted-host)
pip_timeout=$(pip_setting PIP_DEFAULT_TIMEOUT timeout)
[ -z "$pip_ca" ] || [ -r "$pip_ca" ] || pip_ca=""
if [ -n "$pip_ca$pip_index$pip_extra$pip_trusted" ]; then
    derived() {
        local ctx=$work/host-pip
        mkdir -p "$ctx"
        {
            echo "[global]"
            [ -z "$pip_ca" ] || echo "cert = /etc/dlhw-host-pip-ca.pem"
            [ -z "$pip_index" ] || echo "index-url = $pip_index"
            [ -z "$pip_extra" ] || echo "extra-index-url = $pip_extra"
            [ -z "$pip_trusted" ] || echo "trusted-host = $pip_trusted"
            [ -z "$pip_timeout" ] || echo "timeout = $pip_timeout"
        } >"$ctx/pip.conf"
        if [ -n "$pip_ca" ]; then cp "$pip_ca" "$ctx/ca.pem"; else : >"$ctx/ca.pem"; fi
        printf 'FROM %s\nCOPY ca.pem /etc/dlhw-host-pip-ca.pem\nCOPY pip.conf /etc/pip.conf\n' \
            "$BASE_IMAGE" >"$ctx/Dockerfile"
        echo "host pip: CA bundle ${pip_ca:-none}; index ${pip_index:-the default of pip}${pip_extra:+; extra $pip_extra}"
        echo "/etc/pip.conf in $BASE_IMAGE-hostpip:"; sed 's/^/    /' "$ctx/pip.conf"
        docker build -q --network=none -t "$BASE_IMAGE-hostpip" "$ctx"
    }
    step "derive $BASE_IMAGE-hostpip (host pip CA + index)" derived
    build_base=$BASE_IMAGE-hostpip
else
    echo "host pip: no extra CA bundle or index; the build uses pip's defaults"
fi

# ---- the real Dockerfile --------------------------------------------------------------------
proxy_args=()
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
    [ -z "${!var:-}" ] || proxy_args+=(--build-arg "$var")
done
# The extras of the set that pyproject.toml defines; one it lacks is named and left out.
defined_extras() {
    python3 - "$1" <<'PY'
import sys, tomllib
defined = tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]
wanted = sys.argv[1].split(",")
for extra in wanted:
    if extra not in defined:
        print(f"extra {extra!r}: not in pyproject.toml, so not installed", file=sys.stderr)
print(",".join(extra for extra in wanted if extra in defined))
PY
}
if [ "$MODE" = gpu ]; then extras=$(defined_extras "$GPU_EXTRAS"); else extras=$(defined_extras "$CPU_EXTRAS"); fi
[ "$MODE" != gpu ] || echo "$TENSORRT_LINE"
step "docker build (BASE_IMAGE=$build_base, EXTRAS=$extras)" \
    docker build --network=host --build-arg BASE_IMAGE="$build_base" --build-arg EXTRAS="$extras" \
        "${proxy_args[@]}" -t "$IMAGE" .
size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
size_line=$(awk -v b="$size" -v i="$IMAGE" 'BEGIN { printf "image %s: %.2f GB (%.0f bytes)", i, b / 1e9, b }')
echo "$size_line"

# ---- in the container, as its user, offline, with a host directory at /runs ----------------
# /cache/dlhw comes from the host too, so the tiny encoder the caption recipes pretrain once
# (minutes on 2 cores) is reused by the next smoke run.
runs=$work/runs
dlhw_cache=$CACHE_DIR/dlhw-cache
mkdir -p "$runs" "$dlhw_cache"
user=$(docker image inspect -f '{{.Config.User}}' "$IMAGE")
for dir in "$runs" "$dlhw_cache"; do
    chown "${user:-1000:1000}" "$dir" 2>/dev/null || chmod 0777 "$dir"
done
echo "host directories: $runs -> /runs, $dlhw_cache -> /cache/dlhw"
in_container() {  # in_container [docker run options...] -- ARGS...
    local opts=()
    while [ "$1" != "--" ]; do opts+=("$1"); shift; done
    shift
    docker run --rm --name "$containers-$(date +%s%N)" --network=none -e HF_HUB_OFFLINE=1 \
        -v "$runs:/runs" -v "$dlhw_cache:/cache/dlhw" "${opts[@]}" "$IMAGE" "$@"
}
check_user() {
    local uid
    uid=$(in_container --entrypoint id -- -u)
    echo "id -u: $uid"
    [ "$uid" != 0 ]
}
check_ort() {
    local out
    out=$(in_container --entrypoint python -- -c '
import onnxruntime
from onnxruntime.capi import build_and_package_info as info
print(info.package_name, onnxruntime.__version__, onnxruntime.get_available_providers())')
    echo "import onnxruntime: $out"
    [ "${out%% *}" = onnxruntime ]
}
make_images() {
    in_container --entrypoint python -- -c '
from pathlib import Path
from PIL import Image, ImageDraw
out = Path("/runs/images"); out.mkdir()
for i, (colour, shape) in enumerate([("red", "circle"), ("blue", "square"), ("green", "circle"), ("yellow", "square")]):
    image = Image.new("RGB", (96, 96), "white")
    draw = ImageDraw.Draw(image)
    box = (8 + 10 * i, 8 + 6 * i, 48 + 10 * i, 48 + 6 * i)
    (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
    image.save(out / f"{i:02d}_{colour}_{shape}.png")
print("\n".join(sorted(p.name for p in out.iterdir())))'
}
step "id -u (not root)" check_user
step "pip check" in_container --entrypoint pip -- check
if [ "$MODE" = gpu ]; then
    # scripts/docker_smoke_gpu.py, on the image's python's stdin: one check per step.
    gpu_check() { in_container -i --entrypoint python -- - "$1" <scripts/docker_smoke_gpu.py; }
    step "what was installed (versions, sizes)" gpu_check packages
    step "import onnxruntime: onnxruntime-gpu, CUDAExecutionProvider listed" gpu_check ort
    step "loader path: ldd of ORT's CUDA / TensorRT provider libraries" gpu_check loader
    step "InferenceSession asking for CUDA (no GPU here)" gpu_check session
    step "torch: the CUDA build" gpu_check torch
    step "import bitsandbytes; ray; tensorrt" gpu_check extras
    step "dlhw env" in_container -- env
    say "$NAME: passed"
    printf '%s\n' "${STEPS[@]}"
    echo "total: $SECONDS s"
    echo "$size_line"
    echo "$TENSORRT_LINE"
    echo "CUDA: not run -- this machine has no GPU; what needs one (--gpus all, CUDA kernels, TensorRT engines) is unproven here"
    exit 0
fi
step "python -c 'import onnxruntime' (the CPU package)" check_ort
step "dlhw env" in_container -- env
step "dlhw train caption-rnn --preset tiny" \
    in_container -- train caption-rnn --preset tiny --output-dir /runs/smoke
step "dlhw export /runs/smoke --onnx" in_container -- export /runs/smoke --onnx
step "generate 4 images" make_images
step "dlhw caption --backend onnxruntime" \
    in_container -- caption /runs/images --model /runs/smoke/export/onnx --backend onnxruntime \
        --out /runs/captions.jsonl

# ---- on the host ----------------------------------------------------------------------------
check_host() {
    python3 - "$runs" <<'PY'
import json, sys
from pathlib import Path
runs = Path(sys.argv[1])
run = runs / "smoke"
for name in ("config.yaml", "metrics.jsonl", "report.md", "model"):
    assert (run / name).exists(), f"missing {run / name}"
print(f"run directory {run}: " + ", ".join(sorted(p.name for p in run.iterdir())))
export = run / "export" / "onnx" / "export.json"
files = sorted(p.name for p in export.parent.iterdir())
assert export.is_file() and any(f.endswith(".onnx") for f in files), f"no export in {export.parent}: {files}"
print(f"export {export.parent}: " + ", ".join(files))
records = [json.loads(line) for line in (runs / "captions.jsonl").read_text().splitlines()]
images = sorted(p.name for p in (runs / "images").iterdir())
assert sorted(Path(r["path"]).name for r in records) == images, (records, images)
assert all(r["status"] == "ok" and r["caption"] for r in records), records
print(f"captions {runs / 'captions.jsonl'}: {len(records)} of {len(images)} images")
for r in records:
    print(f"    {Path(r['path']).name}: {r['caption']}")
PY
}
step "files on the host" check_host

say "$NAME: passed"
printf '%s\n' "${STEPS[@]}"
echo "total: $SECONDS s"
echo "$size_line"
