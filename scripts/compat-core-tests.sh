#!/usr/bin/env bash
# Core tests against the libraries Home Assistant 2026.11 bundles, in a venv without HA.
#
# Users run the integration on HA 2026.x (Python 3.14, aiohttp 3.14, orjson 3.13, paho-mqtt
# 2.1 with 2.2 next); the main test venv is pinned to HA 2025.4 and older libraries. This
# builds a separate venv with HA's newer pins and runs tests/core once per paho-mqtt version.
# The tests' conftest imports the HA glue, so it is left out (--confcutdir) and its fixture
# plugins are loaded directly; ci/compat/ha_free.py lets the core load without the glue.
#
# Usage: scripts/compat-core-tests.sh [pytest args]
#   COMPAT_PYTHON  interpreter for the venv (default: pyenv's 3.13.0, else python3.13)
#   COMPAT_VENV    where the venv lives (default: build/compat-venv, git-ignored)
#   COMPAT_PAHO    paho-mqtt versions to run with (default: "2.1.0 2.2.0")
set -euo pipefail
cd "$(dirname "$0")/.."

python=${COMPAT_PYTHON:-$HOME/.pyenv/versions/3.13.0/bin/python}
[ -x "$python" ] || python=$(command -v python3.13)
venv=${COMPAT_VENV:-build/compat-venv}
requirements=ci/compat/requirements-ha-2026.11.txt
paho_versions=${COMPAT_PAHO:-"2.1.0 2.2.0"}

pip_install() {  # quiet, without the notes about this machine's missing local indexes
    "$venv/bin/python" -m pip install -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }
    return "${PIPESTATUS[0]}"
}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip_install -r "$requirements"
pip_install --no-deps -e .
if "$venv/bin/python" -c "import homeassistant" 2>/dev/null; then
    echo "compat: $venv has Home Assistant installed; these tests must run without it" >&2
    exit 1
fi

# The fixture plugins tests/conftest.py loads, read from it so that the two never differ.
mapfile -t plugins < <("$venv/bin/python" - <<'PY'
import ast, pathlib
tree = ast.parse(pathlib.Path("tests/conftest.py").read_text(encoding="utf-8"))
for node in tree.body:
    if isinstance(node, ast.Assign) and any(
        getattr(t, "id", None) == "pytest_plugins" for t in node.targets
    ):
        for name in ast.literal_eval(node.value):
            print(f"-p{name}")
PY
)

status=0
for paho in $paho_versions; do
    pip_install "paho-mqtt==$paho"
    versions=$("$venv/bin/python" -c 'from importlib.metadata import version as v
print(", ".join(f"{p} {v(p)}" for p in ("aiohttp", "orjson", "paho-mqtt", "aiomqtt")))')
    echo "== core tests on Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'), $versions, no Home Assistant"
    "$venv/bin/python" -m pytest -p no:cacheprovider -q --confcutdir=tests/core \
        -p ci.compat.ha_free "${plugins[@]}" tests/core "$@" || status=1
done
exit $status
