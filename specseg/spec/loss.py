"""The ``loss:`` spec section: one loss term, or a weighted sum of terms.

Each term mirrors the options of the matching ``specseg.losses`` module
(and so of segmentation_models_pytorch 0.6), with SMP's defaults.  Checks
that need only the loss section live in the models; checks against the
model head (class count, activation) are in :func:`loss_issues`.

This module must stay importable without torch: ``specseg validate`` uses it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal, Union

from pydantic import Discriminator, Field, Tag, model_validator

from specseg.errors import SpecIssue
from specseg.spec.base import SpecModel

Mode = Literal["binary", "multiclass", "multilabel"]
ClassIndex = Annotated[int, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
ClassList = Annotated[list[ClassIndex], Field(min_length=1)]
WeightList = Annotated[list[NonNegativeFloat], Field(min_length=1)]
Path = tuple[Union[str, int], ...]

_MODE_DOC = (
    "Target layout. 'binary': one foreground class, head with 1 channel, 0/1 target of shape "
    "(N, H, W) or (N, 1, H, W). 'multiclass': mutually exclusive classes, target of class "
    "indices (N, H, W). 'multilabel': independent classes, 0/1 target of shape (N, C, H, W)."
)
_IGNORE_DOC = "Target value marking pixels that take no part in the loss; null for none."
_FROM_LOGITS_DOC = (
    "True if the model outputs raw logits (the loss applies sigmoid, or softmax in multiclass mode); "
    "false if it already outputs probabilities."
)
_CLASS_WEIGHTS_DOC = (
    "Weight of each class in the class average, one per head class (indexed by class, also when "
    "`classes` selects a subset). Not available in binary mode. Null weighs classes equally."
)


def _check_weights(weights: list[float] | None, option: str) -> None:
    """A weighting whose entries are all zero weighs nothing."""
    if weights is not None and sum(weights) <= 0:
        raise ValueError(f"{option} must not all be zero")


class _LossTerm(SpecModel):
    """Fields every loss term has (``name`` is narrowed to a literal by each term)."""

    name: str = Field(description="Loss kind.")
    weight: float = Field(
        1.0,
        gt=0,
        description="Coefficient of this term when the loss is a list of terms (their weighted sum).",
    )


class _OverlapTerm(_LossTerm):
    """Options shared by the region-overlap losses (Jaccard, Dice, Tversky)."""

    mode: Mode = Field(description=_MODE_DOC)
    classes: ClassList | None = Field(
        None,
        description="Indices of the classes that contribute to the loss (distinct); null for all. "
        "Not available in binary mode.",
    )
    log_loss: bool = Field(False, description="Use -log(score) instead of 1 - score.")
    from_logits: bool = Field(True, description=_FROM_LOGITS_DOC)
    smooth: float = Field(0.0, ge=0, description="Additive smoothing of the score's numerator and denominator.")
    ignore_index: int | None = Field(None, description=_IGNORE_DOC)
    eps: float = Field(
        1e-7, gt=0, description="Lower clamp of the score's denominator (and of the score under log)."
    )
    class_weights: WeightList | None = Field(None, description=_CLASS_WEIGHTS_DOC)

    @model_validator(mode="after")
    def _check_class_options(self) -> _OverlapTerm:
        """Class selection and weighting need more than one class, as in SMP."""
        if self.mode == "binary" and self.classes is not None:
            raise ValueError("`classes` is not available in binary mode (there is only one class)")
        if self.mode == "binary" and self.class_weights is not None:
            raise ValueError("`class_weights` is not available in binary mode")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ValueError(f"`classes` must be distinct, got {self.classes}")
        _check_weights(self.class_weights, "`class_weights`")
        return self


class JaccardLossSpec(_OverlapTerm):
    """Jaccard (IoU) loss: 1 - soft IoU per class, averaged over classes."""

    name: Literal["jaccard"] = Field(description="Loss kind: Jaccard (IoU) loss.")


class DiceLossSpec(_OverlapTerm):
    """Dice loss: 1 - soft Dice coefficient per class, averaged over classes."""

    name: Literal["dice"] = Field(description="Loss kind: Dice loss.")


class TverskyLossSpec(_OverlapTerm):
    """Tversky loss: Dice with separate false-positive and false-negative penalties."""

    name: Literal["tversky"] = Field(description="Loss kind: Tversky loss.")
    alpha: float = Field(0.5, ge=0, description="Weight of false positives in the Tversky index.")
    beta: float = Field(0.5, ge=0, description="Weight of false negatives in the Tversky index.")
    gamma: float = Field(
        1.0, gt=0, description="Exponent applied to the class-averaged loss (focal Tversky); 1 disables it."
    )


class FocalLossSpec(_LossTerm):
    """Focal loss, one-vs-rest per class in multiclass and multilabel modes."""

    name: Literal["focal"] = Field(description="Loss kind: focal loss.")
    mode: Mode = Field(description=_MODE_DOC)
    alpha: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Weight of positive pixels (negatives get 1 - alpha); null disables the balancing.",
    )
    gamma: float = Field(2.0, ge=0, description="Focusing exponent; 0 gives plain binary cross-entropy.")
    ignore_index: int | None = Field(None, description=_IGNORE_DOC)
    from_logits: bool = Field(
        True,
        description="True if the model outputs raw logits; false if it outputs probabilities, which "
        "are clamped to [eps, 1 - eps] and mapped back to logits.",
    )
    eps: float = Field(
        1e-7, gt=0, lt=0.5, description="Probability clamp used when from_logits is false."
    )
    reduction: Literal["mean", "sum", "batchwise_mean"] = Field(
        "mean",
        description="How pixel losses are reduced: 'mean', 'sum', or 'batchwise_mean' (sum over the "
        "batch dimension). SMP's 'none' is not offered: a training loss must be a scalar.",
    )
    normalized: bool = Field(False, description="Divide by the sum of focal terms (normalized focal loss).")
    reduced_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Switch to the reduced focal loss: pixels with p_t below this get focal term 1. "
        "Null disables it.",
    )
    class_weights: WeightList | None = Field(None, description=_CLASS_WEIGHTS_DOC)

    @model_validator(mode="after")
    def _check_class_weights(self) -> FocalLossSpec:
        """Class weighting needs more than one class, as in SMP."""
        if self.mode == "binary" and self.class_weights is not None:
            raise ValueError("`class_weights` is not available in binary mode")
        _check_weights(self.class_weights, "`class_weights`")
        return self


class LovaszLossSpec(_LossTerm):
    """Lovasz hinge (binary, multilabel) or Lovasz-softmax (multiclass) loss."""

    name: Literal["lovasz"] = Field(description="Loss kind: Lovasz loss.")
    mode: Mode = Field(
        description=_MODE_DOC + " Multilabel pools all channels into one binary problem."
    )
    per_image: bool = Field(False, description="Average per-image losses instead of one loss over the batch.")
    ignore_index: int | None = Field(None, description=_IGNORE_DOC)
    from_logits: bool = Field(
        True,
        description="Must be true: the Lovasz loss always takes raw logits (SMP ignores a false value).",
        json_schema_extra={"const": True},  # the rule below, for editors and the JSON Schema
    )

    @model_validator(mode="after")
    def _check_from_logits(self) -> LovaszLossSpec:
        """SMP silently treats the input as logits whatever the flag says; refuse the lie."""
        if not self.from_logits:
            raise ValueError("the Lovasz loss always takes raw logits; `from_logits: false` is not supported")
        return self


class SoftBCELossSpec(_LossTerm):
    """Binary cross-entropy on logits, with target smoothing and ignored pixels."""

    name: Literal["soft_bce"] = Field(description="Loss kind: soft binary cross-entropy with logits.")
    bce_weight: WeightList | None = Field(
        None,
        description="Per-channel rescaling of the element-wise loss, one value per head class (or "
        "one for all). SMP's `weight` argument, renamed because `weight` is this term's coefficient.",
    )
    ignore_index: int | None = Field(
        -100,
        description="Target value whose pixels get zero loss (they still count in the mean); null for none.",
    )
    reduction: Literal["mean", "sum"] = Field("mean", description="Mean or sum over all elements.")
    smooth_factor: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Target smoothing s: targets become t(1 - s) + (1 - t)s. Null disables it.",
    )
    pos_weight: WeightList | None = Field(
        None, description="Weight of positive targets per channel, one per head class (or one for all)."
    )


class SoftCrossEntropyLossSpec(_LossTerm):
    """Cross-entropy with label smoothing for class-index targets."""

    name: Literal["soft_cross_entropy"] = Field(description="Loss kind: soft (label-smoothed) cross-entropy.")
    reduction: Literal["mean", "sum"] = Field("mean", description="Mean or sum over all pixels.")
    smooth_factor: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Label smoothing epsilon; null means none (0).",
    )
    ignore_index: int | None = Field(
        -100,
        description="Target value whose pixels get zero loss (they still count in the mean); null for none.",
    )
    dim: int = Field(1, description="Class dimension of the prediction.")


class MCCLossSpec(_LossTerm):
    """Matthews correlation coefficient loss (binary; takes probabilities)."""

    name: Literal["mcc"] = Field(description="Loss kind: 1 - Matthews correlation coefficient (binary only).")
    eps: float = Field(1e-5, gt=0, description="Added to each confusion count so one-class batches stay finite.")


LossTerm = Annotated[
    Union[
        JaccardLossSpec,
        DiceLossSpec,
        FocalLossSpec,
        LovaszLossSpec,
        SoftBCELossSpec,
        SoftCrossEntropyLossSpec,
        TverskyLossSpec,
        MCCLossSpec,
    ],
    Field(discriminator="name"),
]


def _single_or_list(value: object) -> str:
    """Pick the union branch from the input's shape, so errors come from that branch only."""
    return "terms" if isinstance(value, list) else "term"


