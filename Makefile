# Themis: build, fetch models, test. `make test` and `make run` do all set-up on a fresh
# Debian 12 machine with Swift 6 installed.
SWIFT ?= swift
CONFIG ?= release
PYTHON ?= python3
export THEMIS_MODELS ?= $(HOME)/.cache/themis/models

# Debian packages: Vulkan headers (the loader itself is opened at run time), glslang (the build
# compiles Shaders/ to SPIR-V), spirv-tools (the tests validate it) and lavapipe, the CPU Vulkan
# driver the tests run the Vulkan backend on.
APT_PACKAGES = libvulkan-dev glslang-tools spirv-tools mesa-vulkan-drivers
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps models build test run bench bench-kernels clean

all: build

# Installs what is missing: the Debian packages above, and Python's gguf package (the outside
# reference for dequantisation tests) and openai client (the server tests drive themis serve with it).
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing $$missing"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi
	@$(PYTHON) -c "import gguf, numpy, openai" 2>/dev/null || $(PYTHON) -m pip install --quiet gguf numpy openai

models:
	@scripts/fetch-models

build: deps
	$(SWIFT) build -c $(CONFIG)

test: build models
	$(SWIFT) test -c $(CONFIG)

# The main job: judge the bundled examples (all ten scenarios, all three modes) with the default
# model on --device auto, printing each verdict and the summary.
run: models build
	.build/$(CONFIG)/themis judge --model smollm2-135m --device auto --input examples/judge-examples.jsonl \
		--keep-fields label --explain short | $(PYTHON) scripts/show-verdicts.py

# Side by side with llama.cpp (installed into .venv on first use), both default models.
bench: models build
	scripts/bench-vs-llamacpp

# The package-benchmark suite over every kernel on every device (a package of its own in
# Benchmarks/). Prefill shapes use THEMIS_BENCH_PREFILL tokens (lavapipe is slow: try 32).
bench-kernels: deps
	cd Benchmarks && $(SWIFT) package benchmark

clean:
	rm -rf .build Benchmarks/.build
