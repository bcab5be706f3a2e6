"""Exporting a built model: ONNX, a ``torch.export`` program (``.pt2``) or TorchScript (``.pt``).

The format follows the file's suffix (:data:`FORMATS`); ``.safetensors``
writes an artifact (:mod:`specseg.artifacts`). Every export keeps the batch,
height and width dynamic where the model allows it, and reports in its
:class:`ExportResult` which of them it could not keep (for example a ViT
that takes one image size only). Writes are atomic; an existing file is
replaced only with ``force``.

* ``.onnx``: the model is captured with ``torch.export`` and translated by
  ``torch.onnx.export(dynamo=True)``. Adaptive average pooling to sizes other
  than 1 (PSPNet, UPerNet) is first decomposed into two averaging matrix
  products computed from the input's size: the ONNX translation of
  ``adaptive_avg_pool2d`` fixes its bins at the export's input size, which
  gives wrong results (or fails) for other sizes.
* ``.pt2``: the ``torch.export`` program, saved with ``torch.export.save``
  (load with ``torch.export.load(path).module()``).
* ``.pt``: TorchScript made with ``torch.jit.trace``, which works for every
  architecture (``torch.jit.script`` refuses U-Net++, DPT and DPN encoders,
  as SMP's cannot be scripted either; see :mod:`specseg.scripting`). A trace records the operations run for the example input, so
  the traced module is checked against the eager model at a second input
  size and the result says when it only fits the example's size.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from specseg.artifacts import atomic_target, check_writable, commit
from specseg.input_shape import fixed_input_size
from specseg.errors import SpecsegError
from specseg.input_shape import DEFAULT_INPUT_SIZE

if TYPE_CHECKING:
    import torch

    from specseg.model import SegmentationModel

#: File suffix -> export format.
FORMATS = {".safetensors": "safetensors", ".onnx": "onnx", ".pt2": "pt2", ".pt": "torchscript"}
#: ONNX protobuf files cannot exceed 2 GiB; larger models keep their weights in ``<file>.data``.
ONNX_EXTERNAL_DATA_BYTES = 1_800_000_000
#: Tolerance of the TorchScript check at a second input size (relative to the output's scale).
TRACE_CHECK_TOLERANCE = 1e-4


class ExportError(SpecsegError):
    """A model could not be exported; the message says why."""


@dataclass
class ExportResult:
    """What an export wrote.

    ``dynamic`` says, for ``batch``, ``height`` and ``width``, whether the
    exported model accepts other sizes than ``input_shape`` (the example it
    was made with); empty for artifacts. ``files`` lists every file written
    (a large ONNX model has a ``.data`` file beside it); ``notes`` are
    limitations worth telling the user.
    """

    path: Path
    format: str
    input_shape: tuple[int, ...] | None = None
    dynamic: dict[str, bool] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (an entry of ``written`` in ``specseg build -o OUT --json``)."""
        return {
            "path": str(self.path),
            "format": self.format,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "dynamic": dict(self.dynamic),
            "files": [str(f) for f in self.files],
            "notes": list(self.notes),
        }