#: The ``loss:`` section: one term, or a non-empty list of terms whose weighted sum is the loss.
#: Validation-error locations carry the branch tag ("term"/"terms") and the term's ``name``.
LossSpec = Annotated[
    Union[
        Annotated[LossTerm, Tag("term")],
        Annotated[list[LossTerm], Field(min_length=1), Tag("terms")],
    ],
    Discriminator(_single_or_list),
]

# Head activations that leave logits untouched; anything else changes them.
_IDENTITY_ACTIVATIONS = (None, "identity")
_SOFTMAX_ACTIVATIONS = ("softmax", "softmax2d")
# Softmax is shift-invariant per pixel, so softmax(log_softmax(x)) == softmax(x).
_SOFTMAX_INVARIANT_ACTIVATIONS = ("logsoftmax",)


def _applies_softmax(term: LossTerm) -> bool:
    """Whether the term turns its input into probabilities with a softmax over classes."""
    if term.name == "soft_cross_entropy":
        return True
    multiclass = getattr(term, "mode", None) == "multiclass"
    return multiclass and term.name in ("jaccard", "dice", "tversky", "lovasz")


def iter_terms(loss_spec: LossSpec) -> Iterator[tuple[Path, LossTerm]]:
    """Yield ``(path, term)`` for every term; the path is relative to the ``loss`` key."""
    if isinstance(loss_spec, list):
        for i, term in enumerate(loss_spec):
            yield (i,), term
    else:
        yield (), loss_spec


