"""Contract checks for encoders, for specseg's own tests and for plugin authors.

:func:`check_encoder` builds an encoder the way specseg's builder does, in
every configuration a spec can ask for, and reports each way it breaks the
encoder contract (see :mod:`specseg.encoders.base`)::

    from specseg.testing import check_encoder

    def test_my_encoder():
        assert check_encoder("my_encoder") == []
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import nn

from specseg.encoders.base import EncoderMixin
from specseg.encoders.factory import build_encoder
from specseg.encoders.features import EncoderContractError, FeatureInfo
from specseg.encoders.registered import build_registered
from specseg.encoders.registry import EncoderEntry
from specseg.errors import EncoderBuildError
from specseg.spec.encoder import EncoderSpec

Builder = Callable[[int, int, int], nn.Module]


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Run torch ops on one thread inside the block (restoring the previous setting).

    The checks run tiny inputs, for which one thread is fastest; several
    threads per process oversubscribe the CPUs under ``pytest -n`` and can be
    slower by orders of magnitude.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _builder(name_or_class: Any, params: dict[str, Any]) -> tuple[str, Builder]:
    if isinstance(name_or_class, str):
        name = name_or_class

        def build(depth: int, in_channels: int, output_stride: int) -> nn.Module:
            spec = EncoderSpec(name=name, depth=depth, in_channels=in_channels, output_stride=output_stride, params=params)
            return build_encoder(spec, load_weights=False)

        return name, build
    label = getattr(name_or_class, "__name__", repr(name_or_class))
    entry = EncoderEntry(name=label, encoder=name_or_class, source="check_encoder")

    def build_class(depth: int, in_channels: int, output_stride: int) -> nn.Module:
        spec = EncoderSpec.model_construct(
            name=label, weights=None, depth=depth, in_channels=in_channels, output_stride=output_stride, output_indices=None, params=dict(params)
        )
        return build_registered(entry, spec, load_weights=False, base_dir=None, source=None)

    return label, build_class


def _features(encoder: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    out = encoder(x)
    if not isinstance(out, (list, tuple)):
        raise TypeError(f"forward returned {type(out).__name__}, not a list of tensors")
    return list(out)


def _declared(where: str, encoder: nn.Module, problems: list[str]) -> FeatureInfo | None:
    """The encoder's feature declaration, or None (with the problem noted) when it has none or it is inconsistent."""
    if not isinstance(encoder, EncoderMixin):
        problems.append(f"{where}: {type(encoder).__name__} does not derive from specseg.EncoderMixin")
        return None
    try:
        return encoder.feature_info
    except EncoderContractError as exc:
        problems.append(f"{where}: {exc}")
        return None


def _check_features(
    where: str, info: FeatureInfo, features: list[torch.Tensor], x: torch.Tensor, depth: int
) -> list[str]:
    """Each returned map against its declaration: count, channels, and the stride it claims for this input size."""
    problems: list[str] = []
    if len(features) != depth + 1:
        problems.append(f"{where}: forward returned {len(features)} feature maps, expected depth + 1 = {depth + 1}")
    n, _, h, w = x.shape
    for i, feature in enumerate(features[: depth + 1]):
        if not isinstance(feature, torch.Tensor) or feature.ndim != 4:
            problems.append(f"{where}: feature {i} is not a 4-D (N, C, H, W) tensor")
            continue
        declared = info.features[i] if i < len(info.features) else None
        stride = declared.stride if declared is not None else None
        expected = (
            n,
            declared.channels if declared is not None else None,
            h // stride if stride else None,
            w // stride if stride else None,
        )
        if tuple(feature.shape) != expected:
            problems.append(
                f"{where}: feature {i} has shape {tuple(feature.shape)}, expected {expected} "
                f"(out_channels[{i}] channels at the declared stride {stride})"
            )
    return problems


def _check_attributes(where: str, encoder: EncoderMixin, info: FeatureInfo, depth: int, in_channels: int, output_stride: int) -> list[str]:
    problems = []
    # A pyramid encoder halves the resolution per stage until the output stride (then dilates).
    expected_stride = min(output_stride, 2**depth)
    for attr, value, expected in (
        ("depth", encoder.depth, depth),
        ("in_channels", encoder.in_channels, in_channels),
        ("output_stride", encoder.output_stride, expected_stride),
    ):
        if int(value) != expected:
            problems.append(f"{where}: encoder.{attr} is {value}, expected {expected}")
    if len(info.features) != depth + 1:
        problems.append(f"{where}: out_channels has {len(info.features)} entries {info.channels}, expected depth + 1 = {depth + 1}")
    return problems


def check_encoder(
    name_or_class: Any,
    /,
    *,
    check_depths: Sequence[int] | None = None,
    check_in_channels: Sequence[int] = (1, 3, 4),
    check_output_strides: Sequence[int] = (16, 8),
    check_trace: bool = True,
    input_size: int = 64,
    **params: Any,
) -> list[str]:
    """Check an encoder (a registered name, ``tu-<model>``, or an encoder class) against the contract.

    ``params`` are the encoder's ``encoder.params``. Verified, with random
    weights: the declared ``feature_info`` (``depth + 1`` maps, consistent)
    against the real feature maps: channels, and each map at its declared
    stride for the input size (a map declared at stride 16 of a 64x64 input
    must be 4x4); the deepest stride ``min(2**depth, output_stride)``; every depth in
    ``check_depths`` (default 1..5), with ``out_channels`` consistent across
    depths; ``in_channels`` 1, 3 and 4; ``output_stride`` 16 and 8 where the
    encoder accepts them (an encoder that refuses them with an
    ``output_stride`` error is not at fault); train and eval modes (train-mode
    gradients reach the parameters; eval is deterministic); and
    ``torch.jit.trace``. Returns one string per violation; empty means OK.
    Runs single-threaded (see :func:`single_threaded`).
    """
    with single_threaded():
        return _check_encoder(name_or_class, check_depths, check_in_channels, check_output_strides, check_trace, input_size, params)


