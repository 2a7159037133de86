"""The extension passes `web-ext lint` (Firefox's add-on linter) and ESLint.

Both run through npx from the repository root with the versions pinned in
package-lock.json (installed with `npm ci` when node_modules is missing). Without npm the
tests skip, except under CI=true, where they fail.
"""

import json
import os
import shutil
import subprocess

import pytest
from browser_harness import REPO

from support import unavailable

# The manifest carries background.service_worker for Chromium beside background.scripts
# for Firefox; Firefox's linter notes that it ignores the former. Nothing else is expected.
EXPECTED_WARNINGS = {"BACKGROUND_SERVICE_WORKER_IGNORED"}


@pytest.fixture(scope="module")
def npx() -> str:
    npm, npx = shutil.which("npm"), shutil.which("npx")
    if npm is None or npx is None:
        unavailable("npm is missing: install Node.js 20+ with npm to lint the extension "
                    "(the tests run `npm ci` and then eslint and web-ext through npx)")
    binaries = REPO / "node_modules" / ".bin"
    if not ((binaries / "eslint").exists() and (binaries / "web-ext").exists()):
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=REPO, check=True,
                       timeout=600, stdout=subprocess.DEVNULL)
    return npx


def run(command: list[str]) -> subprocess.CompletedProcess:
    environment = {**os.environ, "NO_UPDATE_NOTIFIER": "1", "NO_COLOR": "1"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=environment)


def test_web_ext_lint_finds_no_errors(npx):
    done = run([npx, "--no-install", "web-ext", "lint", "--source-dir", "extension",
                "--output", "json", "--no-config-discovery"])
    report = json.loads(done.stdout)
    problems = [f"{m['code']}: {m['message']} ({m.get('file')})" for m in report["errors"]]
    assert not problems, "\n".join(problems)
    warnings = {m["code"] for m in report["warnings"]}
    assert warnings <= EXPECTED_WARNINGS, report["warnings"]


def test_eslint_passes(npx):
    done = run([npx, "--no-install", "eslint", "--max-warnings", "0", "extension",
                "tests/extension/js"])
    assert done.returncode == 0, done.stdout + done.stderr