def _issue(path: Path, message: str) -> SpecIssue:
    """An issue at ``path`` (relative to the ``loss`` key), located later by the validator."""
    return SpecIssue(message, tuple(path))


def _count_issues(term: LossTerm, path: Path, classes: int) -> list[SpecIssue]:
    """Conflicts between the term's mode / class options and the head's class count."""
    issues: list[SpecIssue] = []
    mode = getattr(term, "mode", None)
    if mode == "binary" and classes != 1:
        issues.append(_issue(path + ("mode",), f"mode 'binary' needs a head with 1 class, but the head has {classes}; "
                       "use 'multiclass' or 'multilabel'"))
    if mode == "multiclass" and classes < 2:
        issues.append(_issue(path + ("mode",), f"mode 'multiclass' needs at least 2 head classes, but the head has "
                       f"{classes}; use 'binary'"))
    if term.name == "mcc" and classes != 1:
        issues.append(_issue(path + ("name",), f"the mcc loss is binary-only and needs a head with 1 class, "
                       f"but the head has {classes}"))
    if term.name == "soft_cross_entropy" and classes < 2:
        issues.append(_issue(path + ("name",), "soft_cross_entropy needs at least 2 head classes (softmax over one "
                       "channel is constant); use soft_bce for a 1-class head"))
    for j, c in enumerate(getattr(term, "classes", None) or []):
        if c >= classes:
            issues.append(_issue(path + ("classes", j), f"class index {c} is out of range for a head with {classes} "
                           f"classes (0..{classes - 1})"))
    weights = getattr(term, "class_weights", None)
    if weights is not None and len(weights) != classes:
        issues.append(_issue(path + ("class_weights",), f"class_weights has {len(weights)} entries but the head has "
                       f"{classes} classes"))
    for option in ("bce_weight", "pos_weight"):
        values = getattr(term, option, None)
        if values is not None and len(values) not in (1, classes):
            issues.append(_issue(path + (option,), f"{option} has {len(values)} entries; it needs 1 or one per head "
                           f"class ({classes})"))
    return issues