def _check_encoder(
    name_or_class: Any,
    check_depths: Sequence[int] | None,
    check_in_channels: Sequence[int],
    check_output_strides: Sequence[int],
    check_trace: bool,
    input_size: int,
    params: dict[str, Any],
) -> list[str]:
    name, build = _builder(name_or_class, dict(params))
    depths = list(check_depths) if check_depths is not None else [1, 2, 3, 4, 5]
    size = input_size
    problems: list[str] = []
    deepest = max(depths)

    def attempt(where: str, depth: int, in_channels: int, output_stride: int) -> nn.Module | None:
        try:
            return build(depth, in_channels, output_stride)
        except EncoderBuildError as exc:
            if output_stride != 32 and exc.field == "output_stride":
                return None  # not claimed: refused with a clear output_stride error
            if depth < deepest and exc.field == "depth":
                return None  # e.g. stride-4 encoders refuse depth 1 clearly
            problems.append(f"{where}: building failed ({exc.field}): {exc}")
        except Exception as exc:  # noqa: BLE001 - report any failure as a violation
            problems.append(f"{where}: building failed: {type(exc).__name__}: {exc}")
        return None

    def run(where: str, encoder: nn.Module, depth: int, in_channels: int, output_stride: int) -> list[torch.Tensor] | None:
        torch.manual_seed(0)
        x = torch.randn(2, in_channels, size, size)
        encoder.eval()
        try:
            with torch.no_grad():
                features = _features(encoder, x)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{where}: forward failed: {type(exc).__name__}: {exc}")
            return None
        info = _declared(where, encoder, problems)
        if info is not None:
            problems.extend(_check_attributes(where, encoder, info, depth, in_channels, output_stride))  # type: ignore[arg-type]
            problems.extend(_check_features(where, info, features, x, depth))
        return features

    seen: dict[int, list[int]] = {}
    for depth in sorted(depths):
        where = f"{name} depth {depth}"
        encoder = attempt(where, depth, 3, 32)
        if encoder is None:
            continue
        features = run(where, encoder, depth, 3, 32)
        info = _declared(where, encoder, [])
        seen[depth] = info.channels if info is not None else []
        if depth == deepest and features is not None:
            problems.extend(_check_modes(where, encoder, size, check_trace))
    reference = seen.get(deepest)
    if reference is not None:
        for depth, channels in seen.items():
            if depth != deepest and channels != reference[: depth + 1]:
                problems.append(
                    f"{name} depth {depth}: out_channels {channels} is not the first {depth + 1} entries of depth {deepest}'s {reference}"
                )

    for in_channels in check_in_channels:
        if in_channels == 3:
            continue
        where = f"{name} in_channels {in_channels}"
        encoder = attempt(where, deepest, in_channels, 32)
        if encoder is None:
            continue
        run(where, encoder, deepest, in_channels, 32)
        info = _declared(where, encoder, [])
        channels = info.channels if info is not None else []
        if reference is not None and reference and reference[0] == 3 and channels and channels[0] != in_channels:
            problems.append(f"{where}: out_channels[0] is {channels[0]}, expected the input's {in_channels} channels")

    for output_stride in check_output_strides:
        where = f"{name} output_stride {output_stride}"
        encoder = attempt(where, deepest, 3, output_stride)
        if encoder is None:
            continue
        run(where, encoder, deepest, 3, output_stride)
    return list(dict.fromkeys(problems))


def _check_modes(where: str, encoder: nn.Module, size: int, trace: bool) -> list[str]:
    problems: list[str] = []
    in_channels = int(encoder.in_channels) if isinstance(encoder, EncoderMixin) else 3
    torch.manual_seed(1)
    x = torch.randn(2, in_channels, size, size)
    encoder.eval()
    with torch.no_grad():
        first = _features(encoder, x)
        second = _features(encoder, x)
    if any(not torch.equal(a, b) for a, b in zip(first, second)):
        problems.append(f"{where}: eval-mode forward is not deterministic")
    # Train mode updates normalisation statistics; restore them so the trace check compares like with like.
    saved = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    encoder.train()
    try:
        trained = _features(encoder, x)
        shapes = [tuple(t.shape) for t in trained]
        if shapes != [tuple(t.shape) for t in first]:
            problems.append(f"{where}: train-mode feature shapes {shapes} differ from eval-mode ones")
        loss = sum(t.float().mean() for t in trained[1:] if t.numel())
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            loss.backward()
            if not any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in encoder.parameters()):
                problems.append(f"{where}: train-mode gradients do not reach any parameter")
        elif any(p.requires_grad for p in encoder.parameters()):
            problems.append(f"{where}: train-mode features do not depend on the parameters")
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{where}: train-mode forward/backward failed: {type(exc).__name__}: {exc}")
    finally:
        encoder.zero_grad(set_to_none=True)
        encoder.load_state_dict(saved)
        encoder.eval()
    if trace:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                traced = torch.jit.trace(encoder, x, strict=False, check_trace=False)
                with torch.no_grad():
                    replay = list(traced(x))
            if len(replay) != len(first) or any(
                a.shape != b.shape or not torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(replay, first)
            ):
                problems.append(f"{where}: the torch.jit.trace'd encoder gives different features")
        except Exception as exc:  # noqa: BLE001
            problems.append(f"{where}: torch.jit.trace failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return problems