def format_for(path: str | os.PathLike[str]) -> str:
    """The export format for ``path``'s suffix; ``ValueError`` naming the accepted suffixes otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        accepted = ", ".join(FORMATS)
        raise ValueError(f"cannot tell the output format of {str(path)!r} from its suffix; use one of {accepted}")
    return FORMATS[suffix]


# --------------------------------------------------------------------------- example inputs


def default_input_shape(model: "SegmentationModel") -> tuple[int, int, int, int]:
    """The example input an export traces: ``(2, in_channels, S, S)``.

    Batch 2 because ``torch.export`` fixes any dimension whose example size
    is 1; S is the size a fixed-size encoder needs, else 256, or larger so
    that the deepest feature map is at least 16x16 (no map of the pyramids
    some decoders build from it shrinks to size 1, which would be fixed too).
    """
    channels = int(model.encoder.in_channels)
    fixed = fixed_input_size(model)
    if fixed is not None:
        return 2, channels, fixed[0], fixed[1]
    size = model.default_input_size(max(DEFAULT_INPUT_SIZE, 16 * int(model.encoder.output_stride)))
    return 2, channels, size, size


def _example_shape(model: "SegmentationModel", input_shape: Sequence[int] | None) -> tuple[int, ...]:
    if input_shape is None:
        return default_input_shape(model)
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 4:
        raise ExportError(f"the example input shape must be N,C,H,W; got {shape}")
    # A batch of 1 would be fixed by torch.export; the batch size of an example costs little.
    return (max(shape[0], 2), *shape[1:])


def _check_example(model: "SegmentationModel", shape: tuple[int, ...]) -> None:
    import torch

    try:
        model.check_input_shape(torch.zeros(shape, device="meta"))
    except ValueError as exc:
        raise ExportError(f"example input shape {','.join(map(str, shape))}: {exc}") from None


@contextlib.contextmanager
def _eval_mode(model: "torch.nn.Module") -> Iterator[None]:
    """Export in eval mode (batch-norm statistics, no dropout), then restore the caller's mode."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep exporters' progress lines and tracer warnings off stdout (``--json`` prints there)."""
    import torch

    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\..*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


# --------------------------------------------------------------------------- torch.export


def _dynamic_shapes() -> dict[str, dict[int, Any]]:
    import torch

    # AUTO keeps a dimension symbolic when the model allows it and fixes it otherwise,
    # instead of failing; which ones were fixed is read back from the program.
    auto = torch.export.Dim.AUTO
    return {"x": {0: auto, 2: auto, 3: auto}}


def size_dependent_padding(model: "torch.nn.Module") -> list[str]:
    """Module types in ``model`` that compute their padding from the input's height and width.

    TensorFlow-style "same" padding (timm's ``Conv2dSame``, ``MaxPool2dSame``,
    ``AvgPool2dSame``, ``StdConv2dSame``; SMP's dynamic same-padding layers)
    evaluates ``ceil(size / stride)`` and ``max(...)`` on the input size at
    every such layer. With a symbolic height and width, torch.export's shape
    solver faces one nested case split per layer (an EfficientNet-B0 has
    dozens) and runs for an hour before failing, so these models are
    exported with a fixed height and width.
    """
    found = {
        type(m).__name__
        for m in model.modules()
        if type(m).__name__.endswith("Same") or "DynamicSamePadding" in type(m).__name__
    }
    return sorted(found)


def export_program(
    model: "SegmentationModel", example: "torch.Tensor", static: bool = False
) -> "torch.export.ExportedProgram":
    """Capture ``model`` with ``torch.export`` for ``example``, batch/height/width dynamic where possible.

    When the shape constraints of a dynamic height and width cannot be
    solved (sizes converted to Python numbers inside the model), the capture
    is retried with only the batch dynamic: a fixed-size export, which
    :class:`ExportResult` reports, is more useful than none. Models whose
    padding depends on the input size (:func:`size_dependent_padding`) are
    captured with a fixed height and width from the start; ``static`` fixes
    every dimension at the example's size.
    """
    import torch

    batch_only = {"x": {0: torch.export.Dim.AUTO}}
    if static:
        attempts: tuple[Any, ...] = (None,)
    elif size_dependent_padding(model):
        attempts = (batch_only,)
    else:
        attempts = (_dynamic_shapes(), batch_only)
    first_error: Exception | None = None
    for dynamic_shapes in attempts:
        try:
            return torch.export.export(model, (example,), dynamic_shapes=dynamic_shapes)
        except Exception as exc:  # noqa: BLE001 - torch.export raises many types; the user needs the message
            first_error = first_error or exc
    assert first_error is not None
    text = str(first_error).strip()
    first = text.splitlines()[0] if text else type(first_error).__name__
    raise ExportError(f"torch.export could not capture the model: {type(first_error).__name__}: {first}") from first_error


def _program_dynamic(program: "torch.export.ExportedProgram") -> dict[str, bool]:
    from torch.fx.experimental.symbolic_shapes import is_concrete_int

    name = program.graph_signature.user_inputs[0]
    node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == name)
    shape = node.meta["val"].shape
    # A dimension specialised during capture can stay a SymInt whose value is a constant.
    return {dim: not is_concrete_int(shape[i]) for dim, i in (("batch", 0), ("height", 2), ("width", 3))}


def _fixed_notes(dynamic: dict[str, bool], shape: Sequence[int], model: "torch.nn.Module", static: bool = False) -> list[str]:
    fixed = [d for d, ok in dynamic.items() if not ok]
    if not fixed:
        return []
    sizes = {"batch": shape[0], "height": shape[2], "width": shape[3]}
    what = ", ".join(f"{d} {sizes[d]}" for d in fixed)
    why = ""
    padding = size_dependent_padding(model)
    if static:
        why = " (a static-shape export was asked for)"
    elif ("height" in fixed or "width" in fixed) and fixed_input_size(model) is not None:
        why = " (the encoder takes this image size only; set encoder.params.dynamic_img_size: true for any size)"
    elif ("height" in fixed or "width" in fixed) and padding:
        why = (
            f" (the encoder pads 'same' from the input size ({', '.join(padding)}), which torch.export cannot solve "
            "for a symbolic height and width in reasonable time; export again with --input-shape for other sizes)"
        )
    return [f"the export accepts inputs with {what} only{why}"]


def _adaptive_avg_pool_weights(size: Any, out: int, like: "torch.Tensor") -> "torch.Tensor":
    """(out, size) matrix averaging each of adaptive pooling's bins: rows of 1/len over [start, end)."""
    import torch

    positions = torch.arange(size, device=like.device)
    bins = torch.arange(out, device=like.device)
    # PyTorch's bins: start = floor(i * size / out), end = ceil((i + 1) * size / out).
    starts = (bins * size) // out
    ends = ((bins + 1) * size + out - 1) // out
    inside = (positions.unsqueeze(0) >= starts.unsqueeze(1)) & (positions.unsqueeze(0) < ends.unsqueeze(1))
    weights = inside.to(like.dtype)
    return weights / weights.sum(dim=1, keepdim=True)


def adaptive_avg_pool2d_by_matmul(x: "torch.Tensor", output_size: Sequence[int]) -> "torch.Tensor":
    """``F.adaptive_avg_pool2d`` written as ``Wh @ x @ Ww.T``, valid for any input size once exported.

    Equal to PyTorch's result up to float rounding; costs (oh + ow) multiply-adds
    per input element, negligible for pyramid pooling's small outputs.
    """
    import torch

    out_h, out_w = (int(v) for v in output_size)
    if out_h == 1 and out_w == 1:
        return x.mean(dim=(-2, -1), keepdim=True)
    rows = _adaptive_avg_pool_weights(x.shape[-2], out_h, x)
    cols = _adaptive_avg_pool_weights(x.shape[-1], out_w, x)
    return torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))


