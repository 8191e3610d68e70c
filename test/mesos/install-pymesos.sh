#!/usr/bin/env bash
# Installs pymesos 0.3.15 (a third-party Mesos v1 HTTP scheduler driver, PyPI) into a virtual
# environment for test/mesos. Idempotent: seconds when already installed.
# Its dependency http-parser 0.9.0 ships a C extension that no longer compiles on Python >= 3.11;
# the package falls back to its pure-Python parser, so it is built from its sdist without the
# extension (the same code pymesos uses whenever the extension is missing).
set -euo pipefail
venv="${MESON_PYMESOS_VENV:-$HOME/.cache/meson-k8s/venv-pymesos}"
if "$venv/bin/python" -c 'import pymesos' 2>/dev/null; then exit 0; fi
python3 -m venv "$venv"
pip="$venv/bin/pip"
"$pip" install -q --upgrade pip setuptools wheel
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$pip" download -q --no-deps --no-binary :all: -d "$tmp" http-parser==0.9.0
tar -xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$tmp/http-parser-0.9.0/setup.py"
"$pip" install -q --no-build-isolation "$tmp/http-parser-0.9.0"
"$pip" install -q pymesos==0.3.15
"$venv/bin/python" -c 'import pymesos; print("pymesos", pymesos.__VERSION__, "ready")'