def _activation_issues(term: LossTerm, path: Path, activation: str | None) -> list[SpecIssue]:
    """Conflicts between what the term expects as input (logits/probabilities) and the head activation."""
    from_logits = getattr(term, "from_logits", term.name != "mcc")
    where = path + (("from_logits",) if hasattr(term, "from_logits") else ("name",))
    if from_logits:
        if activation in _IDENTITY_ACTIVATIONS:
            return []
        if activation in _SOFTMAX_INVARIANT_ACTIVATIONS and _applies_softmax(term):
            return []
        fix = "set the head activation to null" + (
            " or `from_logits: false`" if term.name in ("jaccard", "dice", "tversky", "focal") else ""
        )
        return [_issue(where, f"the {term.name} loss expects raw logits, but the head applies activation "
                 f"{activation!r}; {fix}")]
    multiclass = getattr(term, "mode", None) == "multiclass"
    wanted = _SOFTMAX_ACTIVATIONS if multiclass else ("sigmoid",)
    if activation in wanted:
        return []
    subject = "`from_logits: false`" if hasattr(term, "from_logits") else f"the {term.name} loss"
    got = "no activation (raw logits)" if activation in _IDENTITY_ACTIVATIONS else f"activation {activation!r}"
    return [_issue(where, f"{subject} expects {'softmax' if multiclass else 'sigmoid'} probabilities, but the "
             f"head has {got}; use head activation {wanted[0]!r}")]


def loss_issues(loss_spec: LossSpec, head_classes: int, head_activation: str | None) -> list[SpecIssue]:
    """Check the loss section against the model head.

    Args:
        loss_spec: the validated ``loss`` section.
        head_classes: number of output channels of the segmentation head.
        head_activation: the head's activation name; ``None`` or
            ``"identity"`` mean the head outputs raw logits.

    Returns:
        Issues whose ``path`` is relative to the ``loss`` key (e.g.
        ``("mode",)`` or ``(1, "classes", 0)``); empty if consistent.
    """
    issues: list[SpecIssue] = []
    for path, term in iter_terms(loss_spec):
        issues += _count_issues(term, path, head_classes)
        issues += _activation_issues(term, path, head_activation)
    return issues


__all__ = [
    "LossSpec",
    "LossTerm",
    "JaccardLossSpec",
    "DiceLossSpec",
    "TverskyLossSpec",
    "FocalLossSpec",
    "LovaszLossSpec",
    "SoftBCELossSpec",
    "SoftCrossEntropyLossSpec",
    "MCCLossSpec",
    "iter_terms",
    "loss_issues",
]
