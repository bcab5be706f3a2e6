"""Reading what a weights file declares, without reading its tensors (torch-free).

Every byte of a safetensors header is checked before anything trusts it:
the header is a JSON mapping; each tensor entry has a known ``dtype``, a
``shape`` of non-negative integers and ``data_offsets`` of two integers;
the offsets tile the data section exactly (no gaps, no overlaps, nothing
after the last tensor), and each tensor's byte span equals its shape times
its element size. The optional ``__metadata__`` maps strings to strings.

A torch zip checkpoint declares its storages in the zip's central
directory: the sum of the entries' uncompressed sizes bounds what
``torch.load`` allocates, found without decompressing or unpickling
anything (a deflate-compressed checkpoint of a few megabytes can inflate
to gigabytes). A legacy (pickle) checkpoint stores its tensors raw, so its
file size is its bound.

Problems are :class:`HeaderError` (a ``ValueError``); callers add the file
name and turn it into their own error type.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from specseg.fileio import open_regular

#: A safetensors header larger than this is refused before it is parsed. A
#: segmentation model's header is a few hundred bytes per tensor (tens of KiB);
#: parsing JSON costs several times its size in memory, so the bound is kept well
#: under safetensors' own 100 MB.
MAX_HEADER_BYTES = 16 << 20
#: Dimensions a tensor may have (torch's own limit is 64).
MAX_DIMS = 64
#: Tensors a weights file may hold: the largest segmentation networks have a few thousand state-dict
#: entries; each tensor costs about a kilobyte of Python objects however small, so a header listing
#: hundreds of thousands of empty tensors would take gigabytes to load.
MAX_TENSORS = 20_000

#: Element sizes of the dtypes safetensors writes and torch reads.
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


class HeaderError(ValueError):
    """A weights file whose header or directory is malformed; the message says what is wrong."""


@dataclass(frozen=True)
class SafetensorsHeader:
    """A checked safetensors header: ``tensors`` maps names to their entries, ``metadata`` is string to string."""

    tensors: dict[str, dict[str, Any]]
    metadata: dict[str, str]
    data_bytes: int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_safetensors_header(raw: bytes, data_bytes: int) -> SafetensorsHeader:
    """Check a safetensors header (the JSON bytes after the length field) against a data section of ``data_bytes``."""
    try:
        header = json.loads(raw)
    except RecursionError:
        raise HeaderError("the safetensors header nests too deeply to be a safetensors header") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError(f"the safetensors header is not valid JSON ({exc})") from None
    if not isinstance(header, dict):
        raise HeaderError(f"the safetensors header is a JSON {type(header).__name__}, not a mapping")
    metadata = header.pop("__metadata__", None)
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise HeaderError("the safetensors __metadata__ must map strings to strings")
    if len(header) > MAX_TENSORS:
        raise HeaderError(f"the safetensors header lists {len(header)} tensors; a weights file may hold at most {MAX_TENSORS}")
    spans: list[tuple[int, int, str]] = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise HeaderError(f"tensor {name!r}: an entry must be a mapping of exactly dtype, shape and data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
            raise HeaderError(f"tensor {name!r}: unknown dtype {str(dtype)[:40]!r}; known: {', '.join(DTYPE_BYTES)}")
        if not isinstance(shape, list) or len(shape) > MAX_DIMS or not all(_is_int(d) and d >= 0 for d in shape):
            raise HeaderError(f"tensor {name!r}: shape must be a list of at most {MAX_DIMS} non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(_is_int(o) and o >= 0 for o in offsets)):
            raise HeaderError(f"tensor {name!r}: data_offsets must be two non-negative integers [begin, end]")
        begin, end = offsets
        if begin > end or end > data_bytes:
            raise HeaderError(
                f"tensor {name!r}: data_offsets [{begin}, {end}] do not lie within the {data_bytes} bytes of tensor data; "
                "the file is truncated or corrupt"
            )
        count = 1
        for dim in shape:
            count *= dim
        if count * DTYPE_BYTES[dtype] != end - begin:
            raise HeaderError(
                f"tensor {name!r}: shape {shape} of {dtype} needs {count * DTYPE_BYTES[dtype]} bytes but data_offsets "
                f"span {end - begin}"
            )
        spans.append((begin, end, name))
    spans.sort()
    position = 0
    for begin, end, name in spans:
        if begin != position:
            what = "overlaps the tensor before it" if begin < position else f"leaves a gap of {begin - position} bytes before it"
            raise HeaderError(f"tensor {name!r}: data_offsets [{begin}, {end}] {what}; the file is corrupt")
        position = end
    if position != data_bytes:
        raise HeaderError(
            f"the file has {data_bytes - position} bytes after the tensor data the safetensors header describes; "
            "the file is corrupt or not a safetensors file"
        )
    return SafetensorsHeader(tensors=header, metadata=metadata, data_bytes=data_bytes)


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    """Read and check the header of the safetensors file ``path`` (raises :class:`HeaderError` or ``OSError``)."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise HeaderError(f"not a safetensors file (only {size} bytes)")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_BYTES:
            raise HeaderError(f"safetensors header length {length} is over the {MAX_HEADER_BYTES}-byte limit; not a specseg weights file")
        if 8 + length > size:
            raise HeaderError(f"not a safetensors file, or a truncated one (header length {length}, file size {size})")
        raw = fh.read(length)
    if len(raw) != length:
        raise HeaderError("the file changed while it was read")
    return parse_safetensors_header(raw, size - 8 - length)


def zip_declared_bytes(path: Path) -> int:
    """The uncompressed size of every entry of the zip checkpoint ``path``, from its central directory."""
    try:
        with open_regular(path) as fh, zipfile.ZipFile(fh) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_TENSORS:
                raise HeaderError(f"the zip checkpoint holds {len(entries)} entries; a weights file may hold at most {MAX_TENSORS} tensors")
            return sum(max(info.file_size, 0) for info in entries)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, struct.error, ValueError) as exc:
        raise HeaderError(f"the zip checkpoint is truncated or corrupt ({exc})") from None
