"""Parts of a network that ``torch.jit.script`` cannot compile, refused with a message before TorchScript tries.

SMP 0.6 declares U-Net++, DPT (and its ViT encoders) and DPN encoders not
scriptable; specseg's versions are not either. Rather than a TorchScript
compilation error from deep inside the network, ``torch.jit.script`` of a
model holding one raises :class:`~specseg.errors.NotScriptableError`
naming the part and what works instead. Everything else specseg builds from
SMP's architectures and encoders compiles (tested in tests/test_export.py).
"""

from __future__ import annotations

from typing import NoReturn

from specseg.errors import NotScriptableError

#: What to use instead, for every refusal.
ALTERNATIVES = "use torch.jit.trace (specseg build -o model.pt), torch.export (-o model.pt2) or torch.compile instead"


class RefusesScripting:
    """Mixin for a module TorchScript cannot compile: ``torch.jit.script`` raises :class:`NotScriptableError`.

    ``torch.jit.script`` calls ``__prepare_scriptable__`` on every submodule
    before compiling anything, so the refusal comes first, whatever holds the module.
    Subclasses set ``script_refusal``: the part, as users name it.
    """

    #: The part in the message, e.g. "a U-Net++ decoder".
    script_refusal = "this module"

    def __prepare_scriptable__(self) -> NoReturn:
        raise NotScriptableError(f"torch.jit.script cannot compile {self.script_refusal} (nor can it in SMP); {ALTERNATIVES}")
