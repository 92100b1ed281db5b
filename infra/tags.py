"""`make tags`: the stage tags of infra/stage_tags.toml created as annotated tags in this clone.

Tags do not travel with every clone or mirror of main, so the manifest, a file on main, is what
carries them. Standard library only (it runs before any virtualenv exists). Idempotent: a tag
already at its commit is left alone; one somewhere else is reported, never moved. Each tag is
made with the same tagger and date (its commit's) on every machine, so every clone that runs it
holds the very same tag objects."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "infra" / "stage_tags.toml"
TAGGER = {"GIT_COMMITTER_NAME": "Strangler Shop", "GIT_COMMITTER_EMAIL": "stages@shop.invalid"}


@dataclass(frozen=True)
class StageTag:
    name: str
    commit: str
    page: str
    message: str


def manifest(path: Path = MANIFEST) -> list[StageTag]:
    return [StageTag(**entry) for entry in tomllib.loads(path.read_text())["tag"]]


def git(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )


def resolve(revision: str) -> str | None:
    """The commit a revision names, or None when this clone does not have it."""
    found = git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    return found.stdout.strip() if found.returncode == 0 else None


def ensure(tag: StageTag) -> str:
    """Creates the tag if missing; returns what happened, or raises ValueError."""
    if resolve(tag.commit) != tag.commit:
        raise ValueError(
            f"{tag.name}: commit {tag.commit[:12]} is not in this clone "
            "(a shallow clone? `git fetch --unshallow` brings the history)"
        )
    at = resolve(f"refs/tags/{tag.name}")
    if at == tag.commit:
        return f"{tag.name}  {tag.commit[:12]}  already there"
    if at is not None:
        raise ValueError(
            f"{tag.name} exists at {at[:12]}, the manifest says {tag.commit[:12]}: left as it "
            f"is (`git tag -d {tag.name}` and run again to take the manifest's)"
        )
    date = git("show", "-s", "--format=%cI", tag.commit).stdout.strip()
    made = git(
        "tag", "-a", tag.name, tag.commit, "-m", tag.message,
        env=TAGGER | {"GIT_COMMITTER_DATE": date},
    )  # fmt: skip
    if made.returncode != 0:
        raise ValueError(f"{tag.name}: git tag failed: {made.stderr.strip()}")
    return f"{tag.name}  {tag.commit[:12]}  created"


def main() -> int:
    failed = 0
    for tag in manifest():
        try:
            print(ensure(tag))
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed += 1
    if not failed:
        print("then: git checkout stage-0-monolith (and back with git checkout main)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
