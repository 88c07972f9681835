# Themis: build, fetch models, test. `make test` and `make run` do all set-up on a fresh
# Debian 12 machine with Swift 6 installed.
SWIFT ?= swift
CONFIG ?= release
PYTHON ?= python3
export THEMIS_MODELS ?= $(HOME)/.cache/themis/models

.PHONY: all deps models build test run bench clean

all: build

# Python's gguf package is the outside reference for dequantisation tests.
deps:
	@$(PYTHON) -c "import gguf, numpy" 2>/dev/null || $(PYTHON) -m pip install --quiet gguf numpy

models:
	@scripts/fetch-models

build:
	$(SWIFT) build -c $(CONFIG)

test: deps models
	$(SWIFT) build -c $(CONFIG)
	$(SWIFT) test -c $(CONFIG)

run: models build
	.build/$(CONFIG)/themis generate --model smollm2-135m --device auto --temperature 0 --max-tokens 64 \
		--chat "Explain in two sentences what an LLM-as-a-judge is."

# Side by side with llama.cpp (installed into .venv on first use), both default models.
bench: models build
	scripts/bench-vs-llamacpp

clean:
	rm -rf .build
