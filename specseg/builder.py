"""Compiling a spec into a :class:`SegmentationModel`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from specseg.blocks.pointwise import use_pointwise_convolutions
from specseg.encoders.factory import EncoderBuildError, build_encoder, encoder_error
from specseg.errors import Location, SpecError, SpecIssue, SpecPath
from specseg.heads import ClassificationHead, SegmentationHead
from specseg.loader.document import Document
from specseg.loader.compose import compose
from specseg.model import SegmentationModel, SpecNetwork
from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec
from specseg.spec.versions import AnySpec, is_spec
from specseg.spec.validation import validate_document

if TYPE_CHECKING:
    from specseg.weights import BackgroundDigest


def initialize_decoder(module: nn.Module) -> None:
    """SMP's decoder initialisation: He-uniform convolutions, unit norms, Xavier linears."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_uniform_(m.weight, mode="fan_in", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm2d)):
            if m.weight is not None:
                nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def initialize_head(module: nn.Module) -> None:
    """SMP's head initialisation: Xavier-uniform weights, zero biases."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run a block under ``seed`` without disturbing the caller's global RNG state."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


#: In-place initialisers (and the arithmetic they use) that are no-ops on data-less meta tensors:
#: tensor methods, and ``torch.nn.init``'s functions (their own torch-function handling would
#: otherwise run their bodies outside the mode below).
_META_NOOP_FUNCTIONS = frozenset(
    [
        getattr(torch.Tensor, name)
        for name in (
            "normal_", "uniform_", "fill_", "zero_", "erfinv_", "mul_", "add_", "sub_", "div_", "clamp_",
            "clamp_min_", "clamp_max_", "copy_", "exponential_", "bernoulli_", "random_", "cauchy_",
            "log_normal_", "geometric_",
        )
    ]
    + [
        getattr(nn.init, name)
        for name in dir(nn.init)
        if name.endswith("_") and not name.startswith("_") and callable(getattr(nn.init, name))
    ]
)


class _SkipInitOnMeta(TorchFunctionMode):
    """Skip in-place initialisation of meta tensors.

    A meta tensor holds no data, so initialising it only costs time: torch
    runs meta ``normal_``/``uniform_`` through its Python reference
    implementations, whose first use imports ``torch._dynamo`` (about 1.5 s
    and 100 MiB). The result is the same tensor either way.
    """

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func in _META_NOOP_FUNCTIONS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **(kwargs or {}))


def _building_on_meta() -> contextlib.AbstractContextManager[Any]:
    """:class:`_SkipInitOnMeta` when modules are created on the meta device, else nothing."""
    return _SkipInitOnMeta() if torch.empty(()).is_meta else contextlib.nullcontext()


def resolve(source: Any, overrides: Sequence[str] = ()) -> tuple[ModelSpec, Document | None, Path | None]:
    """Load and validate any spec source, keeping its document for error locations."""
    if is_spec(source) and not overrides:
        return source, None, None
    if is_spec(source):
        source = source.model_dump(mode="json")
    doc, base = compose(source, overrides)
    return validate_document(doc), doc, base


def _locator(doc: Document | None) -> Callable[[SpecPath], Location | None]:
    """Where a spec path sits in ``doc`` (None without a document)."""
    return lambda path: doc.locate(path) if doc is not None else None


def _weights_file(spec: ModelSpec, base_dir: Path | None) -> tuple[Path, str | None]:
    """The whole-model weights file of a spec, resolved against the spec's directory."""
    assert spec.weights is not None
    raw, sha256 = (spec.weights, None) if isinstance(spec.weights, str) else (spec.weights.path, spec.weights.sha256)
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path, sha256


def _load_whole_model(model: SegmentationModel, state_dict: dict[str, torch.Tensor], what: str) -> SegmentationModel:
    """Put ``state_dict`` into a model built on the meta device, without copying twice."""
    from specseg.weights import load_into

    load_into(model, state_dict, what, assign=True)
    return model