def _onnx_ready(program: "torch.export.ExportedProgram") -> "torch.export.ExportedProgram":
    import torch

    pools = (torch.ops.aten.adaptive_avg_pool2d.default, torch.ops.aten._adaptive_avg_pool2d.default)
    if not any(
        node.op == "call_function" and node.target in pools and tuple(node.args[1]) != (1, 1)
        for node in program.graph.nodes
    ):
        return program  # decomposing re-traces the whole program: skip it when there is nothing to do
    table: dict[Any, Callable[..., Any]] = {op: adaptive_avg_pool2d_by_matmul for op in pools}
    # Only these ops are decomposed; the ONNX exporter decomposes the rest its own way.
    return program.run_decompositions(table)


# --------------------------------------------------------------------------- writers


def _output_names(model: "SegmentationModel") -> list[str]:
    """The exported graph's output names: ``mask`` (and ``labels``) in version 1, one per head (in spec order) in version 2."""
    heads = getattr(model, "heads", None)
    if heads is not None:
        return list(heads)
    return ["mask", "labels"] if model.classification_head is not None else ["mask"]


def _parameter_bytes(model: "torch.nn.Module") -> int:
    return sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))


def require_onnx() -> None:
    """Raise :class:`ExportError` naming the ``[onnx]`` extra when onnx or onnxscript is missing (checked before building)."""
    _require_onnx()


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401 - torch's ONNX exporter needs both
    except ImportError:
        raise ExportError(
            "ONNX export needs the onnx and onnxscript packages, which the [onnx] extra installs: pip install 'specseg[onnx]'"
        ) from None


