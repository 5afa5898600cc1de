# geolesson: two commands do everything (see README.md)
#   make book   install, build the offline mirror's data, start it, execute and render the book
#               into _build/html, stop the mirror
#   make test   install, build the mirror's data, run the test suite (which builds the book too)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JB_FLAGS := --all -W -n --keep-going

.PHONY: book test install system-deps mirror vendor clean

book: install mirror vendor
	@set -euo pipefail; \
	if $(BIN)/geolesson mirror status >/dev/null; then started=0; else started=1; $(BIN)/geolesson mirror start; fi; \
	trap '[ $$started = 1 ] && $(BIN)/geolesson mirror stop' EXIT; \
	start=$$(date +%s); \
	$(BIN)/jupyter-book build . $(JB_FLAGS); \
	echo "book built in $$(( $$(date +%s) - start )) s: open _build/html/index.html"

# the rendered-site tests drive the system Chromium; only `make test` needs it
test: WITH_BROWSER := 1
test: install mirror vendor
	$(BIN)/python -m pytest

mirror: install
	$(BIN)/geolesson mirror build

# MathJax for offline pages (git-ignored vendor/, copied into the site; not under _static/)
vendor:
	@book/tools/vendor_mathjax.sh

install: system-deps $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python >= 3.11 is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1). Install python3.11 or set PYTHON=..."; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && [ -x "$$($(PYTHON) -c 'import sys; print(sys.executable)')" ] || \
	  { echo "error: the venv module is missing; on Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[book,test,ml]"
	touch $(STAMP)

# PostgreSQL + PostGIS for the mirror's STAC database, npm to vendor MathJax, Graphviz's `dot` for dask.visualize
# (chapter 3), Chromium for the rendered-site
# tests (Playwright drives /usr/bin/chromium; its own browser download is not used). Installed with apt where
# missing (directly as root, else with passwordless sudo); otherwise stop and say what to install.
system-deps:
	@set -euo pipefail; \
	have_postgis() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || \
	  { command -v pg_config >/dev/null && [ -f "$$(pg_config --sharedir)/extension/postgis.control" ]; }; }; \
	need=""; have_postgis || need="postgis"; command -v npm >/dev/null || need="$$need npm"; \
	command -v dot >/dev/null || need="$$need graphviz"; \
	[ "$(WITH_BROWSER)" != 1 ] || [ -x /usr/bin/chromium ] || need="$$need chromium"; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "error: missing:$$need, which cannot be installed without root."; \
	  echo "  Debian/Ubuntu: sudo apt-get install postgresql postgresql-postgis npm graphviz chromium   (or postgresql-<version>-postgis-3)"; \
	  echo "  conda:         conda env create -f environment.yml   (includes postgresql, postgis and graphviz; chromium still from the system)"; exit 1; fi; \
	if ! command -v apt-get >/dev/null; then \
	  echo "error: missing:$$need, and this system has no apt-get; use conda: conda env create -f environment.yml (Chromium: install it at /usr/bin/chromium)"; exit 1; fi; \
	echo "installing with apt-get:$$need ..."; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get update -qq; \
	command -v npm >/dev/null || $$SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null; \
	command -v dot >/dev/null || $$SUDO apt-get install -y -qq --no-install-recommends graphviz >/dev/null; \
	command -v dot >/dev/null || { echo "error: the dot program is still missing after apt-get install graphviz"; exit 1; }; \
	if [ "$(WITH_BROWSER)" = 1 ] && [ ! -x /usr/bin/chromium ]; then \
	  $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; \
	  [ -x /usr/bin/chromium ] || { echo "error: /usr/bin/chromium still missing after apt-get install chromium"; exit 1; }; fi; \
	have_postgis && exit 0; \
	$$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; \
	pgver=$$(ls /usr/lib/postgresql | sort -n | tail -1); \
	$$SUDO apt-get install -y -qq --no-install-recommends "postgresql-$$pgver-postgis-3" >/dev/null; \
	have_postgis || { echo "error: PostGIS still missing after apt-get install postgresql-$$pgver-postgis-3"; exit 1; }

clean:
	-$(BIN)/geolesson mirror stop
	rm -rf _build