def build_from_spec(
    spec: ModelSpec,
    doc: Document | None = None,
    base_dir: Path | None = None,
    *,
    state_dict: dict[str, torch.Tensor] | None = None,
    meta_model: SegmentationModel | None = None,
    digest: BackgroundDigest | None = None,
) -> SegmentationModel:
    """Build the model for a validated spec (``doc`` only serves error locations).

    With whole-model ``weights``, the model is built on the meta device (no
    random initialisation, no encoder download) and the checkpoint's tensors
    are assigned in place: loading a trained model costs one read of the file.
    ``state_dict`` given (e.g. read from an artifact) takes the same path with
    those tensors instead of the spec's ``weights`` file; a mismatch then
    raises :class:`specseg.weights.WeightsError`. ``meta_model`` (this spec
    already built on the meta device, e.g. by the memory guard) and
    ``digest`` (the pinned file's hash, started earlier) save doing that work twice.
    """

    locate = _locator(doc)
    if spec.weights is None and state_dict is None:
        return _build(spec, locate, base_dir, load_encoder_weights=True)

    from specseg.dryrun import meta_model as build_on_meta
    from specseg.weights import WeightsError, read_state_dict

    if meta_model is None:
        meta_model = build_on_meta(spec, doc, base_dir)
    if state_dict is not None:
        return _assign(meta_model, spec, locate, base_dir, state_dict, "the given weights")
    path, sha256 = _weights_file(spec, base_dir)
    try:
        return _assign(meta_model, spec, locate, base_dir, read_state_dict(path, sha256, digest), f"the weights in {path}")
    except WeightsError as exc:
        where = ("weights",) if isinstance(spec.weights, str) else ("weights", "path")
        raise SpecError([SpecIssue(str(exc), where, locate(where))]) from None


def start_digest(spec: ModelSpec, base_dir: Path | None) -> BackgroundDigest | None:
    """Start hashing the spec's sha256-pinned weights file on a thread (None when nothing is pinned)."""
    if spec.weights is None or isinstance(spec.weights, str) or spec.weights.sha256 is None:
        return None
    from specseg.weights import BackgroundDigest

    path, _ = _weights_file(spec, base_dir)
    # Only a regular file: a FIFO or device would block or never end; read_state_dict reports those.
    return BackgroundDigest(path) if path.is_file() else None


def _assign(
    model: SegmentationModel, spec: ModelSpec, locate: Any, base_dir: Path | None, state_dict: dict[str, torch.Tensor], what: str
) -> SegmentationModel:
    """Put ``state_dict``'s tensors into ``model``, built on the meta device without encoder weights."""
    if _has_non_persistent_buffers(model):
        # Buffers outside the state dict (e.g. relative position tables) must be computed for real.
        model = _build(spec, locate, base_dir, load_encoder_weights=False)
    return _load_whole_model(model, state_dict, what)


def _has_non_persistent_buffers(model: nn.Module) -> bool:
    persistent = set(model.state_dict())
    return any(name not in persistent for name, _ in model.named_buffers())


def _build(spec: AnySpec, locate: Any, base_dir: Path | None, load_encoder_weights: bool) -> SpecNetwork:
    if isinstance(spec, MultiTaskSpec):
        from specseg.multitask.build import build_multitask

        model = build_multitask(spec, locate, base_dir, load_encoder_weights)
        use_pointwise_convolutions(model)
        return model
    section = spec.decoder
    with seeded(spec.seed), _building_on_meta():
        try:
            encoder = build_encoder(spec.encoder, base_dir, load_weights=load_encoder_weights, kind=section.encoder_kind)
        except EncoderBuildError as exc:
            raise encoder_error(exc, locate) from None
        try:
            decoder = section.build(encoder, spec)
        except SpecError as exc:
            # Rules that depend on the built encoder are raised without positions; add them.
            raise SpecError(
                [i if i.location else SpecIssue(i.message, i.path, locate(i.path), i.related) for i in exc.issues]
            ) from None
        # An architecture with its own head (DPT) builds it; the others share SegmentationHead.
        head = section.build_head(decoder, spec)
        if head is None:
            head = SegmentationHead(
                in_channels=decoder.out_channels,
                out_channels=spec.head.classes,
                kernel_size=spec.head.kernel_size,
                activation=spec.head.activation,
                upsampling=spec.head.upsampling,
            )
        aux = spec.aux_params
        classification = (
            ClassificationHead(
                in_channels=encoder.out_channels[-1],
                classes=aux.classes,
                pooling=aux.pooling,
                dropout=aux.dropout,
                activation=aux.activation,
            )
            if aux is not None
            else None
        )
        initialize_decoder(decoder)
        initialize_head(head)
        if classification is not None:
            initialize_head(classification)
    model = SegmentationModel(
        encoder,
        decoder,
        head,
        classification,
        spec,
        requires_divisible_input=section.defaults.requires_divisible_input,
    )
    # 1x1 convolutions take oneDNN on channels_last inputs at one thread too (2-3x faster there).
    use_pointwise_convolutions(model)
    return model