def _write_onnx(
    model: "SegmentationModel",
    path: Path,
    example: "torch.Tensor",
    program: "torch.export.ExportedProgram",
    force: bool,
    external_data: bool | None,
    opset: int | None,
    static: bool = False,
) -> ExportResult:
    import torch

    program = _onnx_ready(program)
    dynamic = _program_dynamic(program)
    if external_data is None:
        external_data = _parameter_bytes(model) > ONNX_EXTERNAL_DATA_BYTES
    kwargs: dict[str, Any] = {"input_names": ["input"], "output_names": _output_names(model), "verbose": False}
    if opset is not None:
        kwargs["opset_version"] = opset
    try:
        onnx_program = torch.onnx.export(program, (example,), dynamo=True, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.onnx could not translate the model: {type(exc).__name__}: {first}") from exc
    assert onnx_program is not None
    _name_dimensions(onnx_program.model)
    files = [path]
    if not external_data:
        with atomic_target(path, force) as tmp:
            onnx_program.save(str(tmp), external_data=False)
    else:
        # The .onnx file names its data file; write both under their final names in a
        # private folder beside the target, then move the data first and the model last.
        data = path.with_name(path.name + ".data")
        check_writable(path, force)
        check_writable(data, force)
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{path.name}.", dir=path.parent) as folder:
            staged = Path(folder) / path.name
            onnx_program.save(str(staged), external_data=True)
            staged_data = Path(folder) / data.name
            if staged_data.exists():
                commit(staged_data, data, force)
                files.append(data)
            commit(staged, path, force)
    return ExportResult(path, "onnx", tuple(example.shape), dynamic, files, _fixed_notes(dynamic, example.shape, model, static))


def _name_dimensions(model: Any) -> None:
    """Name the ONNX graph's dynamic dimensions ``batch``, ``height``, ``width`` (``mask_height``, ... for outputs).

    The exporter names them after torch.export's symbols or their
    expressions (``s0``, or a long formula for an output size after several
    poolings). An output dimension equal to an input symbol takes its name;
    any other symbolic one is named after its output and axis.
    """
    import onnx_ir as ir

    axes = ("batch", "channels", "height", "width")
    (source,) = model.graph.inputs
    rename: dict[str, str] = {}
    dims: list[Any] = []
    for axis, dim in enumerate(source.shape):
        symbol = getattr(dim, "value", None)
        if isinstance(symbol, str):
            rename[symbol] = axes[axis]
            dims.append(axes[axis])
        else:
            dims.append(dim)
    source.shape = ir.Shape(dims)
    for output in model.graph.outputs:
        if output.shape is None:
            continue
        named: list[Any] = []
        for axis, dim in enumerate(output.shape):
            symbol = getattr(dim, "value", None)
            if isinstance(symbol, str):
                named.append(rename.get(symbol, f"{output.name}_{axes[axis] if len(output.shape) == 4 else f'dim{axis}'}"))
            else:
                named.append(dim)
        output.shape = ir.Shape(named)


def _write_pt2(
    model: "SegmentationModel",
    path: Path,
    example: "torch.Tensor",
    program: "torch.export.ExportedProgram",
    force: bool,
    static: bool = False,
) -> ExportResult:
    import torch

    dynamic = _program_dynamic(program)
    try:
        with atomic_target(path, force) as tmp:
            torch.export.save(program, str(tmp))
    except Exception as exc:  # noqa: BLE001 - e.g. SerializeError on a symbolic expression the format cannot hold
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(
            f"torch.export could not save the program: {type(exc).__name__}: {first[:300]}; try --static-shape"
        ) from exc
    return ExportResult(path, "pt2", tuple(example.shape), dynamic, [path], _fixed_notes(dynamic, example.shape, model, static))


def _second_shape(model: "SegmentationModel", shape: Sequence[int], batch_only: bool = False) -> tuple[int, ...]:
    n, c, h, w = shape
    if batch_only:
        return n + 1, c, h, w
    step = int(model.encoder.output_stride) if model.requires_divisible_input else 8
    return n + 1, c, h + step, w + 2 * step


def _as_list(outputs: Any) -> list[Any]:
    """A model's outputs as a list: a tensor, a tuple of tensors or a dict of head outputs (values in order)."""
    if isinstance(outputs, dict):
        return list(outputs.values())
    return list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]


