"""What a release ships besides code: one version everywhere, the brand images, the licence.

HACS installs the integration from a GitHub release and reads ``manifest.json``; pip reads
``pyproject.toml``; the runner reports ``fleet_metrics.__version__`` (``--version`` and
``fleet_metrics_build_info``); the changelog says what that version brought. HACS also looks
for ``brand/icon.png`` and GitHub's licence detection, which HACS relies on, needs the verbatim
licence text.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import re
import shutil
import struct
import tomllib
import zlib
from pathlib import Path

import fleet_metrics
import pytest
from fleet_metrics.cli import main as cli_main
from fleet_metrics.core.config import validate
from fleet_metrics.runner import Runner
from PIL import Image

from scripts.make_brand import BRAND, ICONS, render_icon
from tests.standalone.runner_process import metric_value

ROOT = Path(__file__).parents[1]
MANIFEST = "custom_components/fleet_metrics/manifest.json"
PYPROJECT = "pyproject.toml"
RUNNER_INIT = "standalone/__init__.py"
CHANGELOG = "CHANGELOG.md"
VERSION_FILES = (MANIFEST, PYPROJECT, RUNNER_INIT, CHANGELOG)

SEMVER = r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?"
HEADING = re.compile(r"^## \[(?P<name>[^\]]+)\](?P<rest>.*)$", re.MULTILINE)


# --- one version -------------------------------------------------------------------------------


def _runner_version(root: Path) -> str:
    """``__version__`` as standalone/__init__.py assigns it (read, not imported)."""
    tree = ast.parse((root / RUNNER_INIT).read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["__version__"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise AssertionError(f"{RUNNER_INIT} assigns no literal __version__")


def _pyproject_is_dynamic(root: Path) -> bool:
    """Whether pyproject.toml takes its version from the runner's ``__version__``."""
    pyproject = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    return "version" in pyproject["project"].get("dynamic", [])


def _pyproject_version(root: Path, runner_version: str) -> str:
    """[project] version, or the runner's when pyproject takes it from there (dynamic)."""
    pyproject = tomllib.loads((root / PYPROJECT).read_text(encoding="utf-8"))
    project = pyproject["project"]
    if _pyproject_is_dynamic(root):
        dynamic = pyproject["tool"]["setuptools"]["dynamic"]["version"]
        assert dynamic == {"attr": "fleet_metrics.__version__"}, dynamic
        return runner_version
    version = project["version"]
    assert isinstance(version, str)
    return version


def _changelog_headings(root: Path) -> list[tuple[str, str]]:
    text = (root / CHANGELOG).read_text(encoding="utf-8")
    return [(match["name"], match["rest"]) for match in HEADING.finditer(text)]


def _changelog_version(root: Path) -> str:
    """The newest released version: the first heading that is not [Unreleased]."""
    for name, _ in _changelog_headings(root):
        if name != "Unreleased":
            return name
    raise AssertionError(f"{CHANGELOG} has no version heading")


def release_versions(root: Path) -> dict[str, str]:
    """The version each file states, by file."""
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    runner = _runner_version(root)
    return {
        MANIFEST: manifest["version"],
        PYPROJECT: _pyproject_version(root, runner),
        RUNNER_INIT: runner,
        CHANGELOG: _changelog_version(root),
    }


def test_one_version_everywhere() -> None:
    versions = release_versions(ROOT)
    assert len(set(versions.values())) == 1, f"versions differ: {versions}"
    assert re.fullmatch(SEMVER, versions[MANIFEST]), versions


@pytest.mark.parametrize("bumped", VERSION_FILES)
def test_a_version_changed_in_one_file_only_is_caught(tmp_path: Path, bumped: str) -> None:
    """The check above reads each file for real: bump one copy and it names that file."""
    dynamic = _pyproject_is_dynamic(ROOT)
    if bumped == PYPROJECT and dynamic:
        pytest.skip("pyproject.toml reads the version from fleet_metrics.__version__")
    for name in VERSION_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    current = release_versions(ROOT)[MANIFEST]
    path = tmp_path / bumped
    text = path.read_text(encoding="utf-8")
    if bumped == CHANGELOG:  # a new release heading above the others
        new = text.replace("## [Unreleased]", "## [Unreleased]\n\n## [99.0.0] - 2099-01-01", 1)
    else:
        new = text.replace(f'"{current}"', '"99.0.0"', 1)
    assert new != text
    path.write_text(new, encoding="utf-8")

    versions = release_versions(tmp_path)
    follows = {PYPROJECT} if dynamic and bumped == RUNNER_INIT else set()
    assert {name for name, version in versions.items() if version != current} == {bumped, *follows}


def test_the_runner_reports_the_version() -> None:
    version = _runner_version(ROOT)
    assert fleet_metrics.__version__ == version


def test_cli_version_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.split() == ["fleet-metrics", _runner_version(ROOT)]


async def test_build_info_exports_it() -> None:
    config = validate(
        {
            "prometheus": {"listen": ""},
            "line_protocol": {"output": "none"},
            "sources": [{"kind": "demo", "name": "one", "interval": 60}],
        }
    )
    runner = Runner(config)
    await runner.start()
    try:
        text = b"".join(runner.render_metrics()).decode()
    finally:
        await runner.stop()
    version = _runner_version(ROOT)
    assert metric_value(text, "fleet_metrics_build_info", version=version) == 1
    assert text.count("fleet_metrics_build_info{") == 1


