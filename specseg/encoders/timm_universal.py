"""``tu-<name>``: any timm model with ``features_only`` support, under the encoder contract.

timm models come in three feature layouts, told apart by their reductions:

* CNN style, first feature at stride 2 (ResNet, EfficientNet, ...);
* transformer style, first feature at stride 4 (Swin, ConvNeXt, ...):
  the missing stride-2 stage becomes an empty 0-channel map, as in SMP, so
  decoders see the same number of features whatever the backbone;
* VGG style, whose first feature is at stride 1.

Channels-last (NHWC) feature maps are permuted to NCHW.

``output_stride`` 16 or 8 uses timm's own dilation where the model has it;
otherwise, for models whose deep stages downsample with strided
convolutions only (SE-Net, DPN, ...), those convolutions are turned into
dilated ones as SMP does for its own encoders. Models that downsample by
pooling or patch merging raise :class:`NotDilatableError`.

The state-dict layout (``model.<timm keys>``) equals SMP's ``tu-`` encoders.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import torch
from torch import nn

from specseg.encoders import timm_layout
from specseg.encoders.base import EncoderMixin, dilate_convolutions
from specseg.encoders.sizes import SizeRule, rule_from_sizes
from specseg.errors import EncoderBuildError, NotDilatableError

#: Kept importable from here (it moved to :mod:`specseg.errors`).
__all__ = ["NotDilatableError", "TimmUniversalEncoder"]

#: Output strides a ``tu-`` encoder can be built at.
OUTPUT_STRIDES = (8, 16, 32)
#: Depths a ``tu-`` encoder can be built at.
MAX_DEPTH = 5


def _dilation_method(name: str, depth: int, output_stride: int, params: dict[str, Any]) -> str:
    """``native`` or ``stages``: how ``name`` reaches ``output_stride`` with exactly the declared strides.

    From the timm index when it speaks for this model (no extra params);
    otherwise checked now on meta-device copies. Raises :class:`NotDilatableError`.
    """
    from specseg.encoders import timm_index

    verdict = timm_index.dilation_verdict(name, depth, output_stride) if not params else None
    if verdict is None:
        verdict = find_dilation(name, depth, output_stride, params)
    if verdict in ("native", "stages"):
        return verdict
    raise NotDilatableError(
        f"timm model {name!r} cannot be dilated to output_stride {output_stride}: {verdict}; "
        "use output_stride 32 (or a smaller encoder.depth)"
    )


def _size_rule(name: str, params: dict[str, Any]) -> Any:
    """The model's :class:`~specseg.encoders.sizes.SizeRule` (None: any size), from the index or checked now."""
    from specseg.encoders import timm_index

    if not params:
        known, rule = timm_index.size_rule(name)
        if known:
            return rule
    return find_size_rule(name, params)


@functools.lru_cache(maxsize=256)
def probe(name: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], bool]:
    """Default-level reductions, all levels' reductions and channels, and the NHWC flag of a timm model.

    Built on the meta device when possible. The full level list matters:
    an encoder may take levels ``features_only`` leaves out by default
    (dla's stride-2 level, tresnet's stages).
    """
    import timm

    try:
        with torch.device("meta"):
            model = timm.create_model(name, features_only=True, pretrained=False)
    except Exception:  # noqa: BLE001 - some models cannot be built on the meta device
        model = timm.create_model(name, features_only=True, pretrained=False)
    info = model.feature_info
    levels = list(info.info)
    return (
        tuple(info.reduction()),
        tuple(int(level["reduction"]) for level in levels),
        tuple(int(level["num_chs"]) for level in levels),
        getattr(model, "output_fmt", None) == "NHWC",
    )


def feature_style(name: str, reductions: tuple[int, ...]) -> str:
    """``cnn``, ``transformer`` or ``vgg`` (see :func:`specseg.encoders.timm_layout.feature_style`)."""
    return timm_layout.feature_style(name, reductions)


def feature_indices(name: str, style: str, depth: int) -> tuple[int, ...]:
    """The timm ``out_indices`` giving an encoder of ``depth`` stages (see :mod:`specseg.encoders.timm_layout`)."""
    return timm_layout.feature_indices(name, style, depth)


def _patch_inception_padding(model: nn.Module) -> None:
    # SMP's fix for the Inception networks: pad 3x3 convolutions and max-pools so every stride-2 step halves exactly.
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3):
            m.padding = (1, 1)
        if isinstance(m, nn.MaxPool2d):
            m.padding = (1, 1)


def _patch_xception_padding(model: nn.Module) -> None:
    # SMP's fix for Xception: pad the two stem convolutions, so the stride-2 feature is exactly H/2.
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)][:2]
    for conv in convs:
        conv.padding = (1, 1)