def _same_outputs(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) and list(a) != list(b):
        return False
    a_list = _as_list(a)
    b_list = _as_list(b)
    if len(a_list) != len(b_list):
        return False
    for x, y in zip(a_list, b_list):
        if x.shape != y.shape:
            return False
        scale = max(1.0, float(y.abs().max())) if y.numel() else 1.0
        if y.numel() and float((x.float() - y.float()).abs().max()) > TRACE_CHECK_TOLERANCE * scale:
            return False
    return True


def _trace_fits(model: "SegmentationModel", traced: Any, shape: tuple[int, ...]) -> bool | None:
    """Whether the traced module matches the eager model at ``shape``; None when eager refuses that shape."""
    import torch

    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            expected = model(x)
    except (ValueError, RuntimeError, AssertionError):
        return None
    try:
        with torch.no_grad():
            got = traced(x)
    except Exception:  # noqa: BLE001 - a frozen size fails inside the TorchScript interpreter
        return False
    return _same_outputs(got, expected)


def _write_torchscript(model: "SegmentationModel", path: Path, example: "torch.Tensor", check: bool, force: bool) -> ExportResult:
    import torch

    try:
        traced = torch.jit.trace(model, (example,), check_trace=False, strict=False)
    except Exception as exc:  # noqa: BLE001
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"torch.jit.trace could not trace the model: {type(exc).__name__}: {first}") from exc
    shape = tuple(example.shape)
    dynamic = {"batch": True, "height": True, "width": True}
    notes: list[str] = []
    if check:
        # A trace replays the operations recorded for the example: sizes computed in Python
        # become constants. Compare with the eager model at another size to know.
        fits = _trace_fits(model, traced, _second_shape(model, shape))
        if fits is None and fixed_input_size(model) is not None:
            batch = _trace_fits(model, traced, _second_shape(model, shape, batch_only=True))
            dynamic = {"batch": batch is not False, "height": False, "width": False}
        elif fits is False:
            batch = _trace_fits(model, traced, _second_shape(model, shape, batch_only=True))
            dynamic = {"batch": bool(batch), "height": False, "width": False}
        notes = _fixed_notes(dynamic, shape, model)
        if fits is False:
            notes.append(
                "tracing froze sizes computed in Python: the TorchScript module gives errors or wrong results for "
                "other input sizes (use .onnx or .pt2 for any size)"
            )
    with atomic_target(path, force) as tmp:
        torch.jit.save(traced, str(tmp))
    return ExportResult(path, "torchscript", shape, dynamic, [path], notes)


