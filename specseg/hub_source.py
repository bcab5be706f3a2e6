"""``hf://OWNER/REPO[@REVISION]`` sources: parsing them and fetching their files through huggingface_hub.

Split from :mod:`specseg.hub` (which writes and uploads Hub folders with
:mod:`specseg.artifacts`) so that reading an artifact from the Hub needs
nothing of the writing side: the two modules do not import each other.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from specseg.errors import ArtifactError

#: The prefix of a Hugging Face Hub source.
HF_PREFIX = "hf://"
#: The artifact file a Hub repository holds (what ``save_pretrained`` writes).
ARTIFACT_NAME = "model.safetensors"
#: The spec file beside it, and the model card.
SPEC_NAME = "spec.yaml"
CARD_NAME = "README.md"

# Hub repository ids: OWNER/NAME, letters, digits, '-', '_', '.' (no '--' or '..', no leading/trailing '-'/'.').
_REPO_PART = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_HF_URI = re.compile(rf"hf://(?P<repo>{_REPO_PART}/{_REPO_PART})(?:@(?P<revision>[^\s@]{{1,256}}))?\Z")


class HubError(ArtifactError):
    """A Hub source is malformed or cannot be fetched; the message says why and what to do."""


def is_hub_source(source: Any) -> bool:
    """Whether ``source`` is a ``hf://`` string."""
    return isinstance(source, str) and source.startswith(HF_PREFIX)


def parse_hub_source(source: str) -> tuple[str, str | None]:
    """``hf://OWNER/REPO[@REVISION]`` -> ``(OWNER/REPO, REVISION or None)``; :class:`HubError` when malformed."""
    match = _HF_URI.match(source)
    if match is None or "--" in match.group("repo") or ".." in match.group("repo"):
        raise HubError(
            f"{source!r} is not a Hugging Face Hub source; write hf://OWNER/REPO or hf://OWNER/REPO@REVISION "
            "(a branch, tag or commit)"
        )
    return match.group("repo"), match.group("revision")


def hub_file(source: str, filename: str = ARTIFACT_NAME) -> Path:
    """Download ``filename`` of the Hub repository ``source`` names (or take it from the cache); its local path.

    Goes through ``huggingface_hub.hf_hub_download``: its cache
    (``HF_HUB_CACHE`` / ``HF_HOME``), token and offline mode
    (``HF_HUB_OFFLINE=1``) apply. Raises :class:`HubError` naming the
    repository, revision and what to do when the file cannot be had.
    """
    repo_id, revision = parse_hub_source(source)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from specseg._version import __version__

    at = f"{repo_id}@{revision}" if revision else repo_id
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, library_name="specseg", library_version=__version__))
    except LocalEntryNotFoundError:
        raise HubError(
            f"{source}: {filename} of {at} is not in the Hugging Face cache and cannot be downloaded "
            "(offline, HF_HUB_OFFLINE=1, or no network); download it once while online, or point HF_HUB_CACHE at a cache that holds it"
        ) from None
    except GatedRepoError:
        raise HubError(f"{source}: {at} is gated; accept its terms on the Hub and log in (hf auth login)") from None
    except RepositoryNotFoundError:
        raise HubError(f"{source}: no model repository {repo_id} on the Hub (or it is private: log in with hf auth login)") from None
    except RevisionNotFoundError:
        raise HubError(f"{source}: {repo_id} has no revision {revision!r}") from None
    except EntryNotFoundError:
        raise HubError(
            f"{source}: {at} has no {filename}; specseg reads repositories written by specseg.push_to_hub or save_pretrained"
        ) from None
    except (HfHubHTTPError, OSError) as exc:
        raise HubError(f"{source}: cannot download {filename} of {at}: {exc}") from None
