"""The package built from a clone without the Makefile (a wheel, as `pip install .` builds
it) carries the generated gRPC stubs, so an installed `shop` can import them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".venv", ".shop", ".git", "*_pb2.py", "*_pb2_grpc.py", "*_pb2.pyi", "__pycache__", "build",
    "*.egg-info", ".pytest_cache", ".ruff_cache",
)  # fmt: skip


def test_a_wheel_built_from_the_sources_carries_the_grpc_stubs(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    assert not list(source.glob("protos/**/*_pb2.py"))  # none to start from
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*build, "-w", str(tmp_path / "dist"), str(source)], check=True, timeout=120)
    (wheel,) = (tmp_path / "dist").glob("strangler_shop-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for stub in ("member_pb2.py", "member_pb2_grpc.py"):
        assert f"protos/shop/member/v1/{stub}" in names