def build(source: Any, overrides: Sequence[str] = (), max_memory: int | float | str | None = None) -> SpecNetwork:
    """Build a network from a spec path, YAML/JSON text, mapping, ModelSpec or MultiTaskSpec.

    A version-1 spec gives a :class:`SegmentationModel` (a mask, or ``(mask,
    labels)``), a version-2 spec a :class:`specseg.multitask.MultiTaskModel`
    (``{head name: tensor}``).

    ``overrides`` are ``PATH=VALUE`` strings applied like ``--set``. Raises
    :class:`specseg.SpecError` with located issues when the spec is invalid
    or names something that cannot be built.

    Before allocating anything, the model is measured on the meta device and
    refused (:class:`specseg.dryrun.MemoryLimitError`, a ``SpecError`` naming
    the estimate) when its parameters and buffers exceed ``max_memory``:
    bytes, a size such as ``"8GiB"``, ``"off"``/``math.inf`` for no limit, or
    None for half the memory available now.
    """
    spec, doc, base = resolve(source, overrides)
    return guarded_build(spec, doc, base, max_memory)


def guarded_build(
    spec: ModelSpec,
    doc: Document | None,
    base_dir: Path | None,
    max_memory: int | float | str | None = None,
    forward_shapes: Sequence[Sequence[int]] = (),
) -> SegmentationModel:
    """:func:`build_from_spec` behind the memory guard (:func:`specseg.dryrun.check_memory`).

    With whole-model weights, the guard's meta-device build is the one the
    weights are assigned to, and a sha256-pinned file is hashed on a thread
    meanwhile: loading a trained model reads and hashes the file once and
    builds the network once.
    """
    from specseg.dryrun import check_memory, resolve_limit
    from specseg.dryrun import meta_model as build_on_meta
    from specseg.weights import weights_budget

    digest = start_digest(spec, base_dir)
    try:
        meta_model = build_on_meta(spec, doc, base_dir) if spec.weights is not None else None
        check_memory(spec, doc, base_dir, max_memory, forward_shapes=forward_shapes, model=meta_model)
        # Weight files (whole-model and encoder.weights) declaring more tensor bytes than the limit are refused unread.
        with weights_budget(*resolve_limit(max_memory)):
            return build_from_spec(spec, doc, base_dir, meta_model=meta_model, digest=digest)
    finally:
        if digest is not None:
            digest.cancel()  # a no-op once the hash is done; stops the thread when the build failed first


def build_loss(source: Any, overrides: Sequence[str] = ()) -> nn.Module:
    """Build the training loss a spec's ``loss:`` section describes.

    ``source`` is anything :func:`build` accepts, or a loss section itself.
    For a version-2 spec the loss is a :class:`specseg.losses.multitask.MultiTaskLoss`:
    ``loss(outputs, targets)`` with the model's output dict and a dict of
    targets returns ``(total, {head: term})``.
    """
    from specseg.losses.build import build_loss as build_loss_section
    from specseg.losses.build import build_multitask_loss

    if not isinstance(source, (ModelSpec, MultiTaskSpec, str, Path, dict)) and not overrides:
        return build_loss_section(source)
    spec, doc, _ = resolve(source, overrides)
    if spec.loss is None:
        raise SpecError([SpecIssue("the spec has no loss section", ("loss",), doc.locate(()) if doc else None)])
    if isinstance(spec, MultiTaskSpec):
        return build_multitask_loss(spec)
    return build_loss_section(spec.loss)


def describe_loss(spec: AnySpec) -> list[dict[str, Any]] | None:
    """The loss terms of a spec as ``[{"name", "weight", "mode"}]`` for summaries (with ``"head"`` in version 2)."""
    if spec.loss is None:
        return None
    from specseg.spec.loss import iter_terms

    if isinstance(spec, MultiTaskSpec):
        return [
            {"head": head, "name": term.name, "weight": term.weight, "mode": getattr(term, "mode", None)}
            for head, section in spec.loss.items()
            for _, term in iter_terms(section)
        ]
    return [{"name": term.name, "weight": term.weight, "mode": getattr(term, "mode", None)} for _, term in iter_terms(spec.loss)]
