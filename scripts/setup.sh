#!/usr/bin/env bash
# Create .venv with Python 3.10 (lava-nc 0.10 does not import on 3.11+), install the
# pinned Lava stack and this project in editable mode, and Debian's Fashion-MNIST.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    for cand in python3.10 "$(command -v pyenv >/dev/null 2>&1 && pyenv root)/versions/3.10"*/bin/python3.10 python3; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
            command -v "$cand"; return 0
        fi
    done
    return 1
}

if [ ! -x .venv/bin/python ]; then
    if ! PY=$(find_python); then
        echo "error: Python 3.10 not found (lava-nc 0.10 needs exactly 3.10)." >&2
        echo "       Install it (e.g. 'pyenv install 3.10' or 'apt-get install python3.10') and retry." >&2
        exit 1
    fi
    echo "setup: creating .venv with $PY"
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip wheel setuptools
echo "setup: installing lava-nc 0.10.0, lava-dl 0.6.0 (torch 2.3) and qblif-lava (a few minutes the first time)"
.venv/bin/python -m pip install -q -e '.[test]'
# Sinabs (a NIR producer for the tests): its wheel pins nir 1.0.4 and pulls samna; its NIR
# export works with our nir 1.0.8, so it is installed without its dependencies
.venv/bin/python -m pip install -q --no-deps sinabs==3.1.3 \
    || echo "setup: note: sinabs not installed; its NIR producer tests will be skipped" >&2

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian package dataset-fashion-mnist"
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
            || echo "setup: warning: could not install dataset-fashion-mnist; Fashion-MNIST commands will say so" >&2
    else
        echo "setup: note: Fashion-MNIST needs 'apt-get install dataset-fashion-mnist' (root); digits works without it" >&2
    fi
fi
echo "setup: done"
