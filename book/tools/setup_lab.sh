#!/bin/bash
# Set up JupyterLab for the book's chapters, for the Python environment that runs it:
#   - open Markdown and MyST files (the chapters) as notebooks, with jupytext, so that
#     jupyterlab-myst renders their markdown cells (admonitions, exercises, {eval} values);
#   - fetch no news and check for no updates (the book runs offline, e.g. in a workshop room).
# The settings go into that environment's JupyterLab settings overrides,
# <sys.prefix>/share/jupyter/lab/settings/overrides.json (merged with what is there), so
# nothing changes in the user's own ~/.jupyter settings.
# The one setup script of `make lab` and binder/postBuild (a hub image runs it too).
# PYTHON: the environment's python (default: python).
set -euo pipefail
py=${PYTHON:-python}
"$py" -c 'import jupyterlab, jupyterlab_myst, jupytext' 2>/dev/null || {
  echo "error: JupyterLab, jupyterlab-myst or jupytext is missing in $("$py" -c 'import sys; print(sys.prefix)');" \
       "install the lab extra: pip install -e '.[book,lab]' (or use environment.yml)" >&2; exit 1; }
settings="$("$py" -c 'import sys; print(sys.prefix)')/share/jupyter/lab/settings/overrides.json"
mkdir -p "$(dirname "$settings")"
"$py" -m jupytext_config --settings-file "$settings" set-default-viewer markdown myst
"$py" - "$settings" <<'PY'
import json, sys
path = sys.argv[1]
with open(path) as f:
    settings = json.load(f)
settings.setdefault("@jupyterlab/apputils-extension:notification", {}).update(
    {"fetchNews": "false", "checkForUpdates": False})
with open(path, "w") as f:
    json.dump(settings, f, indent=2)
    f.write("\n")
PY
echo "JupyterLab opens .md files as notebooks (jupytext), rendered by jupyterlab-myst: $settings"
