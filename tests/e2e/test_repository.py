"""The repository stands on its own: a clean clone has no folder beside it."""

import re
import subprocess

from conftest import REPO


def tracked_files():
    listing = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / line for line in listing.stdout.splitlines()]


def test_no_tracked_file_reaches_outside_the_repository():
    # The kit beside the checkout where paved is developed: its corpora and notes.
    outside = re.compile(r"\.\./shared/(conformance|PROTON\.md|LOCAL\.md|STYLE\.md|hooks)|parent\s*/\s*\"shared\"")
    offenders = []
    for path in tracked_files():
        if "conformance" in path.parts or path.suffix in {".gz", ".png", ".lock"} or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        offenders += [f"{path.relative_to(REPO)}:{n}" for n, line in enumerate(text.splitlines(), 1)
                      if outside.search(line)]
    assert offenders == []


def test_every_sample_path_the_readme_names_is_in_the_repository():
    readme = (REPO / "README.md").read_text()
    paths = set(re.findall(r"(conformance/[\w./-]+)", readme))
    paths |= {p.replace("$SAMPLES", "conformance/proton-cfn-samples")
              for p in re.findall(r"(\$SAMPLES/[\w./-]+)", readme)}
    assert paths, "the README names no sample"
    missing = sorted(p for p in paths if not (REPO / p.rstrip(".")).exists())
    assert missing == []


def test_each_corpus_keeps_its_license_and_origin():
    corpora = [p for p in (REPO / "conformance").iterdir() if p.is_dir()]
    assert {p.name for p in corpora} >= {"proton-cfn-samples", "proton-terraform-samples",
                                          "proton-terraform-github-actions-sample", "proton-codebuild-samples"}
    for corpus in corpora:
        assert "Permission is hereby granted" in (corpus / "LICENSE").read_text(), corpus
        assert re.search(r"@ [0-9a-f]{7}", (corpus / "SOURCE").read_text()), corpus
