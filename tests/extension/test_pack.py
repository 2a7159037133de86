"""scripts/pack-extension makes a zip a store would take: manifest at the root, every file
the extension loads, nothing else, the same bytes for the same sources."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from browser_harness import EXTENSION, REPO

SCRIPT = REPO / "scripts" / "pack-extension"


def pack(out: Path) -> Path:
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True,
                          text=True, check=True, timeout=60)
    return Path(done.stdout.strip())


def test_the_zip_holds_the_extension_and_nothing_else(tmp_path):
    manifest = json.loads((EXTENSION / "manifest.json").read_text())
    made = pack(tmp_path / "one")
    assert made == tmp_path / "one" / f"flattr-extension-{manifest['version']}.zip"

    with zipfile.ZipFile(made) as archive:
        assert archive.testzip() is None
        names = set(archive.namelist())
        assert json.loads(archive.read("manifest.json")) == manifest  # at the root
        icons = {archive.read(name)[:8] for name in names if name.endswith(".png")}
    assert icons == {b"\x89PNG\r\n\x1a\n"}

    expected = {
        "background.js", "popup/popup.html", "popup/popup.js", "options/options.html",
        "options/options.js", "content/attention.js", *manifest["icons"].values(),
    }
    assert expected <= names
    shipped = {
        path.relative_to(EXTENSION).as_posix() for path in EXTENSION.rglob("*")
        if path.is_file() and path.suffix in {".js", ".json", ".html", ".css", ".png"}
    }
    assert names == shipped
    assert not [n for n in names if n.endswith((".py", ".md")) or "/." in f"/{n}"]
    assert not [n for n in names if n.startswith(("node_modules", "tests", "test-output"))]

    # Reproducible: packing again gives the same bytes.
    assert pack(tmp_path / "two").read_bytes() == made.read_bytes()


def test_a_missing_file_stops_the_packing(tmp_path):
    source = tmp_path / "extension"
    source.mkdir()
    (source / "manifest.json").write_text(json.dumps({
        "manifest_version": 3, "name": "x", "version": "1.0",
        "action": {"default_popup": "popup/popup.html"},
    }))
    done = subprocess.run([sys.executable, str(SCRIPT), "--source", str(source), "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "popup/popup.html" in done.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
