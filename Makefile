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

.PHONY: all deps models llamacpp build test test-all test-avx2 run bench bench-train bench-served bench-latency compare-served bench-kernels fuzz fuzz-smoke clean

all: build

# Installs what is missing: the Debian packages above, and Python's gguf package (the outside
# reference for dequantisation tests) and openai client (the server tests drive themis serve with it).
# A failed install (no network, no apt) stops here with one line; the tools' own output is in
# $(DEPS_LOG).
DEPS_LOG ?= /tmp/themis-deps.log
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		{ $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } >$(DEPS_LOG) 2>&1 \
		|| { echo "make deps: cannot install the Debian packages" $$missing "(no network or no apt?): install them, then run make again (details: $(DEPS_LOG))" >&2; exit 1; }; \
	fi
	@command -v $(PYTHON) >/dev/null || { echo "make deps: $(PYTHON) not found: install Python 3 (Debian: python3 python3-pip)" >&2; exit 1; }
	@$(PYTHON) -c "import gguf, numpy, openai" 2>/dev/null || $(PYTHON) -m pip install --quiet gguf numpy openai >$(DEPS_LOG) 2>&1 \
		|| { echo "make deps: cannot install the Python packages gguf numpy openai (no network?): pip install them, then run make again (details: $(DEPS_LOG))" >&2; exit 1; }

models:
	@scripts/fetch-models

# llama.cpp's Python binding and its OpenAI-compatible server in .venv (a source build, once):
# the peer the served-judge comparison and the speed benchmarks run beside themis.
llamacpp:
	@scripts/llamacpp-venv >/dev/null

build: deps
	$(SWIFT) build -c $(CONFIG)

# The gate CI runs: every command end to end at least once, within 40 minutes on a 2-core Zen 3
# including the build. Ends with each suite's time and the ten slowest tests.
# One build with the tests: a plain `swift build` first would compile every module a second time.
# One test at a time: every model test already uses both cores through the spinning thread pool,
# so running them together gains nothing, makes their timings meaningless and starves the rest.
test: deps models
	@scripts/check-test-deps
	$(SWIFT) build -c $(CONFIG) --build-tests
	SWIFT=$(SWIFT) scripts/run-tests -c $(CONFIG) --skip-build --no-parallel

# make test plus the slow real-model end-to-end cases (THEMIS_TEST_ALL=1), llama.cpp's server
# among them.
test-all: deps models llamacpp
	@scripts/check-test-deps
	$(SWIFT) build -c $(CONFIG) --build-tests
	THEMIS_TEST_ALL=1 SWIFT=$(SWIFT) scripts/run-tests -c $(CONFIG) --skip-build --no-parallel

# The CPU kernels built for AVX2 only (THEMIS_TARGET_CPU=znver3, into .build-avx2) against the
# scalar reference and llama.cpp's recorded logits: on an AVX-512 machine this checks the code an
# AVX2-only machine (Zen 3, most laptops) runs. CI runs it after make test.
AVX2_TESTS = CPUBackendTests|ReferenceModelTests|ArchitectureReferenceTests|PrefixReuseTests
test-avx2: deps models
	THEMIS_TARGET_CPU=znver3 $(SWIFT) build -c $(CONFIG) --scratch-path .build-avx2 --build-tests
	SWIFT=$(SWIFT) scripts/run-tests -c $(CONFIG) --scratch-path .build-avx2 --skip-build --no-parallel --filter "$(AVX2_TESTS)"

# Coverage-guided fuzzing of everything that reads untrusted input (libFuzzer + AddressSanitizer,
# its own build folder): FUZZ_SECONDS per target (default 600), FUZZ_JOBS targets at a time
# (default 1; one core each), seeds in Fuzz/corpus.
FUZZ_SECONDS ?= 600
FUZZ_JOBS ?= 1
fuzz: deps models
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_JOBS=$(FUZZ_JOBS) SWIFT=$(SWIFT) scripts/fuzz

# CI's short run: every seed and past crash replayed, then 15 s of fuzzing per target from a fixed
# random seed (the same mutations every run, so CI does not depend on luck).
fuzz-smoke: deps models
	FUZZ_SECONDS=15 FUZZ_SEED=1 SWIFT=$(SWIFT) scripts/fuzz

# The main job: judge the bundled examples (all ten scenarios, all three modes) with the default
# model on --device auto, printing each verdict and the summary.
run: models build
	.build/$(CONFIG)/themis judge --model smollm2-135m --device auto --input examples/judge-examples.jsonl \
		--keep-fields label --explain short | $(PYTHON) scripts/show-verdicts.py

# Side by side with llama.cpp (installed into .venv on first use), the three default models; on a
# machine with AVX-512 also both engines built for AVX2 only (themis for znver3 in .build-avx2,
# llama.cpp with its AVX-512 options off in .venv-avx2), in the same table.
bench: models build
	scripts/bench-vs-llamacpp

# LoRA training tokens/s and peak memory beside PyTorch + PEFT (.venv: torch, transformers, peft)
# on the same model, samples, LoRA settings and thread count.
# The anchor is PyTorch's CPU-only wheel (2.13.0+cpu, the last one on PyPI): the CUDA builds that
# pip picks by default (2.15.0+cu132) train 14% slower on this CPU (171.6 vs 199.2 tokens/s).
bench-train: models build llamacpp
	@$(CURDIR)/.venv/bin/python -c "import torch, peft; assert torch.__version__.endswith('+cpu')" 2>/dev/null \
		|| $(CURDIR)/.venv/bin/pip install --quiet "torch==2.13.0+cpu" peft transformers
	scripts/bench-train

# The judge on LLMBar-Natural with Qwen2.5-0.5B three ways (run here, through themis serve, through
# llama.cpp's server): agreement of verdicts and label probabilities.
compare-served: models build llamacpp
	scripts/served-judges compare

# Items/s of the judge run here and through themis serve --parallel 8 (--concurrency 1 and 8).
bench-served: models build
	scripts/served-judges bench

# Time to first token and the running streams' inter-token latency while a 2,000-token prompt
# arrives at themis serve (Qwen2.5-0.5B), for --prefill-chunk 512, 128 and 32.
bench-latency: models build
	scripts/served-judges latency

# The package-benchmark suite over every kernel on every device (a package of its own in
# Benchmarks/). Prefill shapes use THEMIS_BENCH_PREFILL tokens (lavapipe is slow: try 32).
bench-kernels: deps
	cd Benchmarks && $(SWIFT) package benchmark

clean:
	rm -rf .build Benchmarks/.build
