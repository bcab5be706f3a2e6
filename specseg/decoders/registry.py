"""Which decoder module builds each spec section: the torch side of an architecture registering itself.

A decoder module registers the function that builds its section's decoder
(and, for architectures with their own head, the head)::

    @register_decoder(UnetDecoderSpec)
    def build_unet(section, encoder, spec):
        return UnetDecoder(encoder.out_channels, ...)

Every module of :mod:`specseg.decoders` is imported on the first lookup, so a
new architecture's module is found without being listed. The dependency goes
one way: this side imports the spec sections; the torch-free spec side never
imports it.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from torch import nn

from specseg.spec.decoders.base import DecoderSpec, architecture_of
from specseg.spec.decoders.checks import raise_feature_issues

if TYPE_CHECKING:
    from specseg.encoders.base import EncoderMixin
    from specseg.spec.model import ModelSpec

#: ``build(section, encoder, spec) -> decoder module``.
DecoderBuilder = Callable[[Any, "EncoderMixin", "ModelSpec"], nn.Module]
#: ``build(section, decoder, spec) -> head module``, for architectures whose head is not SMP's shared one.
HeadBuilder = Callable[[Any, nn.Module, "ModelSpec"], nn.Module]

F = TypeVar("F", bound=DecoderBuilder)


@dataclass(frozen=True)
class ArchitectureBuild:
    """How the torch side builds one architecture's decoder (and head, if it has its own)."""

    section: type[DecoderSpec]
    decoder: DecoderBuilder
    head: HeadBuilder | None = None

    def build_decoder(self, section: DecoderSpec, encoder: "EncoderMixin", spec: "ModelSpec") -> nn.Module:
        """The section's decoder, after its rules on the built encoder's channels (``DecoderSpec.feature_issues``).

        The rules ``validate`` applied to the channels the encoder declares as
        data are applied here to the real encoder, for every architecture, so
        the encoders only a build knows (plugins, ``tu-`` models given params)
        are refused with the same located message before a module is made.
        """
        raise_feature_issues(section.feature_issues(spec, encoder.out_channels))
        return self.decoder(section, encoder, spec)


_BUILDS: dict[str, ArchitectureBuild] = {}
_discovered = False
_lock = threading.Lock()
#: Modules of this package that are not an architecture's decoder.
_SHARED = frozenset({"base", "registry"})


def register_decoder(section: type[DecoderSpec], *, head: HeadBuilder | None = None) -> Callable[[F], F]:
    """Decorator: the function builds ``section``'s decoder; ``head`` builds its own head (else SMP's shared one)."""
    architecture = architecture_of(section)
    if architecture is None:
        raise TypeError(f"{section.__name__} declares no architecture literal")

    def add(build: F) -> F:
        existing = _BUILDS.get(architecture)
        if existing is not None and existing.decoder.__qualname__ != build.__qualname__:
            raise TypeError(f"architecture {architecture!r} has two decoder builders: {existing.decoder.__module__} and {build.__module__}")
        _BUILDS[architecture] = ArchitectureBuild(section, build, head)
        return build

    return add


def _discover() -> None:
    global _discovered
    if _discovered:
        return
    with _lock:
        if _discovered:
            return
        import specseg.decoders as package

        for info in pkgutil.iter_modules(package.__path__):
            if info.name not in _SHARED:
                importlib.import_module(f"{package.__name__}.{info.name}")
        _discovered = True


def build_for(section: DecoderSpec) -> ArchitectureBuild:
    """The registered build of a section's architecture.

    A section without a registered decoder module is a bug in specseg (or in
    the module adding the architecture), not a spec problem: LookupError.
    """
    _discover()
    architecture = architecture_of(type(section))
    found = _BUILDS.get(architecture) if architecture is not None else None
    if found is None:
        raise LookupError(f"no decoder module registers a builder for architecture {architecture!r}")
    return found


def registered_architectures() -> list[str]:
    """Every architecture with a registered decoder builder, sorted."""
    _discover()
    return sorted(_BUILDS)