def test_changelog_headings_are_keep_a_changelog() -> None:
    """[Unreleased] first (if any), then versions with dates, newest first, each linked."""
    headings = _changelog_headings(ROOT)
    text = (ROOT / CHANGELOG).read_text(encoding="utf-8")
    names = [name for name, _ in headings]
    assert names.count("Unreleased") <= 1
    if "Unreleased" in names:
        assert names[0] == "Unreleased" and headings[0][1] == ""
    released = headings[1:] if names[:1] == ["Unreleased"] else headings
    assert released, "no released version"
    for name, rest in released:
        assert re.fullmatch(SEMVER, name), name
        assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), f"## [{name}]{rest}: date missing"
    keys = [tuple(int(part) for part in name.split("-")[0].split(".")) for name, _ in released]
    assert keys == sorted(keys, reverse=True) and len(set(keys)) == len(keys), names
    dates = [rest for _, rest in released]
    assert dates == sorted(dates, reverse=True), dates
    for name in names:
        assert re.search(rf"^\[{re.escape(name)}\]: https://\S+$", text, re.MULTILINE), name


# --- brand images ------------------------------------------------------------------------------

# The names Home Assistant's brands integration serves; any other file in brand/ is ignored.
SERVED = {
    f"{dark}{kind}{scale}.png"
    for dark in ("", "dark_")
    for kind in ("icon", "logo")
    for scale in ("", "@2x")
}


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The PNG's chunks, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    chunks = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack_from(">I", data, offset)
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack_from(">I", data, offset + 8 + length)
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
    assert offset == len(data), "trailing bytes"
    return chunks


def test_brand_folder_has_only_names_home_assistant_serves() -> None:
    names = {path.name for path in BRAND.iterdir()}
    assert "icon.png" in names  # what HACS's brands check looks for
    assert names <= SERVED, names - SERVED
    assert set(ICONS) <= names


@pytest.mark.parametrize(("name", "size"), ICONS.items())
def test_icon_is_a_square_rgba_png_on_transparency(name: str, size: int) -> None:
    data = (BRAND / name).read_bytes()
    chunks = _chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR" and kinds[-1] == b"IEND" and b"IDAT" in kinds
    width, height, depth, colour_type, _, _, _ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height) == (size, size)
    assert (depth, colour_type) == (8, 6), "8-bit RGBA (colour type 6) expected"
    # The brands guidelines ask for compressed images; an icon this simple needs little.
    assert len(data) < 64 * 1024, len(data)

    # An independent decoder agrees, and sees a transparent background and a drawn centre.
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size, image.mode) == ("PNG", (size, size), "RGBA")
        pixels = image.load()
        assert pixels is not None
        for corner in ((0, 0), (size - 1, 0), (0, size - 1), (size - 1, size - 1)):
            pixel = pixels[corner]
            assert isinstance(pixel, tuple) and pixel[3] == 0, (corner, pixel)
        centre = pixels[size // 2, size // 2]
        assert isinstance(centre, tuple) and centre[3] == 255, centre


@pytest.mark.parametrize(("name", "size"), ICONS.items())
def test_generator_reproduces_the_committed_icon(name: str, size: int) -> None:
    committed = (BRAND / name).read_bytes()
    generated = render_icon(size)
    if generated != committed:
        with Image.open(io.BytesIO(generated)) as new, Image.open(io.BytesIO(committed)) as old:
            same_pixels = new.tobytes() == old.tobytes()
        hint = (
            f"same pixels, other compressed bytes (zlib {zlib.ZLIB_RUNTIME_VERSION})"
            if same_pixels
            else "the drawing changed: run python scripts/make_brand.py and commit the PNGs"
        )
        pytest.fail(f"{name} differs from what scripts/make_brand.py writes: {hint}")


# --- licence -----------------------------------------------------------------------------------

# SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt, the text GitHub recognises.
APACHE_2_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
APACHE_SECTIONS = [
    "Definitions",
    "Grant of Copyright License",
    "Grant of Patent License",
    "Redistribution",
    "Submission of Contributions",
    "Trademarks",
    "Disclaimer of Warranty",
    "Limitation of Liability",
    "Accepting Warranty or Additional Liability",
]


def test_licence_is_the_apache_2_text_pyproject_declares() -> None:
    pyproject = tomllib.loads((ROOT / PYPROJECT).read_text(encoding="utf-8"))
    assert pyproject["project"]["license"] == "Apache-2.0"

    data = (ROOT / "LICENSE").read_bytes()
    text = data.decode("utf-8")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[:3] == [
        "Apache License",
        "Version 2.0, January 2004",
        "http://www.apache.org/licenses/",
    ]
    terms = text.split("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION", 1)[1]
    terms = terms.split("END OF TERMS AND CONDITIONS", 1)[0]
    sections = re.findall(r"^\s{0,6}(\d+)\. ([A-Z][A-Za-z ]+)\.", terms, re.MULTILINE)
    assert sections == [(str(n), title) for n, title in enumerate(APACHE_SECTIONS, start=1)]
    assert hashlib.sha256(data).hexdigest() == APACHE_2_SHA256, "not the verbatim licence text"
