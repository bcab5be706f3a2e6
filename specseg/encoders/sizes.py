"""Input sizes an encoder takes (torch-free).

Most encoders take any height and width (the architecture's divisibility
rule applies on top). Some timm models do not: Swin-style models built for
one image size, MaxViT whose windows must tile every stage. Such an encoder
declares a :class:`SizeRule`, found by the index generator
(:mod:`specseg.encoders.timm_index_build`) on the model itself; the model
refuses other sizes naming the valid ones, and ``specseg build`` tests with
one the rule allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class SizeRule:
    """Valid input heights/widths (each side on its own): multiples of ``multiple`` from ``minimum`` to ``maximum``.

    ``only`` lists the valid sizes instead, for models whose sizes follow no
    such rule. ``maximum`` None means no upper bound.
    """

    multiple: int = 1
    minimum: int = 1
    maximum: int | None = None
    only: tuple[int, ...] | None = None

    def allows(self, size: int) -> bool:
        """Whether one side of ``size`` pixels is valid."""
        if self.only is not None:
            return size in self.only
        return size % self.multiple == 0 and size >= self.minimum and (self.maximum is None or size <= self.maximum)

    def combined(self, stride: int) -> "SizeRule":
        """This rule and "a multiple of ``stride``" together."""
        if self.only is not None:
            return SizeRule(only=tuple(s for s in self.only if s % stride == 0))
        multiple = math.lcm(self.multiple, stride)
        minimum = -(-max(self.minimum, 1) // multiple) * multiple
        return SizeRule(multiple, minimum, self.maximum)

    def describe(self) -> str:
        """The rule in words, e.g. ``224 only`` or ``multiples of 224 from 224``."""
        if self.only is not None:
            return (", ".join(str(s) for s in self.only) or "no size") + (" only" if len(self.only) == 1 else "")
        if self.maximum is not None and self.maximum == self.minimum:
            return f"{self.minimum} only"
        text = f"multiples of {self.multiple}" if self.multiple > 1 else "any size"
        if self.minimum > self.multiple:
            text += f" from {self.minimum}"
        if self.maximum is not None:
            text += f" up to {self.maximum}"
        return text

    def nearest(self, size: int) -> int | None:
        """The valid size closest to ``size`` (the smaller one on a tie), or None if there is none."""
        if self.only is not None:
            candidates: Iterable[int] = self.only
        else:
            low = max(self.minimum, size // self.multiple * self.multiple)
            low = -(-low // self.multiple) * self.multiple
            candidates = [c for c in (low - self.multiple, low, low + self.multiple) if c >= self.minimum]
            if self.maximum is not None:
                candidates = [c for c in candidates if c <= self.maximum] or ([self.maximum] if self.allows(self.maximum) else [])
        valid = [c for c in candidates if self.allows(c)]
        return min(valid, key=lambda c: (abs(c - size), c)) if valid else None

    def to_json(self) -> dict[str, Any]:
        """The compact form stored in the timm index."""
        if self.only is not None:
            return {"only": list(self.only)}
        out: dict[str, Any] = {"multiple": self.multiple, "min": self.minimum}
        if self.maximum is not None:
            out["max"] = self.maximum
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "SizeRule | None":
        """Inverse of :meth:`to_json` (None stays None: any size)."""
        if data is None:
            return None
        if "only" in data:
            return cls(only=tuple(int(s) for s in data["only"]))
        return cls(int(data["multiple"]), int(data["min"]), data.get("max"))


def rule_from_sizes(passed: Iterable[int], tried: Iterable[int]) -> SizeRule | None:
    """The simplest :class:`SizeRule` that allows exactly ``passed`` among ``tried``; None when all passed.

    The generator tries square inputs of the ``tried`` sizes; a rule is kept
    only when it predicts every result, else the valid sizes are listed.
    """
    passed, tried = sorted(set(passed)), sorted(set(tried))
    if passed == tried:
        return None
    if not passed:
        return SizeRule(only=())
    multiple = 0
    for size in passed:
        multiple = math.gcd(multiple, size)
    top = max(tried)
    for rule in (
        SizeRule(multiple, passed[0]),
        SizeRule(multiple, passed[0], passed[-1]),
    ):
        if rule.maximum is not None and rule.maximum >= top:
            continue
        if [t for t in tried if rule.allows(t)] == passed:
            return rule
    return SizeRule(only=tuple(passed))


def dpt_input_multiple(patch: int, depth: int) -> int:
    """What DPT's input sizes must be multiples of: the patch size, and ``2 ** (depth + 1)``.

    DPT reassembles its ``depth`` block maps at scales that halve from 1/4 of
    the input, so consecutive maps must differ by exactly two.
    """
    return max(int(patch), 2 ** (int(depth) + 1))
