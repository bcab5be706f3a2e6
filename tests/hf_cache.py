"""A local Hugging Face cache for tests: repositories as huggingface_hub lays them out, no network.

``HubCache(root).add(repo_id, files, revision)`` writes
``models--ORG--NAME/snapshots/<revision>/<file>`` and points ``refs/main``
at the revision, so that ``hf_hub_download`` with ``HF_HUB_OFFLINE`` finds the
files whether it is asked for the pinned revision or for ``main``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import pytest


class HubCache:
    """A huggingface_hub cache folder that tests fill with repositories."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, repo_id: str, files: Mapping[str, bytes | Path], revision: str | None = None) -> str:
        """Store ``files`` (name -> bytes or a file to copy) as ``repo_id`` at ``revision``; returns the revision."""
        revision = revision or hashlib.sha1(repo_id.encode()).hexdigest()
        repo = self.root / f"models--{repo_id.replace('/', '--')}"
        snapshot = repo / "snapshots" / revision
        snapshot.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            data = content.read_bytes() if isinstance(content, Path) else content
            (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
            (snapshot / name).write_bytes(data)
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / "main").write_text(revision)
        return revision


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubCache:
    """An empty offline Hugging Face cache that huggingface_hub (and so timm, SMP, specseg) reads from."""
    import huggingface_hub.constants as constants

    root = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return HubCache(root)
