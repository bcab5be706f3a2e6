"""The public entry points that compile a spec into a :class:`SegmentationModel`: ``build`` and friends.

The work is done by one module per job (moved out of this module; the old
names stay importable from here):

* :mod:`specseg.construct`: encoder, decoder, heads and initialisation of a validated spec;
* :mod:`specseg.initialization`: SMP's initialisers and seeded builds;
* :mod:`specseg.meta_init`: meta-device builds without initialiser costs;
* :mod:`specseg.model_weights`: a spec's whole-model weights file;
* :mod:`specseg.memory_guard`: the memory limit checked before allocating;
* :mod:`specseg.spec.describe`: the loss summary (``describe_loss``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from specseg.construct import construct, locator, meta_model
from specseg.errors import SpecError, SpecIssue
from specseg.initialization import initialize_decoder, initialize_head, seeded
from specseg.loader.compose import compose
from specseg.loader.document import Document
from specseg.memory_guard import check_memory, resolve_limit
from specseg.model import SegmentationModel, SpecNetwork
from specseg.model_weights import assign_weights, start_digest, weights_file
from specseg.spec.describe import describe_loss
from specseg.spec.model import ModelSpec
from specseg.spec.multitask import MultiTaskSpec
from specseg.spec.validation import validate_document
from specseg.spec.versions import AnySpec, is_spec

if TYPE_CHECKING:
    from specseg.weights import BackgroundDigest

__all__ = [
    "build",
    "build_from_spec",
    "build_loss",
    "describe_loss",
    "guarded_build",
    "initialize_decoder",
    "initialize_head",
    "resolve",
    "seeded",
    "start_digest",
]

#: Former private names, kept for code that imported them from here.
_build = construct
_locator = locator


def resolve(source: Any, overrides: Sequence[str] = ()) -> tuple[AnySpec, Document | None, Path | None]:
    """Load and validate any spec source, keeping its document for error locations."""
    if is_spec(source) and not overrides:
        return source, None, None
    if is_spec(source):
        source = source.model_dump(mode="json")
    doc, base = compose(source, overrides)
    return validate_document(doc), doc, base


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
    locate = locator(doc)
    if spec.weights is None and state_dict is None:
        return construct(spec, locate, base_dir, load_encoder_weights=True)

    from specseg.weights import WeightsError, read_state_dict

    if meta_model is None:
        meta_model = _meta_model(spec, doc, base_dir)
    if state_dict is not None:
        return assign_weights(meta_model, spec, locate, base_dir, state_dict, "the given weights")
    path, sha256 = weights_file(spec, base_dir)
    try:
        return assign_weights(meta_model, spec, locate, base_dir, read_state_dict(path, sha256, digest), f"the weights in {path}")
    except WeightsError as exc:
        where = ("weights",) if isinstance(spec.weights, str) else ("weights", "path")
        raise SpecError([SpecIssue(str(exc), where, locate(where))]) from None


#: The module-level name, for the parameter of the same name above.
_meta_model = meta_model


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
    from specseg.weights import weights_budget

    digest = start_digest(spec, base_dir)
    try:
        meta_model = _meta_model(spec, doc, base_dir) if spec.weights is not None else None
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
