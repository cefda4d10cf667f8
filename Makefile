# dlhw: `make demo` and `make test` work on a fresh clone, offline, on a CPU.
# Dependencies come from pyproject.toml, pinned by constraints.txt, installed by scripts/install.sh
# -- the Dockerfile runs the same script.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

DEMO_RUN ?= runs/demo/caption-transformer

.PHONY: install demo test test-fast lint bench docker-build docker-run docker-smoke docker-smoke-gpu gpu-check-plan clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/install.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	scripts/install.sh $(BIN)/python cpu,test,ray --editable
	touch $(STAMP)

demo: install
	$(BIN)/dlhw train caption-transformer --preset tiny --output-dir $(DEMO_RUN) --overwrite
	$(BIN)/dlhw evaluate $(DEMO_RUN)
	@echo
	@echo "run directory : $(DEMO_RUN)"
	@echo "metrics       : $(DEMO_RUN)/eval.json, $(DEMO_RUN)/metrics.jsonl"
	@echo "plots         : $(DEMO_RUN)/plots/"
	@echo "report        : $(DEMO_RUN)/report.md"

# The whole suite (slow tests included); pytest prints the ten slowest tests and the total time.
test: install
	$(BIN)/python -m pytest --durations=10

# Everything but the end-to-end recipe runs: under two minutes on 2 cores.
test-fast: install
	$(BIN)/python -m pytest -m "not slow" --durations=10

# Style, types, the import contracts (layers: cli -> families -> engine | batch -> pruning -> reports
# -> lm -> backends -> core -> config -> errors; and no family imports another: [tool.importlinter]
# in pyproject.toml), Dockerfile.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

docker-build:
	docker build -t dlhw:latest .

docker-run:
	docker run --rm --gpus all -v "$(CURDIR)/runs:/runs" dlhw:latest $(ARGS)

# Build the real Dockerfile on a local Debian base (CPU extra) and train, export and caption in
# the container; starts a private Docker daemon when none answers. Not part of `make test`.
docker-smoke:
	scripts/docker_smoke.sh

# The same with the GPU install set (onnxruntime-gpu, torch's CUDA wheels, bitsandbytes, ray; TensorRT
# is skipped: its libraries come from NVIDIA's index): checks the packages, the providers, the loader
# path and `dlhw env` in the container. Needs no GPU and runs no CUDA. Downloads several GB.
docker-smoke-gpu:
	scripts/docker_smoke.sh --gpu

# The prepared GPU check (scripts/gpu_check.py; README, Testing): fetch the wheel sets a GPU machine
# lacks (.gpu-wheels/, each <= 60 MiB) and print the steps, the gpu tests and one command per set.
gpu-check-plan: install
	scripts/gpu_wheels.sh
	$(BIN)/python scripts/gpu_check.py --dry-run

bench: install
	$(BIN)/python benchmarks/caption_feature_cache.py
	$(BIN)/python benchmarks/chat_padding.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info
