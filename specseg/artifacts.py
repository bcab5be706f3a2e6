"""Model artifacts: one ``.safetensors`` file holding a model's weights and everything needed to rebuild it.

The safetensors metadata (a string-to-string mapping in the file's header)
carries the resolved spec as canonical JSON, its hash, the versions of
specseg, torch and timm that wrote it, and where the encoder came from
(``builtin``, ``timm``, or the plugin distribution and its version).
:func:`load` rebuilds the exact model from the file alone, offline: the
network is built on the meta device (no random initialisation, no encoder
download) and the file's tensors are assigned in place.

Reading the metadata (:func:`read_artifact_info`, ``specseg inspect``) does
not import torch. Every write is atomic (:func:`atomic_target`): a failed or
interrupted write leaves no partial file, and an existing file is replaced
only with ``force``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from specseg.errors import ArtifactError

if TYPE_CHECKING:
    import torch

    from specseg.tensorfile import SafetensorsHeader

    from specseg.model import SegmentationModel
    from specseg.spec.model import ModelSpec

#: The ``format`` metadata value that marks a specseg artifact.
ARTIFACT_FORMAT = "specseg.artifact"
#: Version of the metadata layout; :func:`load` reads this version.
ARTIFACT_FORMAT_VERSION = "1"


class ArtifactWarning(UserWarning):
    """An artifact was loaded with a plugin or library version other than the one that wrote it."""


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; not every platform can open a directory, so failures are ignored."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def check_writable(path: Path, force: bool) -> None:
    """Raise ``FileExistsError`` when ``path`` exists and ``force`` is not set, or is not a regular file."""
    from specseg.fileio import check_target

    check_target(Path(path), force)


def commit(tmp: Path, path: Path, force: bool) -> None:
    """Move the finished temporary file ``tmp`` onto ``path``: replace with ``force``, else never overwrite.

    Without ``force`` a hard link claims ``path`` atomically, so a file that
    appeared meanwhile is not clobbered; where links are unsupported, an
    existence check and a rename do.
    """
    from specseg.fileio import give_mode

    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    give_mode(tmp, path)
    if force:
        check_writable(path, force)  # not a device or FIFO that appeared meanwhile
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise FileExistsError(f"{path} exists; use --force (force=True) to overwrite it") from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            check_writable(path, force=False)
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_target(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; move it into place when the block succeeds.

    The temporary file keeps ``path``'s suffix (some writers check it) and is
    removed whatever goes wrong, so a failed write leaves neither a partial
    ``path`` nor a stray file. Missing parent folders are created. Raises
    ``FileExistsError`` when ``path`` exists and ``force`` is not set, before
    anything is written.
    """
    path = Path(path)
    check_writable(path, force)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is cut short: the temporary name must be valid even when the target's is too long.
    fd, name = tempfile.mkstemp(prefix=f".{path.stem[:100]}.", suffix=f".tmp{path.suffix[:20]}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        commit(tmp, path, force)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


# --------------------------------------------------------------------------- provenance


def _distribution_version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except (PackageNotFoundError, ValueError):  # ValueError: an empty or malformed name from a damaged artifact
        return None


def encoder_provenance(spec: "ModelSpec") -> tuple[str, str]:
    """Where the spec's encoder comes from and that source's version.

    ``("timm", timm version)`` for ``tu-`` names, ``("builtin", specseg
    version)`` for specseg's own, ``(distribution, version)`` for a plugin,
    and ``("runtime", "")`` for one registered in process with ``register_encoder``.
    """
    from specseg._version import __version__

    name = spec.encoder.name
    if name.startswith("tu-"):
        import timm

        return "timm", timm.__version__
    from specseg.encoders.registry import registry

    entry = registry.peek(name)
    if entry is None:
        return "runtime", ""
    distribution = getattr(entry, "distribution", None)
    if distribution:
        return distribution, _distribution_version(distribution) or ""
    if entry.source == "builtin":
        return "builtin", __version__
    return entry.source, ""


# --------------------------------------------------------------------------- writing


def _artifact_metadata(spec: "ModelSpec") -> dict[str, str]:
    import timm
    import torch

    from specseg._version import __version__
    from specseg.spec.canonical import canonical_json, spec_hash

    source, source_version = encoder_provenance(spec)
    return {
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "spec": canonical_json(spec),
        "spec_hash": spec_hash(spec),
        "specseg_version": __version__,
        "torch_version": torch.__version__,
        "timm_version": timm.__version__,
        "encoder_source": source,
        "encoder_source_version": source_version,
    }


def _savable_tensors(model: "torch.nn.Module") -> dict[str, "torch.Tensor"]:
    """The state dict as contiguous CPU tensors, each with its own storage (safetensors refuses sharing)."""
    tensors: dict[str, torch.Tensor] = {}
    storages: set[tuple[str, int]] = set()
    for key, value in model.state_dict().items():
        if value.is_meta:
            raise ArtifactError(
                f"{key} is on the meta device: the model has no weights to save (a dry-run or meta-built model); "
                "build it for real first"
            )
        value = value.detach().to("cpu").contiguous()
        storage = (str(value.device), value.untyped_storage().data_ptr())
        if storage in storages and value.numel():
            # Tensors sharing storage (tied weights) are stored as copies: safetensors refuses shared storage.
            value = value.clone()
        storages.add(storage)
        tensors[key] = value
    return tensors


def save_artifact(model: "SegmentationModel", path: str | os.PathLike[str], force: bool = False) -> Path:
    """Write ``model``'s weights and its resolved spec into one ``.safetensors`` file.

    The metadata holds the spec (canonical JSON), its hash, the specseg,
    torch and timm versions and the encoder's source (see
    :func:`encoder_provenance`). The write is atomic; an existing file is
    replaced only with ``force`` (else ``FileExistsError``). Returns the path.
    Raises :class:`ArtifactError` for a model without a spec or without weights.
    """
    from safetensors.torch import save_file

    spec = getattr(model, "spec", None)
    from specseg.spec.versions import is_spec

    if not is_spec(spec):
        raise ArtifactError("save_artifact needs a model built by specseg (a SegmentationModel with a .spec)")
    path = Path(path)
    metadata = _artifact_metadata(spec)
    tensors = _savable_tensors(model)
    with atomic_target(path, force) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class ArtifactInfo:
    """What an artifact's header says, read without torch and without loading tensors."""

    path: Path
    spec_json: str
    spec_hash: str
    versions: dict[str, str]
    encoder_source: str
    encoder_source_version: str
    format_version: str
    tensor_count: int
    tensor_bytes: int

    @property
    def spec(self) -> dict[str, Any]:
        """The embedded resolved spec as plain data (a mapping: :func:`read_artifact_info` checked it)."""
        return _embedded_spec(self.path, self.spec_json)

    @property
    def hash_matches(self) -> bool:
        """Whether the embedded spec still hashes to the embedded hash (the header was not altered)."""
        return "sha256:" + hashlib.sha256(self.spec_json.encode("utf-8")).hexdigest() == self.spec_hash

    def to_dict(self) -> dict[str, Any]:
        """The JSON form printed by ``specseg inspect --json``."""
        spec = self.spec
        return {
            "file": str(self.path),
            "format": ARTIFACT_FORMAT,
            "format_version": self.format_version,
            "spec_hash": self.spec_hash,
            "hash_matches": self.hash_matches,
            "name": spec.get("name"),
            "architecture": _architecture(spec),
            "encoder": {
                "name": _section_value(spec, "encoder", "name"),
                "source": self.encoder_source,
                "version": self.encoder_source_version,
            },
            "versions": dict(self.versions),
            "tensors": {"count": self.tensor_count, "bytes": self.tensor_bytes},
            "spec": spec,
        }


def _architecture(spec: dict[str, Any]) -> str | None:
    """The architecture named by embedded spec data: the decoder's, or version 2's decoders' joined with ``+``."""
    decoders = spec.get("decoders")
    if isinstance(decoders, dict):
        names = [d.get("architecture") for d in decoders.values() if isinstance(d, dict)]
        return "+".join(str(n) for n in names) if names else None
    return _section_value(spec, "decoder", "architecture")


def _read_header(path: Path) -> "SafetensorsHeader":
    """The checked safetensors header of ``path``; every problem is an :class:`ArtifactError` naming the file."""
    from specseg.fileio import describe_os_error
    from specseg.tensorfile import HeaderError, read_safetensors_header

    try:
        return read_safetensors_header(path)
    except FileNotFoundError:
        raise ArtifactError(f"artifact not found: {path}") from None
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read it ({describe_os_error(exc)})") from None
    except HeaderError as exc:
        raise ArtifactError(f"{path}: not a valid safetensors file: {exc}") from None


def _embedded_spec(path: Path, text: str) -> dict[str, Any]:
    """The artifact's embedded spec as a mapping, or an :class:`ArtifactError` saying why it is not one."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ArtifactError(f"{path}: the embedded spec nests too deeply; the file is damaged") from None
    except ValueError as exc:
        raise ArtifactError(f"{path}: the embedded spec is not valid JSON ({exc}); the file is damaged") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: the embedded spec is a JSON {type(data).__name__}, not a mapping; the file is damaged")
    return data


def _section_value(spec: dict[str, Any], section: str, key: str) -> Any:
    """``spec[section][key]`` when both are there and ``spec[section]`` is a mapping, else None."""
    part = spec.get(section)
    return part.get(key) if isinstance(part, dict) else None


def local_artifact(source: str | os.PathLike[str]) -> Path:
    """The local file an artifact source names: the file itself, ``model.safetensors`` in a
    :func:`specseg.save_pretrained` folder, or a ``hf://OWNER/REPO[@REVISION]`` repository's
    ``model.safetensors`` (downloaded through huggingface_hub, or taken from its cache).
    """
    from specseg.fileio import is_folder, is_regular_file
    from specseg.hub_source import ARTIFACT_NAME, hub_file, is_hub_source

    if is_hub_source(source):
        return hub_file(str(source))
    path = Path(source)
    if is_folder(path) and is_regular_file(path / ARTIFACT_NAME):
        return path / ARTIFACT_NAME
    return path


def read_artifact_info(path: str | os.PathLike[str]) -> ArtifactInfo:
    """Read and check an artifact's metadata (torch-free; tensors are not loaded).

    ``path`` is any source :func:`local_artifact` accepts (a file, a
    save_pretrained folder, ``hf://OWNER/REPO[@REVISION]``). Raises
    :class:`ArtifactError` when the file is not a safetensors file or is one
    without specseg's metadata (e.g. a plain state dict).
    """
    path = local_artifact(path)
    header = _read_header(path)
    meta = header.metadata
    if meta.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(
            f"{path}: a safetensors file without specseg artifact metadata (a plain weights file?); "
            "artifacts are written by `specseg build SPEC -o FILE.safetensors` or specseg.artifacts.save_artifact. "
            "To use plain weights, name the file in a spec's `weights:` key"
        )
    if meta.get("format_version") != ARTIFACT_FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format version {meta.get('format_version')!r} is not one this specseg reads "
            f"({ARTIFACT_FORMAT_VERSION!r}); it was written by specseg {meta.get('specseg_version', '?')}"
        )
    missing = [k for k in ("spec", "spec_hash") if not isinstance(meta.get(k), str)]
    if missing:
        raise ArtifactError(f"{path}: the artifact metadata lacks {', '.join(missing)}; the file is damaged")
    _embedded_spec(path, meta["spec"])
    count = len(header.tensors)
    nbytes = header.data_bytes
    return ArtifactInfo(
        path=path,
        spec_json=meta["spec"],
        spec_hash=meta["spec_hash"],
        versions={k: meta.get(f"{k}_version", "") for k in ("specseg", "torch", "timm")},
        encoder_source=meta.get("encoder_source", ""),
        encoder_source_version=meta.get("encoder_source_version", ""),
        format_version=meta["format_version"],
        tensor_count=count,
        tensor_bytes=nbytes,
    )


def _check_encoder_source(info: ArtifactInfo, encoder_name: str) -> str | None:
    """Refuse a missing plugin; return a note when the installed source's version differs."""
    source, wanted = info.encoder_source, info.encoder_source_version
    if source == "timm":
        import timm

        if wanted and timm.__version__ != wanted:
            return f"the artifact was written with timm {wanted}, this is timm {timm.__version__}"
        return None
    if source == "builtin":
        return None
    if source == "runtime" or not source:
        from specseg.encoders.registry import registry

        if registry.peek(encoder_name) is None:
            raise ArtifactError(
                f"{info.path}: encoder {encoder_name!r} was registered in the process that wrote this artifact "
                "(specseg.register_encoder) and is not registered here; register it before calling specseg.load"
            )
        return None
    installed = _distribution_version(source)
    pin = f"{source}=={wanted}" if wanted else source
    if installed is None:
        raise ArtifactError(
            f"{info.path}: encoder {encoder_name!r} comes from the plugin package {source} {wanted}".rstrip()
            + f", which is not installed here; install it (pip install '{pin}') and load again"
        )
    if wanted and installed != wanted:
        return (
            f"encoder {encoder_name!r} comes from the plugin package {source}: the artifact was written with "
            f"version {wanted}, this is version {installed} (pip install '{pin}' for the original)"
        )
    return None


def load(path: str | os.PathLike[str], max_memory: int | float | str | None = None) -> "SegmentationModel":
    """Rebuild the model stored in an artifact, from the file alone and offline.

    ``path``: an artifact file, a folder written by :func:`specseg.save_pretrained`,
    or ``hf://OWNER/REPO[@REVISION]`` (the repository's ``model.safetensors``,
    through the Hugging Face cache; ``HF_HUB_OFFLINE=1`` uses the cache only).

    The embedded spec is validated, the network built on the meta device
    without downloading encoder weights, and the file's tensors assigned in
    place; the result equals the saved model (same outputs). Raises
    :class:`ArtifactError` when the file is not an artifact, was altered, needs
    a plugin that is not installed, does not fit the network this
    installation builds, or declares more tensor bytes than ``max_memory``
    (as in :func:`specseg.build`: bytes, a size such as ``"8GiB"``, ``"off"``,
    or None for half the memory available now), checked before a tensor is
    read; warns (:class:`ArtifactWarning`) when the plugin or timm version
    differs from the one that wrote it but the weights still fit.
    """
    from specseg.builder import build_from_spec
    from specseg.errors import SpecError
    from specseg.loader import load_spec
    from specseg.memory_limit import resolve_limit
    from specseg.sizes import format_bytes
    from specseg.weights import WeightsError, read_state_dict, weights_budget

    try:
        limit, how = resolve_limit(max_memory)
    except ValueError as exc:
        raise ArtifactError(f"max_memory: {exc}") from None
    info = read_artifact_info(path)
    if not info.hash_matches:
        raise ArtifactError(
            f"{info.path}: the embedded spec does not match its hash {info.spec_hash}; the file's metadata was altered"
        )
    if info.tensor_bytes > limit:
        raise ArtifactError(
            f"{info.path}: the artifact holds {format_bytes(info.tensor_bytes)} of tensors, more than {how}; "
            "refusing to read it (raise max_memory / --max-memory to load it)"
        )
    data = info.spec
    encoder_name = str(_section_value(data, "encoder", "name") or "")
    note = _check_encoder_source(info, encoder_name)
    written = f"written by specseg {info.versions.get('specseg') or '?'}"
    try:
        spec = load_spec(data)
    except SpecError as exc:
        problems = "; ".join(f"{i.path and '.'.join(map(str, i.path)) or '<root>'}: {i.message}" for i in exc.issues)
        raise ArtifactError(
            f"{info.path}: the embedded spec ({written}) is not valid for this installation: {problems}"
            + (f" ({note})" if note else "")
        ) from None
    try:
        with weights_budget(limit, how):
            state_dict = read_state_dict(info.path)
        model = build_from_spec(spec, state_dict=state_dict)
    except WeightsError as exc:
        raise ArtifactError(
            f"{info.path}: the stored weights do not fit the network this installation builds from the embedded spec "
            f"({written}): {exc.message}" + (f". Likely cause: {note}" if note else "")
        ) from None
    except SpecError as exc:
        problems = "; ".join(f"{i.path and '.'.join(map(str, i.path)) or '<root>'}: {i.message}" for i in exc.issues)
        raise ArtifactError(f"{info.path}: the embedded spec ({written}) cannot be built here: {problems}") from None
    if note:
        warnings.warn(f"{info.path}: {note}; the weights fit, so the model was loaded", ArtifactWarning, stacklevel=2)
    return model
