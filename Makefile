# Soft ATM developer tasks. `make` alone lists them.

.DEFAULT_GOAL := help
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c

PYTHON3 ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Rewritten after each successful install, so the venv is reinstalled when pyproject.toml changes.
VENV_STAMP := $(VENV)/.softatm-installed
PORT ?= 8000
NAME ?=
ARGS ?=
LINT_PATHS := kiosk agent_portal ledger tests bench migrations deploy
# Message catalogues: the .po files are the source, the compiled .mo files are built (not in git).
TRANSLATIONS := kiosk/translations
PO_FILES := $(wildcard $(TRANSLATIONS)/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)
# Beyond Babel's defaults (_, gettext, ngettext…). Also in babel.cfg, which Babel < 2.18 ignores.
BABEL_KEYWORDS := -k lazy_gettext -k lazy_ngettext:1,2
# Babel skips folders whose names start with "_" unless told which to skip: templates/_macros
# holds messages too, so only hidden folders and caches are skipped.
BABEL_IGNORE_DIRS := --ignore-dirs=".* __pycache__"

.PHONY: help venv browser translations translations-update run test lint typecheck pytest bench prove assurance clean

help: ## List the targets
	@echo "Soft ATM: make TARGET"
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  %-19s %s\n", $$1, $$2}'

venv: $(VENV_STAMP) ## Create .venv and install Soft ATM with its dev tools (again if pyproject.toml changed)

$(VENV_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON3) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

browser: ## Install Debian's Chromium for the browser tests when missing (needs root)
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then \
			DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Chromium is missing and this is not root: the browser tests will be skipped."; \
		fi; }

translations: $(MO_FILES) ## Compile the message catalogues (.po to .mo) that changed

$(TRANSLATIONS)/%/LC_MESSAGES/messages.mo: $(TRANSLATIONS)/%/LC_MESSAGES/messages.po | $(VENV_STAMP)
	$(BIN)/pybabel compile --statistics -d $(TRANSLATIONS) -l $*

translations-update: venv ## Extract the messages again and merge them into each .po (then translate)
	$(BIN)/pybabel extract -F babel.cfg $(BABEL_KEYWORDS) $(BABEL_IGNORE_DIRS) --add-location=file \
		--project=softatm --version="$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("softatm"))')" \
		--header-comment="# Soft ATM: the message ids are the Vietnamese text." \
		-o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --previous \
		--ignore-obsolete
	@echo "Now translate the new and fuzzy entries; \`make translations\` compiles them."

run: venv translations ## Upgrade the database, load demo data, serve on http://127.0.0.1:8000 (PORT=...)
	@# Every gunicorn worker must sign sessions with the same key: without SECRET_KEY, make one
	@# for this run (sessions end when it stops).
	export SECRET_KEY="$${SECRET_KEY:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(48))')}"; \
	$(BIN)/softatm db-upgrade; \
	$(BIN)/softatm demo-data; \
	PORT=$(PORT) exec $(BIN)/gunicorn -c deploy/gunicorn.conf.py kiosk.wsgi:app

test: venv browser translations ## Lint, type-check, then run the whole test suite
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory pytest

lint: venv ## Check style and formatting with ruff
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

typecheck: venv ## Type-check with mypy (ledger strict, the rest as configured)
	$(BIN)/mypy ledger kiosk agent_portal bench

pytest: venv translations ## Run the tests only
	$(BIN)/pytest

bench: venv ## Run the benchmarks (one of them with NAME=ledger)
	$(BIN)/python -m bench $(NAME)

prove: venv ## Run the proof harnesses (one with NAME=crash; its options with ARGS="--kills 60")
	$(BIN)/python -m bench.proofs $(NAME) $(ARGS)

assurance: venv ## Run every proof harness and regenerate docs/assurance.md from their figures
	$(BIN)/python -m bench.proofs.report

clean: ## Remove caches and build artefacts (keeps .venv and the var/ database)
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print \
		| xargs rm -rf
