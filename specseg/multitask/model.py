"""The network a version-2 spec compiles to: one encoder, named decoders, named heads."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

import torch
from torch import nn

from specseg.model import SpecNetwork, deepest_minimum
from specseg.spec.heads import ENCODER

if TYPE_CHECKING:
    from specseg.spec.multitask import MultiTaskSpec


class MultiTaskModel(SpecNetwork):
    """``forward(x)`` returns ``{head name: tensor}`` in the spec's head order.

    The encoder runs once per forward and each decoder once, whatever the
    number of heads reading it. A segmentation head gives ``(N, classes, H,
    W)``; a classification head ``(N, classes)``. ``sources[head]`` is the
    decoder a head reads, or ``"encoder"`` (the deepest encoder features).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoders: Mapping[str, nn.Module],
        heads: Mapping[str, nn.Module],
        sources: Mapping[str, str],
        spec: "MultiTaskSpec",
        requires_divisible_input: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleDict(decoders)
        self.heads = nn.ModuleDict(heads)
        # A plain dict of strings: constant for tracing, compile and export.
        self.sources = dict(sources)
        # The source name of heads reading the encoder, as an attribute: TorchScript reads no global strings.
        self.encoder_source = ENCODER
        self.spec = spec
        self.requires_divisible_input = requires_divisible_input
        self.min_deepest_size = deepest_minimum(self.decoders.values())
        self._register_load_state_dict_pre_hook(_accept_v1_keys, with_module=True)

    def decoder_modules(self) -> list[nn.Module]:
        """The decoders, in spec order."""
        return list(self.decoders.values())

    def parts(self) -> list[tuple[str, nn.Module | None]]:
        """``encoder``, then ``decoders.<name>`` and ``heads.<name>`` in spec order."""
        return (
            [("encoder", self.encoder)]
            + [(f"decoders.{n}", m) for n, m in self.decoders.items()]
            + [(f"heads.{n}", m) for n, m in self.heads.items()]
        )

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the encoder once, each decoder once, and every head on what it reads."""
        x, relayout = self._prepared_input(x)
        features = self.encoder(x)
        decoded: dict[str, torch.Tensor] = {}
        for name, decoder in self.decoders.items():
            decoded[name] = decoder(features)
        outputs: dict[str, torch.Tensor] = {}
        for name, head in self.heads.items():
            source = self.sources[name]
            out = head(features[-1] if source == self.encoder_source else decoded[source])
            outputs[name] = out.contiguous() if relayout else out
        return outputs

    def translate_state_dict(self, state_dict: Mapping[str, Any]) -> Mapping[str, Any]:
        """A version-1 network's state dict renamed for this network (see :mod:`specseg.multitask.state_dict`); others unchanged."""
        from specseg.multitask.state_dict import is_v1_state_dict, v1_prefix_map, v1_to_v2_state_dict

        if is_v1_state_dict(state_dict) and v1_prefix_map(self.spec) is not None:
            return v1_to_v2_state_dict(state_dict, self.spec)
        return state_dict


def _accept_v1_keys(module: MultiTaskModel, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """``load_state_dict`` pre-hook: rename a version-1 network's keys in place (only for the top module)."""
    if prefix:
        return
    translated = module.translate_state_dict(state_dict)
    if translated is not state_dict:
        state_dict.clear()
        state_dict.update(translated)
