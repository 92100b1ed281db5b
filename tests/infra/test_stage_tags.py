"""The stage tags' manifest points at real history: one tag per stage, each commit on main's
history and holding its stage's page, in stage order; `make tags` creates them in a clone,
idempotently, and `git checkout stage-0-monolith` then opens the monolith before any service."""

from __future__ import annotations

import itertools
import re
import subprocess
from pathlib import Path

import pytest

from infra.stages import STAGES
from infra.tags import ROOT, manifest

TAGS = manifest()


def git(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def test_one_tag_per_stage_named_after_its_page():
    assert len(TAGS) == len(STAGES)
    for number, tag in enumerate(TAGS):
        page = re.fullmatch(r"docs/stages/(\d\d)-([a-z0-9-]+)\.md", tag.page)
        assert page, tag.page
        assert int(page[1]) == number
        assert tag.name == f"stage-{number}-{page[2]}"
        assert (ROOT / tag.page).exists()
        assert re.fullmatch(r"[0-9a-f]{40}", tag.commit)
        assert tag.message.startswith(f"Stage {number}: ")


@pytest.mark.parametrize("tag", TAGS, ids=lambda t: t.name)
def test_each_commit_is_in_the_history_of_head_and_holds_its_page(tag):
    assert git("cat-file", "-e", f"{tag.commit}^{{commit}}").returncode == 0, "no such commit"
    assert git("merge-base", "--is-ancestor", tag.commit, "HEAD").returncode == 0
    assert git("cat-file", "-e", f"{tag.commit}:{tag.page}").returncode == 0


def test_the_tags_follow_the_history_in_stage_order():
    for earlier, later in itertools.pairwise(TAGS):
        assert git("merge-base", "--is-ancestor", earlier.commit, later.commit).returncode == 0


def test_stage_0_is_the_monolith_before_the_member_service():
    stage_0, stage_1 = TAGS[0].commit, TAGS[1].commit
    assert git("ls-tree", "-d", stage_0, "services/member").stdout == ""
    assert git("ls-tree", "-d", stage_1, "services/member").stdout != ""
    # The last such commit: its child on main's first-parent line brings the member service.
    line = git("rev-list", "--first-parent", "--reverse", f"{stage_0}..HEAD").stdout.split()
    assert git("ls-tree", "-d", line[0], "services/member").stdout != ""


@pytest.mark.slow
def test_make_tags_in_a_clone_is_idempotent_and_opens_stage_0(tmp_path):
    clone = tmp_path / "clone"
    assert git("clone", "--quiet", "--no-local", str(ROOT), str(clone)).returncode == 0
    # The manifest and script as this tree has them (a clone holds only what is committed).
    for path in ("infra/tags.py", "infra/stage_tags.toml", "Makefile"):
        (clone / path).write_text((ROOT / path).read_text())

    first = subprocess.run(["make", "-s", "tags"], cwd=clone, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(" created") == len(TAGS)
    again = subprocess.run(["make", "-s", "tags"], cwd=clone, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count(" already there") == len(TAGS)

    shown = git("tag", "-l", "stage-*", "--format=%(objecttype) %(*objectname)", cwd=clone)
    assert sorted(shown.stdout.split("\n")[:-1]) == sorted(f"tag {t.commit}" for t in TAGS)

    # A tag someone moved is reported and left where it is.
    git("tag", "-d", TAGS[9].name, cwd=clone)
    git("tag", TAGS[9].name, TAGS[8].commit, cwd=clone)
    moved = subprocess.run(["make", "-s", "tags"], cwd=clone, capture_output=True, text=True)
    assert moved.returncode != 0
    assert f"{TAGS[9].name} exists at {TAGS[8].commit[:12]}" in moved.stderr
    assert git("rev-parse", f"{TAGS[9].name}^{{commit}}", cwd=clone).stdout.strip() == (
        TAGS[8].commit
    )

    git("checkout", "--quiet", "--", ".", cwd=clone)  # the files written above
    assert git("checkout", "--quiet", TAGS[0].name, cwd=clone).returncode == 0
    assert (clone / "docs/stages/00-monolith.md").exists()
    assert not (clone / "docs/stages/01-member-shared-db.md").exists()
    assert not (clone / "services" / "member").exists()
