"""``tu-<name>`` ViT encoders for DPT: a timm vision transformer read at chosen blocks.

Unlike the pyramid encoders, a plain ViT keeps one resolution (the patch
stride) through all its blocks; DPT reads the outputs of ``depth`` of them
(``output_indices``), each as an (N, C, H/p, W/p) map plus its prefix tokens
(class, distillation or register tokens). Under the one encoder contract
(:mod:`specseg.encoders.base`) it returns ``depth + 1`` maps, the input
first, and declares every block map at the patch stride with
``prefix_tokens``. The state-dict layout (``model.<timm keys>``, the whole
timm model) equals SMP's DPT encoder.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from specseg.capture import is_capturing
from specseg.scripting import RefusesScripting
from specseg.encoders.base import EncoderMixin
from specseg.encoders.encoder_params import TIMM_RESERVED
from specseg.encoders.features import FeatureInfo
from specseg.encoders.timm_names import checked_timm_name
from specseg.encoders.sizes import dpt_input_multiple
from specseg.errors import EncoderBuildError, InputShapeError
from specseg.spec.decoders.dpt import vit_encoder_issues
from specseg.spec.encoder import EncoderSpec, WeightsFile

#: timm arguments the spec sets itself; ``encoder.params`` may not repeat them.
#: Keywords specseg sets itself (one table for every timm-built encoder).
_RESERVED_PARAMS = tuple(TIMM_RESERVED)


class ViTFeatures(list):
    """The feature maps of a ViT encoder (a plain list, the input first), with ``prefix_tokens`` alongside.

    ``prefix_tokens[i]`` is the (N, T, C) prefix tokens read with feature
    ``i``, or None when there are none (always for the input). Being a list
    keeps the shared model code working: ``features[-1]`` is the deepest
    map, which the classification head pools.
    """

    def __init__(self, features: Sequence[torch.Tensor], prefix_tokens: Sequence[torch.Tensor | None]) -> None:
        super().__init__(features)
        self.prefix_tokens = list(prefix_tokens)


def uniform_block_indices(depth: int, num_blocks: int) -> list[int]:
    """``depth`` block indices spread evenly over ``num_blocks``, the last block always included.

    E.g. 4 of 12 blocks gives [2, 5, 8, 11] (SMP's default).
    """
    return [int(num_blocks / depth * (i + 1)) - 1 for i in range(depth)]


class TimmViTEncoder(RefusesScripting, nn.Module, EncoderMixin):
    """A timm vision transformer (``patch_embed`` + ``forward_intermediates``) read at ``depth`` blocks.

    ``forward(x)`` returns a :class:`ViTFeatures` of ``depth + 1`` NCHW maps:
    the input, then the blocks' outputs. ``feature_info`` declares them (the
    blocks at the patch stride, with prefix tokens when the model has them);
    ``output_indices`` names the blocks read. ``timm_kwargs`` go to ``timm.create_model``.
    Raises :class:`EncoderBuildError` naming the ``encoder:`` key at fault
    when the model does not fit.
    """

    # As SMP's TimmViTEncoder: forward_intermediates and the prefix-token handling are not scriptable.
    script_refusal = "a ViT encoder (DPT's)"

    def __init__(
        self,
        name: str,
        depth: int = 4,
        in_channels: int = 3,
        output_indices: Sequence[int] | None = None,
        pretrained: bool = False,
        timm_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        import timm

        # A mapping rather than **kwargs: timm ViTs take arguments such as
        # ``depth`` that would collide with this class's own.
        kwargs = dict(timm_kwargs or {})
        reserved = sorted(set(_RESERVED_PARAMS) & set(kwargs))
        if reserved:
            raise EncoderBuildError(f"encoder.params may not set {reserved}; they come from the spec", "params")
        if depth < 1:
            raise EncoderBuildError(f"encoder.depth must be at least 1, got {depth}", "depth")
        if output_indices is not None and len(output_indices) != depth:
            raise EncoderBuildError(
                f"output_indices has {len(output_indices)} entries but encoder.depth is {depth}; give one block index per feature",
                "output_indices",
            )
        self.name = name
        try:
            self.model = timm.create_model(name, pretrained=pretrained, in_chans=in_channels, **kwargs)
        except TypeError as exc:
            raise EncoderBuildError(f"timm could not build {name!r} with encoder.params {kwargs}: {exc}", "params") from None
        except (ValueError, AssertionError, RuntimeError) as exc:
            raise EncoderBuildError(f"timm could not build {name!r}: {exc}", "params" if kwargs else "name") from None
        except Exception as exc:  # noqa: BLE001 - what encoder.params do to a timm model is known only to timm
            if not kwargs:
                raise
            raise EncoderBuildError(f"timm could not build {name!r} with encoder.params {kwargs}: {type(exc).__name__}: {exc}", "params") from None
        if not hasattr(self.model, "patch_embed") or not hasattr(self.model, "forward_intermediates"):
            raise EncoderBuildError(
                f"timm model {name!r} is not a vision transformer with a patch embedding and intermediate-block "
                "outputs, which DPT needs; use a ViT such as tu-vit_tiny_patch16_224, tu-vit_small_patch16_224 "
                "or tu-deit_tiny_patch16_224 (for CNN encoders use another architecture, e.g. upernet or fpn)",
                "name",
            )
        feature_info = self.model.feature_info
        num_blocks = len(feature_info)
        if depth > num_blocks:
            raise EncoderBuildError(
                f"timm model {name!r} has {num_blocks} blocks; encoder.depth must be at most {num_blocks}, got {depth}",
                "depth",
            )
        indices = list(output_indices) if output_indices is not None else uniform_block_indices(depth, num_blocks)
        out_of_range = [i for i in indices if not -num_blocks <= i < num_blocks]
        if out_of_range:
            raise EncoderBuildError(
                f"output_indices {out_of_range} out of range: timm model {name!r} has {num_blocks} blocks, "
                f"so indices must be in [-{num_blocks}, {num_blocks - 1}]",
                "output_indices",
            )
        positive = [i % num_blocks for i in indices]
        if any(b <= a for a, b in zip(positive, positive[1:])):
            # timm returns the intermediates in block order, once per block: any other
            # order would silently reorder or drop features.
            raise EncoderBuildError(
                f"output_indices {indices} must name distinct blocks in increasing order (shallowest first); "
                f"as block numbers of {name!r} they are {positive}",
                "output_indices",
            )
        strides = [int(feature_info[i]["reduction"]) for i in indices]
        bad = [s for s in strides if s & (s - 1)]
        if bad:
            raise EncoderBuildError(
                f"timm model {name!r} has feature strides {sorted(set(bad))} (its patch size); DPT rescales its "
                "features by powers of two, so it needs a power-of-two patch size such as 8 or 16 (e.g. tu-vit_small_patch8_224, "
                "tu-vit_tiny_patch16_224)",
                "name",
            )
        patch_embed = self.model.patch_embed
        size = getattr(patch_embed, "img_size", None)
        multiple = dpt_input_multiple(max(strides), depth)
        if getattr(patch_embed, "strict_img_size", False) and size is not None and (size[0] % multiple or size[1] % multiple):
            # The patch embedding takes one size, and DPT at this depth takes none that equals it.
            raise EncoderBuildError(
                f"timm model {name!r} takes {size[0]}x{size[1]} inputs only, and DPT at encoder.depth {depth} needs "
                f"input sizes that are multiples of {multiple}, so no input fits; use a smaller encoder.depth, or set "
                f"encoder.params.img_size to a multiple of {multiple} (or encoder.params.dynamic_img_size: true)",
                "params" if kwargs else "depth",
            )
        self._output_indices = indices
        # timm ViTs without class or register tokens have num_prefix_tokens 0 (or, in old models, no attribute).
        self._num_prefix_tokens = int(getattr(self.model, "num_prefix_tokens", 0))
        self._depth = depth
        self._in_channels = in_channels
        self._out_channels = [in_channels] + [int(feature_info[i]["num_chs"]) for i in indices]
        self._feature_strides = [1] + strides
        self._output_stride = strides[-1]

    @property
    def feature_info(self) -> FeatureInfo:
        """The input, then each block's map at the patch stride (with prefix tokens when the model has them)."""
        return FeatureInfo.pyramid(
            self._out_channels, self._depth, strides=self._feature_strides, prefix_tokens=self.has_prefix_tokens
        )

    @property
    def output_strides(self) -> list[int]:
        """Strides of the block maps (one per block read; the patch size for plain ViTs)."""
        return self.feature_info.strides[1:]

    def make_dilated(self, output_stride: int) -> None:
        """ViT features keep the patch stride: they cannot be dilated."""
        raise NotImplementedError("ViT encoders cannot be dilated: their features keep the patch stride")

    @property
    def output_indices(self) -> list[int]:
        """Indices of the blocks whose outputs are returned."""
        return list(self._output_indices)

    @property
    def has_prefix_tokens(self) -> bool:
        """Whether the model has prefix (class, distillation, register) tokens."""
        return self._num_prefix_tokens > 0

    def check_input_size(self, x: torch.Tensor) -> None:
        """Raise :class:`~specseg.errors.InputShapeError` naming the fix when a fixed-size ViT gets another input size."""
        patch_embed = self.model.patch_embed
        size = getattr(patch_embed, "img_size", None)
        if not getattr(patch_embed, "strict_img_size", False) or size is None:
            return
        h, w = int(x.shape[-2]), int(x.shape[-1])
        if (h, w) != tuple(size):
            raise InputShapeError(
                f"encoder tu-{self.name} takes {size[0]}x{size[1]} inputs only, got {h}x{w}: set "
                f"encoder.params.img_size to your input size ({h} or [{h}, {w}]), or "
                "encoder.params.dynamic_img_size: true to accept any size"
            )

    def forward(self, x: torch.Tensor) -> ViTFeatures:
        """Return the input and the ``depth`` block outputs as NCHW maps, with their prefix tokens."""
        if not is_capturing():
            self.check_input_size(x)
        if self.has_prefix_tokens:
            outputs = self.model.forward_intermediates(
                x, indices=self._output_indices, intermediates_only=True, return_prefix_tokens=True
            )
            return ViTFeatures([x] + [o[0] for o in outputs], [None] + [o[1] for o in outputs])
        features = self.model.forward_intermediates(x, indices=self._output_indices, intermediates_only=True)
        return ViTFeatures([x] + list(features), [None] * (len(features) + 1))


def build_vit_encoder(spec: EncoderSpec, load_weights: bool) -> nn.Module:
    """Build the ViT encoder an ``encoder:`` section describes (DPT's ``encoder_kind = "vit"``).

    ``load_weights=False`` skips downloading pretrained weights. Raises
    :class:`EncoderBuildError` naming the spec key at fault.
    """
    issues = vit_encoder_issues(spec)
    if issues:
        # The validator's rules, for callers that build an encoder section directly.
        raise EncoderBuildError(issues[0].message, issues[0].path[1:])
    if isinstance(spec.weights, WeightsFile) and load_weights:
        raise EncoderBuildError("local weights files are not supported for ViT encoders yet", "weights")
    model_name = checked_timm_name(spec)
    pretrained = False
    if load_weights and isinstance(spec.weights, str):
        # Any weights name other than "imagenet" is a timm pretrained tag.
        if spec.weights != "imagenet" and "." not in model_name:
            model_name = f"{model_name}.{spec.weights}"
        pretrained = True
    return TimmViTEncoder(
        model_name,
        depth=spec.depth,
        in_channels=spec.in_channels,
        output_indices=spec.output_indices,
        pretrained=pretrained,
        timm_kwargs=spec.params,
    )
