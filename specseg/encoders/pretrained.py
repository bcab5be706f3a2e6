"""Pretrained encoder weights: what ``encoder.weights`` names, where it is downloaded from, how inputs are normalised.

``encoder.weights`` is one of

* ``null``: random initialisation;
* ``imagenet``: the encoder's default pretrained weights;
* another weights name the encoder lists (``ssl``, ``advprop``, ...) or any
  pretrained tag of its timm model (``a1_in1k``): downloaded through timm's
  Hugging Face repositories, SMP's ``smp-hub`` repositories or a URL;
* a local file ``{path, sha256}`` (or a path string), relative to the spec file.

Downloads go to the usual caches (huggingface_hub's, torch.hub's); nothing is
downloaded when the file is already cached. Without network access a clear
error says how to use a local file instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from specseg.encoders.registry import IMAGENET_SETTINGS, WEIGHTS_SOURCE_KEYS, EncoderEntry
from specseg.errors import SpecsegError

NORMALISATION_KEYS = ("mean", "std", "input_space", "input_range")


class WeightsRequestError(SpecsegError):
    """``encoder.weights`` cannot be honoured (unknown name, download failure); the message says why."""


@dataclass(frozen=True)
class WeightsSource:
    """Where one named set of pretrained weights comes from.

    ``timm`` is a timm pretrained name (``model.tag``, or ``model`` for its
    default tag); otherwise ``repo_id`` (+ ``revision``, ``filename``) or
    ``url``. ``settings`` holds the normalisation.
    """

    name: str
    settings: Mapping[str, Any]
    timm: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    filename: str | None = None
    url: str | None = None
    sha256: str | None = None
    #: ``"smp"``: the file holds SMP's encoder state dict (SMP's own repositories), loaded as the module's own.
    layout: str | None = None
    #: Import string of a function converting that state dict into specseg's module's keys.
    key_map: str | None = None

    def describe(self) -> str:
        """Where the weights come from, for messages."""
        if self.timm:
            return f"timm pretrained weights {self.timm!r}"
        if self.repo_id:
            rev = f"@{self.revision[:12]}" if self.revision else ""
            return f"Hugging Face repository {self.repo_id}{rev}"
        return f"URL {self.url}"


def _timm_tags(model: str) -> list[str]:
    import timm

    return [t.split(".", 1)[1] for t in timm.list_pretrained(f"{model}.*") if "." in t]


def source_for(entry: EncoderEntry | None, encoder_name: str, weights: str) -> WeightsSource:
    """The source of weights ``weights`` for an encoder, or :class:`WeightsRequestError`."""
    if entry is None:
        # tu-<model>[.<tag>]
        model = encoder_name[3:]
        base, _, name_tag = model.partition(".")
        tag = name_tag if weights == "imagenet" else weights
        if name_tag and weights not in ("imagenet", name_tag):
            raise WeightsRequestError(
                f"encoder {encoder_name!r} already names the pretrained tag {name_tag!r}; "
                f"weights must be 'imagenet' or {name_tag!r}, got {weights!r}"
            )
        tags = _timm_tags(base)
        if not tags:
            raise WeightsRequestError(f"timm has no pretrained weights for {base!r}; use weights: null or a local file")
        if tag and tag not in tags:
            raise WeightsRequestError(f"timm has no pretrained tag {tag!r} for {base!r}; available: {', '.join(tags)}")
        full = f"{base}.{tag}" if tag else base
        return WeightsSource(weights, timm_normalisation(full), timm=full)
    settings = entry.pretrained_settings.get(weights)
    if settings is not None:
        return _from_settings(weights, settings)
    timm_model = entry.timm_model or entry.timm_weights_model
    if timm_model is not None:
        tags = _timm_tags(timm_model)
        if weights in tags:
            full = f"{timm_model}.{weights}"
            return WeightsSource(weights, timm_normalisation(full), timm=full)
    known = list(entry.pretrained_settings)
    hint = f"; or a pretrained tag of timm's {timm_model!r}: {', '.join(_timm_tags(timm_model))}" if timm_model else ""
    listed = ", ".join(known) if known else "none"
    raise WeightsRequestError(
        f"encoder {entry.name!r} has no pretrained weights named {weights!r}; named weights: {listed}{hint}. "
        "A local file can be given as weights: {path: ..., sha256: ...}"
    )


def _from_settings(name: str, settings: Mapping[str, Any]) -> WeightsSource:
    given = [k for k in WEIGHTS_SOURCE_KEYS if settings.get(k)]
    normalisation = {k: settings.get(k, IMAGENET_SETTINGS[k]) for k in NORMALISATION_KEYS}
    if not given:
        raise WeightsRequestError(
            f"pretrained settings {name!r} name no source; give one of {', '.join(WEIGHTS_SOURCE_KEYS)}"
        )
    return WeightsSource(
        name,
        normalisation,
        timm=settings.get("timm"),
        repo_id=settings.get("repo_id"),
        revision=settings.get("revision"),
        filename=settings.get("filename"),
        url=settings.get("url"),
        sha256=settings.get("sha256"),
        layout=settings.get("layout"),
        key_map=settings.get("key_map"),
    )


def timm_normalisation(pretrained_name: str) -> dict[str, Any]:
    """Normalisation from timm's pretrained config (ImageNet's when it has none)."""
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(pretrained_name)
    except Exception:  # noqa: BLE001 - unknown names: fall back to ImageNet statistics
        cfg = None
    if cfg is None:
        return dict(IMAGENET_SETTINGS)
    return {"mean": list(cfg.mean), "std": list(cfg.std), "input_space": "RGB", "input_range": [0, 1]}


def _offline_hint(source: WeightsSource, exc: BaseException, url: str | None = None) -> str:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f" from {url}" if url else ""
    return (
        f"could not download {source.describe()}{where} ({type(exc).__name__}: {detail}). "
        "Without network access, download the file on a machine that has it and point the spec at it: "
        "encoder.weights: {path: path/to/weights.safetensors, sha256: <64 hex digits>} "
        "(a path relative to the spec file; .safetensors or a torch checkpoint)"
    )


def _hub_url(repo_id: str, filename: str, revision: str | None) -> str:
    return f"https://huggingface.co/{repo_id}/resolve/{revision or 'main'}/{filename}"


def _hf_download(repo_id: str, filenames: list[str], revision: str | None, source: WeightsSource) -> Path:
    from huggingface_hub import hf_hub_download

    try:
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError:  # huggingface_hub < 0.23
        from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError

    last: BaseException | None = None
    for filename in filenames:
        try:
            return Path(hf_hub_download(repo_id, filename=filename, revision=revision))
        except LocalEntryNotFoundError as exc:  # offline and not cached
            raise WeightsRequestError(_offline_hint(source, exc, _hub_url(repo_id, filename, revision))) from None
        except EntryNotFoundError as exc:  # the repository lacks this file: try the next candidate
            last = exc
        except Exception as exc:  # noqa: BLE001 - offline, DNS, HTTP errors: all become one clear message
            raise WeightsRequestError(_offline_hint(source, exc, _hub_url(repo_id, filename, revision))) from None
    raise WeightsRequestError(f"{source.describe()} has none of the files {filenames} ({last})")


def _url_download(url: str, source: WeightsSource) -> Path:
    import os
    from urllib.parse import urlparse

    import torch

    directory = Path(torch.hub.get_dir()) / "checkpoints"
    target = directory / os.path.basename(urlparse(url).path)
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), progress=False)
    except Exception as exc:  # noqa: BLE001
        raise WeightsRequestError(_offline_hint(source, exc, url)) from None
    return target


def download(source: WeightsSource) -> Path:
    """The local path of ``source``'s weights file, downloading it into the cache if needed."""
    if source.timm:
        import timm

        cfg = timm.models.get_pretrained_cfg(source.timm)
        if cfg is None:
            raise WeightsRequestError(f"timm knows no pretrained weights {source.timm!r}")
        if cfg.hf_hub_id:
            repo, _, revision = cfg.hf_hub_id.partition("@")
            names = [cfg.hf_hub_filename] if cfg.hf_hub_filename else ["model.safetensors", "pytorch_model.bin"]
            return _hf_download(repo, names, revision or None, source)
        if cfg.url:
            return _url_download(cfg.url, source)
        raise WeightsRequestError(f"timm's pretrained config for {source.timm!r} names no download location")
    if source.repo_id:
        names = [source.filename] if source.filename else ["model.safetensors"]
        return _hf_download(source.repo_id, names, source.revision, source)
    assert source.url is not None
    return _url_download(source.url, source)


def normalisation(entry: EncoderEntry | None, encoder_name: str, weights: Any) -> dict[str, Any]:
    """``mean``, ``std``, ``input_space``, ``input_range`` for an encoder and its weights.

    For ``null`` weights and local files (which carry no normalisation) the
    encoder's ``imagenet`` settings are used, or ImageNet's statistics.
    """
    if isinstance(weights, str):
        return dict(source_for(entry, encoder_name, weights).settings)
    try:
        return dict(source_for(entry, encoder_name, "imagenet").settings)
    except WeightsRequestError:
        return dict(IMAGENET_SETTINGS)
