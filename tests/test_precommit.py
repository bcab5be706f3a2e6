"""The hooks in .pre-commit-hooks.yaml, run by pre-commit itself on a temporary repository.

pre-commit clones the hook repository at a commit, so the working tree is
snapshotted into a temporary git repository first (uncommitted changes
included). The ``language: python`` hooks make pre-commit create its own
virtualenv and ``pip install`` this repository into it; offline, pip finds
the dependencies (torch, pydantic, ...) already installed because the test
puts this interpreter's site-packages on ``PYTHONPATH``, and builds specseg
without build isolation from the setuptools installed here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import CORPUS, ROOT

pytest.importorskip("pre_commit")

GIT = ["git", "-c", "user.name=specseg tests", "-c", "user.email=tests@specseg.invalid", "-c", "commit.gpgsign=false"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A committed snapshot of this working tree (tracked and untracked, not ignored, files) and its commit."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    dest = tmp_path_factory.mktemp("hook-repo")
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True
        ).stdout.decode("utf-8").split("\0")
        files = [name for name in listed if name and (ROOT / name).is_file()]
    else:  # an unpacked source tree: everything but caches and virtualenvs
        files = [str(p.relative_to(ROOT)) for p in ROOT.rglob("*") if p.is_file() and not {".venv", "__pycache__", ".git"} & set(p.parts)]
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-q", "-m", "snapshot for the pre-commit test")
    return dest, _git(dest, "rev-parse", "HEAD")


def _environment(tmp: Path, variant: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "GIT_", "PIP_", "VIRTUAL_ENV"))}
    env["PRE_COMMIT_HOME"] = str(tmp / "pre-commit-home")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if variant == "python":
        # pre-commit's own virtualenv: offline install of the snapshot, dependencies found on PYTHONPATH.
        env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
        env["PIP_NO_INDEX"] = "1"
        env["PIP_NO_BUILD_ISOLATION"] = "0"  # pip reads "0" as "do not isolate" for this negated option
    else:
        # The `specseg` on PATH (this interpreter's), importing this working tree's package.
        env["PYTHONPATH"] = str(ROOT)
    return env


def _pre_commit(repo: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.parametrize("variant", ["python", "system"])
def test_pre_commit_runs_the_declared_hooks(hook_repo: tuple[Path, str], tmp_path: Path, variant: str) -> None:
    src, rev = hook_repo
    suffix = "" if variant == "python" else "-system"
    user = tmp_path / "user"
    (user / "specs").mkdir(parents=True)
    _git(user, "init", "-q")
    (user / ".pre-commit-config.yaml").write_text(
        f"repos:\n  - repo: {src}\n    rev: {rev}\n    hooks:\n"
        f"      - id: specseg-validate{suffix}\n        files: ^specs/\n"
        f"      - id: specseg-fmt{suffix}\n        files: ^specs/\n",
        encoding="utf-8",
    )
    (user / "notes.yaml").write_text("not: a spec\n", encoding="utf-8")  # outside files: ^specs/, never checked
    shutil.copy(ROOT / "specs" / "unet-resnet34.yaml", user / "specs" / "unet.yaml")
    (user / "specs" / "fpn.json").write_text(
        json.dumps({"specseg": 1, "encoder": {"name": "resnet18"}, "decoder": {"architecture": "fpn"}}), encoding="utf-8"
    )
    _git(user, "add", "-A")
    env = _environment(tmp_path, variant)

    passing = _pre_commit(user, env)
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert passing.stdout.count("Passed") == 2, passing.stdout

    shutil.copy(CORPUS / "invalid" / "typo-key.yaml", user / "specs" / "typo.yaml")
    (user / "specs" / "messy.yaml").write_text(
        "decoder: {architecture: unet}\nspecseg: 1\nencoder:   {name: resnet18}\n", encoding="utf-8"
    )
    _git(user, "add", "-A")
    failing = _pre_commit(user, env)
    out = failing.stdout + failing.stderr
    assert failing.returncode == 1, out
    assert "specs/typo.yaml:5:3: encoder.in_chanels: unknown key 'in_chanels'; did you mean 'in_channels'?" in out
    assert "specs/messy.yaml: not in canonical form" in out
    # Every file is reported, the valid ones too (several files in one hook call).
    assert "specs/unet.yaml: ok" in out and "specs/fpn.json: ok" in out
    assert "Traceback" not in out
