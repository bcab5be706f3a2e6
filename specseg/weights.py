"""Reading weight files safely, and loading them strictly.

Two rules make a weights file trustworthy:

* its bytes decide how it is read, not its suffix: a safetensors file is
  recognised by its header, a torch checkpoint by its zip or pickle
  signature, and anything else is refused;
* a torch checkpoint is read with ``torch.load(..., weights_only=True)``,
  never retried without it: a pickle that would run code is refused and the
  code never runs. An expected sha256 is checked before any parsing (it may
  be computed on a thread meanwhile: :class:`BackgroundDigest`).

:func:`load_into` loads strictly: a module is either fully loaded or an
error lists what did not match; it is never left half loaded without notice.

Importing this module does not import torch (``WeightsError`` can be caught
by torch-free code); the functions import it when called.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import mmap
import os
import struct
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Mapping

from specseg.fileio import describe_os_error, open_regular
from specseg.tensorfile import HeaderError, read_safetensors_header, zip_declared_bytes

from specseg.errors import SpecsegError

if TYPE_CHECKING:
    import torch
    from torch import nn

#: How many keys an error message lists per kind of mismatch.
MAX_LISTED = 8

_ZIP_MAGIC = b"PK\x03\x04"
_ZIP_EMPTY = b"PK\x05\x06"


class WeightsError(SpecsegError):
    """A weights file could not be read, or does not fit the network it was meant for."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


#: The memory budget of the build in progress (bytes, and how it was set), for the weight files it reads.
_BUDGET: contextvars.ContextVar[tuple[float, str] | None] = contextvars.ContextVar("specseg_weights_budget", default=None)


@contextlib.contextmanager
def weights_budget(limit: float, how: str) -> Iterator[None]:
    """Within the block, :func:`read_state_dict` refuses files declaring more than ``limit`` bytes of tensors."""
    token = _BUDGET.set((limit, how))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _budget(max_bytes: float | None) -> tuple[float, str]:
    if max_bytes is not None:
        from specseg.sizes import format_bytes

        return max_bytes, f"the limit of {format_bytes(max_bytes)}"
    current = _BUDGET.get()
    if current is not None:
        return current
    from specseg.memory_limit import resolve_limit

    return resolve_limit(None)


def declared_bytes(path: Path, kind: str) -> int:
    """Bytes of tensors the weights file ``path`` of format ``kind`` declares, read from its header only.

    safetensors: its tensor data (the header is checked against it); torch
    zip: the uncompressed size of its entries (central directory); legacy
    torch pickle: the file size (its tensors are stored raw).
    """
    if kind == "safetensors":
        return read_safetensors_header(path).data_bytes
    if kind == "torch-zip":
        return zip_declared_bytes(path)
    return path.stat().st_size


