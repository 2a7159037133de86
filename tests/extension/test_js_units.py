"""The extension's modules under `node --test`, against a hand-written fake browser
(tests/extension/js/fake-browser.mjs): debouncing and caps of the opt-in badge lookups, the
queue's idempotency keys and retries, the lookup cache, URL rules, settings defaults."""

import shutil
import subprocess

from browser_harness import REPO

from support import unavailable

UNIT_TESTS = REPO / "tests" / "extension" / "js"


def test_node_unit_tests_pass():
    node = shutil.which("node")
    if node is None:
        unavailable("node is missing: install Node.js 20+ to run the extension's unit tests")
    files = sorted(str(path) for path in UNIT_TESTS.glob("*.test.mjs"))
    assert files
    done = subprocess.run([node, "--test", *files], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout
