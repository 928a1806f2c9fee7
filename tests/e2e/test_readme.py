"""The README's walkthroughs, run as written: every bash block of every "Walkthrough" section, in
order, from a directory that holds what a clean clone has (the samples) and what `make dev`
makes (`.paved/`), against a `paved dev` of their own."""

import os
import re
import subprocess

import pytest

from conftest import REPO, Platform


def walkthroughs():
    """(section title, [bash blocks]) of each walkthrough, in README order."""
    readme = (REPO / "README.md").read_text()
    sections = re.split(r"^### ", readme, flags=re.M)
    found = []
    for section in sections[1:]:
        title = section.splitlines()[0]
        if not title.startswith("Walkthrough"):
            continue
        body = re.split(r"^## ", section, flags=re.M)[0]
        found.append((title, re.findall(r"```bash\n(.*?)```", body, flags=re.S)))
    return found


def test_every_walkthrough_stands_on_its_own():
    found = walkthroughs()
    assert len(found) >= 4, [t for t, _ in found]
    for title, blocks in found:
        assert blocks, title
        for block in blocks:
            assert block.startswith("source .paved/env\n"), (title, block[:80])


@pytest.fixture(scope="module")
def readme_platform(tmp_path_factory):
    state = tmp_path_factory.mktemp("readme-paved")
    running = Platform(state)
    work = tmp_path_factory.mktemp("clone")
    (work / "conformance").symlink_to(REPO / "conformance")
    (work / ".paved").symlink_to(state)
    yield running, work
    running.stop()


def test_the_walkthroughs_run_in_order_as_written(readme_platform):
    platform, work = readme_platform
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    for title, blocks in walkthroughs():
        for number, block in enumerate(blocks, 1):
            ran = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=work, env=env,
                                 capture_output=True, text=True, timeout=600)
            assert ran.returncode == 0, (
                f"{title}, block {number} failed ({ran.returncode}):\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}")