def sha256_of(path: Path, window: int = 32 << 20, cancelled: threading.Event | None = None) -> str:
    """The lowercase hex sha256 of a regular file (stops early, returning "", once ``cancelled`` is set).

    The file is hashed through memory maps of ``window`` bytes: each window is
    one hashlib call that reads and hashes without holding the GIL, so a
    :class:`BackgroundDigest` competes for the GIL once per window instead of
    twice per read; the window bounds how much of the file is mapped at once.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        for offset in range(0, size, window):
            if cancelled is not None and cancelled.is_set():
                return ""
            length = min(window, size - offset)
            try:
                view = mmap.mmap(fh.fileno(), length, access=mmap.ACCESS_READ, offset=offset)
            except (OSError, ValueError):  # a file system without memory maps: read the window
                fh.seek(offset)
                digest.update(fh.read(length))
                continue
            with view:
                digest.update(view)
    return digest.hexdigest()


class BackgroundDigest:
    """The sha256 of a file, computed on a thread while the caller does other work.

    Hashing a weights file costs about 0.6 ms per MiB of CPU; hashlib releases
    the GIL while it hashes, so building the network on the meta device runs
    meanwhile instead of after it. :func:`read_state_dict` still checks the
    digest before it parses a byte of the file. :meth:`cancel` stops the
    thread at its next chunk when the result is no longer wanted (the build
    failed for another reason).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._cancelled = threading.Event()
        self._result: str | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"sha256 {self.path.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = sha256_of(self.path, cancelled=self._cancelled)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread by hexdigest()
            self._error = exc

    def hexdigest(self) -> str:
        """Wait for the thread and return the digest; an error reading the file is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self) -> None:
        """Ask the thread to stop (it does at its next chunk); :meth:`hexdigest` is meaningless afterwards."""
        self._cancelled.set()


def detect_format(path: Path) -> str:
    """``"safetensors"``, ``"torch-zip"`` or ``"torch-pickle"``, from the file's first bytes.

    Raises :class:`WeightsError` for empty, truncated or unrecognised files.
    """
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            raise WeightsError(f"{path}: the file is empty")
        head = fh.read(16)
    if head.startswith(_ZIP_MAGIC) or head.startswith(_ZIP_EMPTY):
        return "torch-zip"
    if head[:1] == b"\x80" and len(head) >= 2 and 2 <= head[1] <= 5:
        # A pickle stream (protocol 2..5): torch's legacy (pre-1.6) checkpoint format.
        return "torch-pickle"
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{":
            if 8 + header_len > size:
                raise WeightsError(
                    f"{path}: safetensors header claims {header_len} bytes but the file has only "
                    f"{size - 8} after the length field; the file is truncated"
                )
            return "safetensors"
    raise WeightsError(
        f"{path}: not a weights file this reader knows (neither a safetensors file nor a torch checkpoint); "
        f"first bytes: {head[:8].hex()}"
    )


def _check_safetensors_layout(path: Path) -> None:
    """Validate the safetensors header (dtypes, shapes, offsets, sizes) before handing the file to safetensors."""
    try:
        read_safetensors_header(path)
    except HeaderError as exc:
        raise WeightsError(f"{path}: not a valid safetensors file: {exc}") from None


def _unwrap(obj: Any, path: Path) -> dict[str, "torch.Tensor"]:
    import torch

    if isinstance(obj, Mapping):
        for key in ("state_dict", "model"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: the checkpoint holds a {type(obj).__name__}, not a state dict (a mapping of tensors)")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        listed = ", ".join(repr(k) for k in bad[:MAX_LISTED])
        raise WeightsError(
            f"{path}: the checkpoint is not a state dict: {len(bad)} entries are not tensors ({listed}); "
            "save `model.state_dict()` (or a dict with a 'state_dict' or 'model' key holding it)"
        )
    return dict(obj)


def verify_sha256(path: Path, sha256: str, digest: BackgroundDigest | None = None) -> None:
    """Raise :class:`WeightsError` unless the file's sha256 is ``sha256`` (``digest``: its hash, started earlier)."""
    try:
        actual = digest.hexdigest() if digest is not None and digest.path == path else sha256_of(path)
    except OSError as exc:
        raise WeightsError(f"{path}: could not read the file to check its sha256 ({exc.strerror or exc})") from None
    if actual != sha256.lower():
        raise WeightsError(
            f"{path}: sha256 mismatch: the spec expects {sha256.lower()} but the file has {actual}; "
            "refusing to load it (replace the file, or update the sha256 if the new file is trusted)"
        )


def read_state_dict(
    path: Path | str, sha256: str | None = None, digest: BackgroundDigest | None = None, max_bytes: float | None = None
) -> dict[str, "torch.Tensor"]:
    """Read a state dict from a safetensors file or a torch checkpoint, safely.

    ``sha256`` (lowercase hex), when given, is verified before the file is
    parsed; ``digest``, a :class:`BackgroundDigest` of the same file started
    earlier, supplies the file's hash instead of reading it here. The format
    is detected from the file's bytes. The tensor bytes the file declares
    (:func:`declared_bytes`) are checked against ``max_bytes`` (else the
    budget of the build in progress, :func:`weights_budget`, else half the
    memory available) before a tensor is read. Torch checkpoints
    are read with ``weights_only=True`` only; a checkpoint that is a dict
    with a ``state_dict`` or ``model`` entry is unwrapped. Tensors are
    loaded on the CPU. Raises :class:`WeightsError` with a clear message.
    """
    path = Path(path)
    try:
        return _read_state_dict(path, sha256, digest, max_bytes)
    except FileNotFoundError:
        raise WeightsError(f"weights file not found: {path}") from None
    except OSError as exc:
        raise WeightsError(f"{path}: cannot read the weights file ({describe_os_error(exc)})") from None
    except HeaderError as exc:
        raise WeightsError(f"{path}: {exc}") from None


