#!/usr/bin/env bash
# Vendor MathJax 3 for the book so that built pages render math offline.
#
# Fetches the `mathjax` package tarball with `npm pack`, checks its published sha512
# integrity, and unpacks its `es5/`
# folder into vendor/html/mathjax/ (git-ignored). _config.yml copies vendor/html/ into
# the built site (html_extra_path) and points mathjax_path at it.
#
# Idempotent: does nothing when the pinned version is already in place.
# Usage (from anywhere): book/tools/vendor_mathjax.sh
set -euo pipefail

VERSION="3.2.2"
INTEGRITY="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/vendor/html/mathjax"
STAMP="$ROOT/vendor/mathjax.version"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$VERSION" && -f "$DEST/es5/tex-mml-chtml.js" ]]; then
    echo "MathJax $VERSION already vendored in $DEST"
    exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

if ! command -v npm >/dev/null 2>&1; then
    echo "error: vendoring MathJax for offline pages needs npm: sudo apt-get install npm (or conda install nodejs)" >&2
    exit 1
fi
(cd "$TMP" && npm pack --silent "mathjax@${VERSION}" >/dev/null 2>&1)
TGZ="$TMP/mathjax-${VERSION}.tgz"
if [[ ! -f "$TGZ" ]]; then
    echo "error: could not download mathjax@${VERSION}" >&2
    exit 1
fi

ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TGZ" | base64 | tr -d '\n')"
if [[ "$ACTUAL" != "$INTEGRITY" ]]; then
    echo "error: mathjax-${VERSION}.tgz has integrity $ACTUAL, expected $INTEGRITY" >&2
    exit 1
fi

tar -xzf "$TGZ" -C "$TMP" package/es5 package/LICENSE
rm -rf "$DEST"
mkdir -p "$DEST"
mv "$TMP/package/es5" "$DEST/es5"
mv "$TMP/package/LICENSE" "$DEST/LICENSE"
echo "$VERSION" > "$STAMP"
echo "MathJax $VERSION vendored in $DEST"
