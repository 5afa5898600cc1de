#!/bin/bash
# Make JupyterLab open Markdown and MyST files (the book's chapters) as notebooks, with
# jupytext, for the Python environment that runs JupyterLab. The setting goes into that
# environment's JupyterLab settings overrides, <sys.prefix>/share/jupyter/lab/settings/
# overrides.json, so it changes nothing in the user's own ~/.jupyter settings.
# Used by binder/postBuild and `make lab`. PYTHON: the environment's python (default: python).
set -euo pipefail
py=${PYTHON:-python}
settings="$("$py" -c 'import sys; print(sys.prefix)')/share/jupyter/lab/settings/overrides.json"
mkdir -p "$(dirname "$settings")"
"$py" -m jupytext_config --settings-file "$settings" set-default-viewer markdown myst
echo "JupyterLab opens .md files as notebooks (jupytext): $settings"