def _read_state_dict(path: Path, sha256: str | None, digest: BackgroundDigest | None, max_bytes: float | None) -> dict[str, "torch.Tensor"]:
    import stat

    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, socket or device)"
        raise WeightsError(f"{path}: is {kind}; a weights file must be a regular file")
    if sha256 is not None:
        verify_sha256(path, sha256, digest)
    kind = detect_format(path)
    if kind == "safetensors":
        _check_safetensors_layout(path)
    declared = declared_bytes(path, kind)
    limit, how = _budget(max_bytes)
    if declared > limit:
        from specseg.sizes import format_bytes

        raise WeightsError(
            f"{path}: the file declares {format_bytes(declared)} of tensor data, more than {how}; refusing to read it "
            "(raise --max-memory / max_memory if the file is trusted)"
        )
    if kind == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return _unwrap(load_file(str(path), device="cpu"), path)
        except SafetensorError as exc:
            raise WeightsError(f"{path}: could not read the safetensors file: {exc}") from None

    import pickle

    import torch

    try:
        # An open file, not the path: torch.load would pick its reader from the suffix.
        with open_regular(path) as fh:
            obj = torch.load(fh, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(
            f"{path}: refused: the checkpoint contains Python objects other than tensors and containers, "
            f"which could run code when loaded ({first}). specseg reads torch checkpoints with "
            "weights_only=True only; re-save it as a plain state dict or as .safetensors in an environment you trust"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, struct.error, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"{path}: could not read the torch checkpoint; it is truncated or corrupt ({detail[:300]})") from None
    return _unwrap(obj, path)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    more = f", ... ({len(keys) - MAX_LISTED} more)" if len(keys) > MAX_LISTED else ""
    return shown + more


def mismatch_report(
    module: "nn.Module", state_dict: Mapping[str, "torch.Tensor"], own: Mapping[str, "torch.Tensor"] | None = None
) -> list[str]:
    """Descriptions of what keeps ``state_dict`` from loading strictly into ``module`` (empty = fits).

    ``own`` is ``module.state_dict()`` when the caller has it already.
    """
    own = module.state_dict() if own is None else own
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [
        f"{k} (file {list(state_dict[k].shape)}, network {list(own[k].shape)})"
        for k in own
        if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
    ]
    # Floating-point precisions convert (a float16 file loads into float32 weights); a change of
    # kind would not: complex -> real drops the imaginary part, integers or booleans are not weights.
    dtypes = [
        f"{k} (file {str(state_dict[k].dtype).removeprefix('torch.')}, network {str(own[k].dtype).removeprefix('torch.')})"
        for k in own
        if k in state_dict and _dtype_kind(state_dict[k].dtype) != _dtype_kind(own[k].dtype)
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s): {_listing(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s): {_listing(unexpected)}")
    if shapes:
        problems.append(f"{len(shapes)} shape mismatch(es): {_listing(shapes)}")
    if dtypes:
        problems.append(f"{len(dtypes)} dtype mismatch(es): {_listing(dtypes)}")
    return problems


def _dtype_kind(dtype: "torch.dtype") -> str:
    """``complex``, ``float``, ``bool`` or ``int``: the kinds between which tensors do not convert."""
    if dtype.is_complex:
        return "complex"
    if dtype.is_floating_point:
        return "float"
    return "bool" if str(dtype) == "torch.bool" else "int"


def load_into(module: "nn.Module", state_dict: Mapping[str, "torch.Tensor"], what: str, assign: bool = False) -> None:
    """Load ``state_dict`` into ``module`` strictly, or raise :class:`WeightsError`.

    ``what`` names the weights in the message (e.g. ``"encoder weights from x.safetensors"``).
    The check runs before anything is copied, so on error the module is unchanged.
    ``assign=True`` puts the file's tensors in place instead of copying (for a
    module built on the meta device); they are cast to the module's dtypes first.
    """
    # A version-2 network takes its version-1 counterpart's weights (keys renamed, see specseg.multitask.state_dict).
    translate = getattr(module, "translate_state_dict", None)
    if translate is not None:
        state_dict = translate(state_dict)
    own = module.state_dict()
    problems = mismatch_report(module, state_dict, own)
    if problems:
        raise WeightsError(f"{what} do not fit the network: " + "; ".join(problems))
    if assign:
        state_dict = {k: v if v.dtype == own[k].dtype else v.to(own[k].dtype) for k, v in state_dict.items()}
    try:
        module.load_state_dict(dict(state_dict), strict=True, assign=assign)
    except RuntimeError as exc:  # e.g. dtype that cannot be copied
        raise WeightsError(f"{what} could not be loaded: {exc}") from None