PATCHES = {"inception_padding": _patch_inception_padding, "xception_padding": _patch_xception_padding}


def _is_pooling_downsample(module: nn.Module) -> bool:
    name = type(module).__name__.lower()
    if "pool" not in name and "downsample" not in name and "merg" not in name:
        return False
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return False
    stride = getattr(module, "stride", 2)
    stride = stride if isinstance(stride, (tuple, list)) else (stride,)
    return any(s != 1 for s in stride)


def dilate_by_stages(model: nn.Module, output_stride: int) -> None:
    """Turn the strided convolutions of stages deeper than ``output_stride`` into dilated ones (SMP's way).

    Works on timm's sequential feature extractors (``FeatureListNet``), whose
    modules run in order between feature taps; raises :class:`NotDilatableError`
    where a stage downsamples by other means than strided convolutions.
    """
    from timm.models._features import FeatureDictNet

    if not isinstance(model, FeatureDictNet):
        raise NotDilatableError("its feature extractor is not sequential, so its stages cannot be dilated")
    reductions = list(model.feature_info.reduction())
    groups: list[tuple[int, list[nn.Module]]] = []
    current: list[nn.Module] = []
    for name, module in model.items():
        current.append(module)
        if name in model.return_layers:
            groups.append((reductions[len(groups)], current))
            current = []
    for reduction, modules in groups:
        if reduction <= output_stride:
            continue
        strided = [
            m for part in modules for m in part.modules() if isinstance(m, nn.Conv2d) and any(s != 1 for s in m.stride)
        ]
        pools = [m for part in modules for m in part.modules() if _is_pooling_downsample(m)]
        if pools or not strided:
            how = f"with {type(pools[0]).__name__}" if pools else "without a strided convolution"
            raise NotDilatableError(f"its stride-{reduction} stage downsamples {how}, which cannot be dilated")
        for part in modules:
            # specseg's own extension (SMP leaves these to timm): even kernels keep the map size.
            dilate_convolutions(part, reduction // output_stride, keep_size=True)


class TimmUniversalEncoder(nn.Module, EncoderMixin):
    """A timm ``features_only`` model exposing the specseg encoder contract.

    ``pretrained`` is False, True (timm downloads the model's weights: the
    tag in ``name``, or timm's default), or a path to a local checkpoint in
    timm's format (used instead of the download; timm adapts the first
    convolution to ``in_channels`` and drops the classifier). ``patch``
    names a fix applied after building (see :data:`PATCHES`).

    ``dilation`` says how to reach an ``output_stride`` below the selected
    levels' deepest stride: ``native`` (timm's own ``output_stride``),
    ``stages`` (:func:`dilate_by_stages`), or None to use what the timm
    index verified for this model (or, for a model it cannot speak for, to
    verify both ways on the meta device now). Raises
    :class:`NotDilatableError` when neither gives exactly the declared strides.
    """

    def __init__(
        self,
        name: str,
        depth: int = 5,
        output_stride: int = 32,
        in_channels: int = 3,
        pretrained: bool | str = False,
        patch: str | None = None,
        dilation: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        import timm

        if not 1 <= depth <= MAX_DEPTH:
            raise EncoderBuildError(f"encoder depth must be 1..{MAX_DEPTH}, got {depth}", "depth")
        if output_stride not in OUTPUT_STRIDES:
            raise EncoderBuildError(f"output_stride must be 8, 16 or 32, got {output_stride}", "output_stride")
        from specseg.encoders.encoder_params import TIMM_RESERVED

        reserved = set(TIMM_RESERVED) & set(kwargs)
        if reserved:
            raise EncoderBuildError(f"encoder.params may not set {sorted(reserved)}; they come from the spec", "params")
        if patch is not None and patch not in PATCHES:
            raise ValueError(f"unknown patch {patch!r}; known: {sorted(PATCHES)}")
        self.name = name
        default_reductions, all_reductions, _, self._channels_last = probe(name)
        try:
            plan = timm_layout.layout(name, default_reductions, all_reductions, depth)
        except timm_layout.LayoutError as exc:
            raise EncoderBuildError(str(exc), exc.field) from None
        style, indices = plan.style, plan.indices
        # Only strides the selected features reach matter: depth 3 at output_stride 16 needs no dilation.
        method = "none"
        # The index describes timm's defaults; extra arguments or a patch are checked live.
        live_params = {**kwargs, **({"patch": patch} if patch is not None else {})}
        if plan.needs_dilation(output_stride):
            method = dilation or _dilation_method(name, depth, output_stride, live_params)
        create_kwargs: dict[str, Any] = dict(features_only=True, in_chans=in_channels, out_indices=indices, **kwargs)
        if method == "native":
            create_kwargs["output_stride"] = output_stride
        if isinstance(pretrained, str):
            create_kwargs["pretrained"] = True
            create_kwargs["pretrained_cfg_overlay"] = {"file": pretrained, "source": ""}
        else:
            create_kwargs["pretrained"] = bool(pretrained)
        self._style = style
        self.model = timm.create_model(name, **create_kwargs)
        channels = list(self.model.feature_info.channels())
        if patch is not None:
            PATCHES[patch](self.model)
        if method == "stages":
            try:
                dilate_by_stages(self.model, output_stride)
            except NotDilatableError as exc:
                raise NotDilatableError(
                    f"timm model {name!r} cannot be dilated to output_stride {output_stride}: {exc}; "
                    "use output_stride 32 (or a smaller encoder.depth)"
                ) from None
        #: Input sizes the model takes (None: any; the architecture's divisibility rule applies on top).
        self.input_size_rule = None if dilation is not None else _size_rule(name, live_params)
        if live_params and (len(channels) != len(plan.reductions) or (self.input_size_rule is not None and self.input_size_rule.only == ())):
            # The index describes the model as timm builds it by default; params may change its stages.
            found = "takes no input size" if len(channels) == len(plan.reductions) else f"has {len(channels)} feature levels, not {len(plan.reductions)}"
            raise EncoderBuildError(f"with encoder.params {kwargs}, timm model {name!r} {found}", "params")
        # The declared maps: the input, the empty stride-2 map of transformer-style models,
        # then timm's features at their reductions, capped at the output stride (deeper ones are dilated).
        strides = [min(int(r), output_stride) for r in plan.reductions]
        if style == "transformer":
            self._out_channels = [in_channels, 0] + channels
            self._feature_strides = [1, 2] + strides
        elif style == "vgg":
            self._out_channels = channels
            self._feature_strides = strides
            self._first_layout = "map"
        else:
            self._out_channels = [in_channels] + channels
            self._feature_strides = [1] + strides
        self._depth = depth
        self._in_channels = in_channels
        self._output_stride = output_stride

    def make_dilated(self, output_stride: int) -> None:
        """Dilation is chosen when timm builds the model (``output_stride`` argument), never afterwards."""
        raise NotImplementedError("timm-backed encoders are dilated when built; pass output_stride to the constructor")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``depth + 1`` NCHW feature maps, the first being ``x``."""
        features = list(self.model(x))
        if self._channels_last:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        if self._style == "transformer":
            n, _, h, w = x.shape
            features = [torch.empty((n, 0, h // 2, w // 2), dtype=x.dtype, device=x.device)] + features
        if self._style != "vgg":
            features = [x] + features
        return features


# --- live checks: what the index would say, found now on meta-device copies (also used to generate it) ---

#: Sizes tried first; a model passing them all takes any multiple of 32.
QUICK_SIZES = (32, 64, 96, 160, 256)
#: Sizes tried when a quick one fails, to find the model's rule (with the model's own size and twice it).
SCAN_SIZES = tuple(range(32, 513, 32))
#: (depth, output_stride) pairs whose dilation is checked; other pairs follow from these levels.
DILATIONS = ((5, 16), (5, 8), (4, 8), (4, 16), (3, 8))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    return f"{type(exc).__name__}: {detail}"[:300]


def _build(name: str, depth: int, output_stride: int, method: str, params: dict[str, Any], meta: bool) -> Any:

    context = torch.device("meta") if meta else contextlib.nullcontext()
    with context, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return TimmUniversalEncoder(name, depth=depth, output_stride=output_stride, dilation=method, **params)


def _meta_unsupported(exc: BaseException) -> bool:
    """Whether ``exc`` is the meta device's limitation rather than the model's."""
    if isinstance(exc, NotImplementedError):
        return True
    text = str(exc).lower()
    # Not a bare "meta": class names such as MetaFormer contain it.
    markers = ("meta tensor", "device meta", "device='meta'", "on meta", "'meta'", "meta device", "item()", "data-dependent", "data dependent")
    return not isinstance(exc, TypeError) and any(marker in text for marker in markers)


def check_strides(encoder: Any, size: int, meta: bool = True) -> str | None:
    """Run ``encoder`` on a ``size`` x ``size`` input; None when every map has its declared stride and channels, else why not."""
    device = "meta" if meta else "cpu"
    x = torch.zeros(1, encoder.in_channels, size, size, device=device)
    encoder.eval()  # as `specseg build` runs it (a training batch of one 1x1 map is the batch's problem, not the size's)
    with torch.inference_mode():
        features = encoder(x)
    strides = list(encoder.feature_info.strides)
    channels = encoder.out_channels
    if len(features) != len(strides):
        return f"{len(features)} feature maps instead of {len(strides)}"
    for i, (feature, stride, width) in enumerate(zip(features, strides, channels)):
        expected = (size // stride, size // stride)
        got = tuple(int(v) for v in feature.shape[-2:])
        if got != expected or int(feature.shape[1]) != width:
            return (
                f"feature {i} is {int(feature.shape[1])}x{got[0]}x{got[1]} at a {size}x{size} input, "
                f"declared {width}x{expected[0]}x{expected[1]} (stride {stride})"
            )
    return None


class _Runner:
    """Builds and runs one model on the meta device, falling back to the CPU where meta cannot run it."""

    def __init__(self, name: str, params: dict[str, Any]):
        self.name = name
        self.params = params
        self.meta = True
        self.no_native = False
        self.img_size: int | None = None
        self.cache: dict[tuple[int, int, str], Any] = {}

    def encoder(self, depth: int, output_stride: int, method: str) -> Any:
        key = (depth, output_stride, method)
        if key not in self.cache:
            self.cache[key] = _build(self.name, depth, output_stride, method, self.params, self.meta)
        return self.cache[key]

    def check(self, depth: int, output_stride: int, method: str, size: int) -> str | None:
        """None if the encoder builds and runs at ``size`` with its declared strides, else the reason."""
        try:
            encoder = self.encoder(depth, output_stride, method)
            return check_strides(encoder, size, self.meta)
        except Exception as exc:  # noqa: BLE001 - any failure is a verdict about the model
            if self.meta and _meta_unsupported(exc):
                self.meta = False
                self.cache.clear()
                return self.check(depth, output_stride, method, size)
            return _first_line(exc)


def _sizes(runner: _Runner, depth: int) -> tuple[SizeRule | None, str | None]:
    """The size rule of the encoder at ``depth`` (output stride 32), and a reason if no size works."""
    quick = {s: runner.check(depth, 32, "none", s) for s in QUICK_SIZES}
    if all(v is None for v in quick.values()):
        return None, None
    sizes = tuple(sorted(set(SCAN_SIZES) | ({runner.img_size, 2 * runner.img_size} if runner.img_size else set())))
    results = {s: quick.get(s) if s in quick else runner.check(depth, 32, "none", s) for s in sizes}
    rule = rule_from_sizes([s for s, v in results.items() if v is None], sizes)
    if rule is not None and rule.only == ():
        reasons = [v for _, v in sorted(results.items()) if v]
        # The largest size's reason: small sizes fail for reasons of their own (a 1x1 map under a 3x3 kernel).
        return rule, reasons[-1] if reasons else "no input size works"
    return rule, None


def _test_size(rule: SizeRule | None) -> int:
    """A valid input size whose deepest map is at least 2x2 (so a wrong padding shows)."""
    if rule is None:
        return 64
    return rule.nearest(64) or 64


def find_dilation(name: str, depth: int, output_stride: int, params: dict[str, Any] | None = None, size: int | None = None) -> str:
    """``native`` or ``stages`` (the first that gives exactly the declared strides), or why neither does."""
    runner = _Runner(name, dict(params or {}))
    if size is None:
        rule, _ = _sizes(runner, depth) if params else size_rule_from_index(name)
        size = _test_size(rule)
    return _dilation(runner, depth, output_stride, size)


def size_rule_from_index(name: str) -> tuple[SizeRule | None, None]:
    from specseg.encoders import timm_index

    return timm_index.size_rule(name)[1], None


def _short(reason: str) -> str:
    """A dilation failure without the wrapper text the builder adds."""
    reason = reason.removeprefix("NotDilatableError: ")
    if " cannot be dilated to output_stride " in reason and ": " in reason:
        reason = reason.split(": ", 1)[1].split("; use output_stride")[0]
    if "unexpected keyword" in reason and "output_stride" in reason:
        return "timm has no output_stride option for it"
    return reason


def _dilation(runner: _Runner, depth: int, output_stride: int, size: int) -> str:
    reasons = []
    for method in ("native", "stages"):
        if method == "native" and runner.no_native:
            reasons.append("timm has no output_stride option for it")
            continue
        reason = runner.check(depth, output_stride, method, size)
        if reason is None:
            return method
        reason = _short(reason)
        if method == "native" and reason == "timm has no output_stride option for it":
            runner.no_native = True
        reasons.append(reason if method == "native" else f"dilating its stages: {reason}")
    return "; ".join(dict.fromkeys(reasons))


def find_size_rule(name: str, params: dict[str, Any] | None = None, depth: int = 5) -> SizeRule | None:
    """The input sizes ``name`` (with ``params``) takes, found by running it."""
    return _sizes(_Runner(name, dict(params or {})), depth)[0]
