# geolesson: two commands do everything (see README.md)
#   make book   install, build the offline mirror's data, start it, execute and render the book
#               into _build/html, stop the mirror
#   make test   install, build the mirror's data, run the test suite (which builds the book too)
#   make lab    quick start: install, build and start the mirror, open chapter 1 in JupyterLab
#
# Inside an active conda environment (CONDA_PREFIX set, other than base; see environment.yml)
# everything is installed into that environment and PostgreSQL/PostGIS, Node and Graphviz
# must come from it: no virtual environment, never apt-get or sudo. Otherwise a .venv is
# made and missing system packages come from apt-get (as root or with password-less sudo).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
ifneq ($(and $(CONDA_PREFIX),$(filter-out base,$(CONDA_DEFAULT_ENV))),)
CONDA := 1
BIN := $(CONDA_PREFIX)/bin
STAMP := $(CONDA_PREFIX)/.geolesson-installed
else
CONDA :=
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
endif
JB_FLAGS := --all -W -n --keep-going
comma := ,
step = @echo "==> [$$(date +%H:%M:%S)] $(1)"

.PHONY: book test lab install install-step system-deps mirror vendor clean

# the kernels get a TMPDIR of their own, removed after the build, so that what they leave
# (a failed chapter's working folder, Dask's scratch space) does not pile up in /tmp
book: install mirror vendor
	$(call step,4/4 book: start the mirror$(comma) execute and render every page (a few minutes))
	@set -euo pipefail; \
	if $(BIN)/geolesson mirror status >/dev/null; then started=0; else started=1; $(BIN)/geolesson mirror start; fi; \
	tmp=$$(mktemp -d -t geolesson-book-XXXXXX); \
	trap 'rm -rf "$$tmp"; [ $$started = 1 ] && $(BIN)/geolesson mirror stop' EXIT; \
	start=$$(date +%s); \
	TMPDIR="$$tmp" $(BIN)/jupyter-book build . $(JB_FLAGS); \
	echo "book built in $$(( $$(date +%s) - start )) s: open _build/html/index.html"

# The quick start: the first figure of chapter 1 without executing the whole book. Building
# the mirror's data dominates the first time (a few minutes); the mirror keeps running
# afterwards (`.venv/bin/geolesson mirror stop`). JupyterLab refuses to run as root unless
# told (--allow-root); a container's or a cloud VM's shell often is root.
lab: install mirror
	$(call step,lab: JupyterLab on chapter 1)
	@PYTHON=$(BIN)/python book/tools/setup_lab.sh
	@$(BIN)/geolesson mirror start
	$(BIN)/jupyter lab $$([ "$$(id -u)" = 0 ] && echo --allow-root) book/01_search.md

# the rendered-site tests drive the system Chromium; only `make test` needs it
test: WITH_BROWSER := 1
# two workers: the book's build and browser tests in one, every other test in the other on a
# private copy of the mirror (tests/conftest.py); the 30 slowest tests are listed at the end,
# so that a slow run shows which worker's tests took the time
test: install mirror vendor
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=30

mirror: install
	$(call step,2/4 mirror: the offline mirror's data (simulated once, a few minutes; skipped when up to date))
	$(BIN)/geolesson mirror build

# MathJax for offline pages (git-ignored vendor/, copied into the site; not under _static/)
vendor:
	$(call step,3/4 vendor: MathJax for offline pages)
	@book/tools/vendor_mathjax.sh

install: install-step system-deps $(STAMP)

install-step:
	$(call step,1/4 install: system packages where missing$(comma) then the Python packages into $(BIN:/bin=))

ifeq ($(CONDA),1)
$(STAMP): pyproject.toml environment.yml
	@[ -x $(BIN)/python ] || { echo "error: the conda environment $(CONDA_PREFIX) has no python; conda env create -f environment.yml"; exit 1; }
	$(BIN)/python -m pip install --quiet -e ".[book,lab,test,ml]"
	touch $(STAMP)
else
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "error: Python >= 3.11 is needed; $(PYTHON) is $$($(PYTHON) --version 2>&1). Install python3.11 or set PYTHON=..."; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 && [ -x "$$($(PYTHON) -c 'import sys; print(sys.executable)')" ] || \
	  { echo "error: the venv module is missing; on Debian/Ubuntu: sudo apt-get install python3-venv"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[book,lab,test,ml]"
	touch $(STAMP)
endif

# PostgreSQL + PostGIS for the mirror's STAC database, npm to vendor MathJax, Graphviz's `dot` for dask.visualize
# (chapter 3), Chromium for the rendered-site
# tests (Playwright drives /usr/bin/chromium; its own browser download is not used). Installed with apt where
# missing (directly as root, else with passwordless sudo); otherwise stop and say what to install.
system-deps:
	@set -euo pipefail; \
	if [ "$(CONDA)" = 1 ]; then export PATH="$(BIN):$$PATH"; \
	  have_postgis() { [ -x "$(BIN)/pg_config" ] && [ -f "$$($(BIN)/pg_config --sharedir)/extension/postgis.control" ]; }; \
	else have_postgis() { ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || \
	  { command -v pg_config >/dev/null && [ -f "$$(pg_config --sharedir)/extension/postgis.control" ]; }; }; fi; \
	need=""; have_postgis || need="postgis"; command -v npm >/dev/null || need="$$need npm"; \
	command -v dot >/dev/null || need="$$need graphviz"; \
	[ "$(WITH_BROWSER)" != 1 ] || [ -x /usr/bin/chromium ] || need="$$need chromium"; \
	if [ -z "$$need" ]; then exit 0; fi; \
	if [ "$(CONDA)" = 1 ]; then \
	  echo "error: missing in the conda environment $(CONDA_PREFIX):$$need."; \
	  echo "  conda env update -n $(CONDA_DEFAULT_ENV) -f environment.yml   (postgresql, postgis, nodejs and graphviz come from it)"; \
	  echo "  chromium is only needed by make test: install it at /usr/bin/chromium with the system's package manager"; \
	  exit 1; fi; \
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