def export_models(
    model: "SegmentationModel",
    paths: Sequence[str | os.PathLike[str]],
    *,
    input_shape: Sequence[int] | None = None,
    force: bool = False,
    check: bool = True,
    external_data: bool | None = None,
    opset: int | None = None,
    static: bool = False,
) -> list[ExportResult]:
    """Write ``model`` to each of ``paths``, in the format each suffix names (:data:`FORMATS`).

    ``static`` (ONNX and ``.pt2``) fixes batch, height and width at the
    example's sizes: a quick capture for models whose dynamic capture is slow.
    When one export fails, the :class:`ExportError` carries the results of
    those already written in its ``written`` attribute.

    ``.onnx`` and ``.pt2`` share one ``torch.export`` capture. ``input_shape``
    (N,C,H,W) is the example the exports trace; the default is
    :func:`default_input_shape` (a batch below 2 is raised to 2: torch.export
    fixes dimensions whose example size is 1). ``check`` (TorchScript only)
    compares the trace with the eager model at a second input size.
    ``external_data`` (ONNX only) keeps the weights in ``<path>.data``; by
    default only for models with more than :data:`ONNX_EXTERNAL_DATA_BYTES` of
    weights (one ONNX file holds at most 2 GiB).
    ``opset`` picks the ONNX opset (default: the exporter's). The model is
    exported in eval mode and left in the mode it had.

    Every path is checked before anything is written: ``FileExistsError`` when
    one exists and ``force`` is not set, ``ValueError`` for an unknown suffix.
    Raises :class:`ExportError` when the model cannot be exported and
    :class:`specseg.artifacts.ArtifactError` when an artifact cannot be written.
    """
    import torch

    targets = [Path(p) for p in paths]
    kinds = [format_for(p) for p in targets]
    if len({t.resolve() for t in targets}) != len(targets):
        raise ValueError(f"the same output file is named twice: {', '.join(map(str, targets))}")
    for target in targets:
        check_writable(target, force)
    if "onnx" in kinds:
        _require_onnx()
    if any(k != "safetensors" for k in kinds) and any(t.is_meta for t in model.parameters()):
        raise ExportError("the model is on the meta device (a dry-run model) and has no weights to export")
    shape = _example_shape(model, input_shape)
    if any(k != "safetensors" for k in kinds):
        _check_example(model, shape)
    device = next(model.parameters()).device
    example = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    results: list[ExportResult] = []
    program = None
    with _eval_mode(model), _quiet():
        for target, kind in zip(targets, kinds):
            try:
                if kind == "safetensors":
                    from specseg.artifacts import save_artifact

                    save_artifact(model, target, force=force)
                    results.append(ExportResult(target, "safetensors", None, {}, [target], []))
                    continue
                if kind in ("onnx", "pt2") and program is None:
                    program = export_program(model, example, static=static)
                if kind == "onnx":
                    assert program is not None
                    results.append(_write_onnx(model, target, example, program, force, external_data, opset, static))
                elif kind == "pt2":
                    assert program is not None
                    results.append(_write_pt2(model, target, example, program, force, static))
                else:
                    results.append(_write_torchscript(model, target, example, check, force))
            except ExportError as exc:
                exc.written = list(results)  # type: ignore[attr-defined] - reported by the CLI
                raise
    return results


def export_model(
    model: "SegmentationModel",
    path: str | os.PathLike[str],
    *,
    input_shape: Sequence[int] | None = None,
    force: bool = False,
    check: bool = True,
    external_data: bool | None = None,
    opset: int | None = None,
) -> ExportResult:
    """Write ``model`` to ``path`` in the format its suffix names: ``.safetensors`` (an artifact),
    ``.onnx``, ``.pt2`` (``torch.export``) or ``.pt`` (TorchScript). See :func:`export_models`.
    """
    return export_models(
        model, [path], input_shape=input_shape, force=force, check=check, external_data=external_data, opset=opset
    )[0]
