"""The core must run without Home Assistant and import only relatively inside itself."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).parents[2] / "custom_components" / "fleet_metrics" / "core"


def _imports(path: Path) -> list[tuple[int, str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.lineno, node.module or "", node.level))
    return found


def test_core_files_exist() -> None:
    assert len(list(CORE.rglob("*.py"))) > 10


def test_no_core_file_imports_homeassistant_or_its_own_package_absolutely() -> None:
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        for line, module, level in _imports(path):
            root = module.split(".")[0]
            if level == 0 and root in {"homeassistant", "custom_components", "fleet_metrics"}:
                offenders.append(f"{path.relative_to(CORE)}:{line} imports {module}")
    assert offenders == []


def test_core_imports_in_a_process_without_homeassistant() -> None:
    code = (
        "import sys, importlib, pkgutil\n"
        "sys.modules['homeassistant'] = None\n"
        "import fleet_metrics.core as core\n"
        "for m in pkgutil.walk_packages(core.__path__, 'fleet_metrics.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
