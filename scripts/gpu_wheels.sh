#!/usr/bin/env bash
# The Python wheels a GPU check machine lacks, fetched here into sets of at most 60 MiB each: such
# machines have no network, their own torch (2.11, CUDA 13) and Python (3.12), and take at most 64 MiB
# of files per command, so `scripts/gpu_check.py --install SET` installs one set per command.
#
#   scripts/gpu_wheels.sh [DIR]          # default DIR: .gpu-wheels (ignored by git)
#   GPU_PYTHON=3.11 scripts/gpu_wheels.sh  # for a machine with another Python
#
# Sets (versions from constraints.txt, so the check runs the stack `make install` runs):
#   bitsandbytes/  4-bit / 8-bit loading (QLoRA)
#   stack/         transformers, huggingface-hub, tokenizers, peft, accelerate, TRL, datasets (+ dill,
#                  multiprocess), seqeval, rouge-score, bert-score, nltk, soundfile, soxr, jiwer (+ rapidfuzz),
#                  dtw-python, and
#                  pycocoevalcap without its Java tools and paraphrase data (dlhw uses its CIDEr only)
# What the machine already has at a version dlhw accepts (torch, numpy, onnx, onnxruntime, pyarrow,
# matplotlib, click, ...) is not carried. Prints each set's files and size; exits 1 if a set is over 60 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.gpu-wheels}
pyver=${GPU_PYTHON:-3.12}
python=${PYTHON:-python3}
[ -x .venv/bin/python ] && python=${PYTHON:-.venv/bin/python}
limit=$((60 * 1024 * 1024))

binary=(--no-deps --only-binary=:all: --python-version "$pyver" --implementation cp
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
pin() {  # pin NAME...: NAME==VERSION from constraints.txt
    local name version
    for name in "$@"; do
        version=$(awk -F'==' -v n="$name" 'tolower($1) == tolower(n) { print $2 }' constraints.txt)
        if [ -n "$version" ]; then echo "$name==$version"; else echo "$name"; fi
    done
}

rm -rf "$dir.part"
mkdir -p "$dir.part/bitsandbytes" "$dir.part/stack"
"$python" -m pip download -q "${binary[@]}" -d "$dir.part/bitsandbytes" $(pin bitsandbytes)
"$python" -m pip download -q "${binary[@]}" -d "$dir.part/stack" \
    $(pin transformers huggingface-hub tokenizers peft accelerate trl datasets dill multiprocess \
          bert-score nltk soundfile soxr jiwer rapidfuzz dtw-python pycocoevalcap)
# rouge-score and seqeval publish only source archives: build their (pure-Python) wheels here
"$python" -m pip wheel -q --no-deps -w "$dir.part/stack" $(pin rouge-score seqeval)
# pycocoevalcap's wheel is 100 MiB of Java jars and paraphrase tables; dlhw imports its CIDEr scorer only
"$python" - "$dir.part/stack" <<'PY'
import base64, hashlib, sys, zipfile
from pathlib import Path

(wheel,) = Path(sys.argv[1]).glob("pycocoevalcap-*.whl")
kept = {}
with zipfile.ZipFile(wheel) as source:
    for info in source.infolist():
        if not info.filename.endswith((".jar", ".gz", ".jar.gz", "RECORD")) and "/data/" not in info.filename:
            kept[info.filename] = source.read(info)
record_name = next(n for n in zipfile.ZipFile(wheel).namelist() if n.endswith(".dist-info/RECORD"))
rows = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}"
        for name, data in kept.items()]
kept[record_name] = ("\n".join(rows + [f"{record_name},,"]) + "\n").encode()
wheel.unlink()
with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as target:
    for name, data in kept.items():
        target.writestr(name, data)
print(f"{wheel.name}: {len(kept)} files kept (Java tools and data dropped), {wheel.stat().st_size / 2**20:.2f} MiB")
PY
rm -rf "$dir"
mv "$dir.part" "$dir"

status=0
for set in "$dir"/*/; do
    bytes=$(du -cb "$set"*.whl | tail -n 1 | cut -f1)
    printf '%s: %d wheels, %.1f MiB\n' "${set%/}" "$(ls "$set"*.whl | wc -l)" "$(echo "$bytes / 1048576" | bc -l)"
    for wheel in "$set"*.whl; do printf '    %-90s %6.2f MiB\n' "$(basename "$wheel")" "$(echo "$(stat -c %s "$wheel") / 1048576" | bc -l)"; done
    if [ "$bytes" -gt "$limit" ]; then echo "    over 60 MiB: split this set"; status=1; fi
done
exit "$status"
