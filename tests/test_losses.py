"""Losses: numerical parity with SMP 0.6, option validation, and the ``loss:`` spec section.

The parity tests draw small random batches (2 images, 3 classes, 16x16) and
compare our loss value and its gradient w.r.t. the logits with SMP's, for
every mode, over plain targets, targets with ignored pixels and targets
where a class is absent.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from pydantic import BaseModel, TypeAdapter, ValidationError

import specseg.losses as L
from specseg.losses.build import build_loss, build_term
from specseg.spec import loss as spec

N, C, H, W = 2, 3, 16, 16
IGNORE = 255
TOL = {"atol": 1e-5, "rtol": 1e-5}
MODES = ["binary", "multiclass", "multilabel"]
TARGET_KINDS = ["plain", "ignored", "empty_class", "ignored+empty_class"]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny tensors gain nothing from intra-op threads, which only spin when the CPU is busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def smp_losses():
    """SMP's loss package; the parity tests are skipped without it."""
    return pytest.importorskip("segmentation_models_pytorch").losses


def make_logits(mode: str, seed: int = 0) -> torch.Tensor:
    """Random logits (scaled so some pixels saturate) that require grad."""
    g = torch.Generator().manual_seed(seed)
    channels = 1 if mode == "binary" else C
    return (torch.randn(N, channels, H, W, generator=g) * 2).requires_grad_()


def make_target(mode: str, kind: str, seed: int = 1, ignore_value: int = IGNORE) -> torch.Tensor:
    """Integer target for ``mode``; ``kind`` adds ignored pixels and/or an absent class."""
    g = torch.Generator().manual_seed(seed)
    if mode == "multiclass":
        target = torch.randint(0, C, (N, H, W), generator=g)
        if "empty_class" in kind:
            target[target == C - 1] = 0  # class C-1 never occurs
    else:
        channels = 1 if mode == "binary" else C
        target = torch.randint(0, 2, (N, channels, H, W), generator=g)
        if "empty_class" in kind:
            target[:, -1] = 0  # the last channel (the only one in binary mode) is all background
    if "ignored" in kind:
        target[torch.rand(target.shape, generator=g) < 0.2] = ignore_value
    return target


def activate(mode: str, logits: torch.Tensor) -> torch.Tensor:
    """Probabilities for ``from_logits=False`` losses."""
    return logits.softmax(dim=1) if mode == "multiclass" else logits.sigmoid()


def assert_parity(ours: torch.nn.Module, theirs: torch.nn.Module, logits: torch.Tensor,
                  target: torch.Tensor, prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x,
                  expect_gradient: bool = True) -> None:
    """Same loss value and same gradient w.r.t. ``logits`` as SMP (non-zero unless told otherwise)."""
    ours_value = ours(prepare(logits), target)
    theirs_value = theirs(prepare(logits), target)
    torch.testing.assert_close(ours_value, theirs_value, **TOL)
    (ours_grad,) = torch.autograd.grad(ours_value.sum(), logits)
    (theirs_grad,) = torch.autograd.grad(theirs_value.sum(), logits)
    torch.testing.assert_close(ours_grad, theirs_grad, **TOL)
    if expect_gradient:
        assert ours_grad.abs().sum() > 0, "a gradient of zero would make the comparison vacuous"


# --------------------------------------------------------------------------- Dice / Jaccard / Tversky

OVERLAP_OPTIONS = [
    {},
    {"log_loss": True},
    {"smooth": 1.0, "eps": 1e-4},
    {"from_logits": False},
    {"classes": [0, 2]},
    {"class_weights": [1.0, 2.0, 0.5]},
    {"classes": [2, 1], "class_weights": [0.5, 1.0, 2.0], "log_loss": True},
]
TVERSKY_OPTIONS = [
    {"alpha": 0.3, "beta": 0.7, "gamma": 2.0},
    {"alpha": 0.7, "beta": 0.3, "gamma": 0.75, "smooth": 0.5, "class_weights": [1.0, 0.0, 3.0]},
]
OVERLAP_CASES = [(name, o) for name in ("DiceLoss", "JaccardLoss", "TverskyLoss") for o in OVERLAP_OPTIONS] + [
    ("TverskyLoss", o) for o in TVERSKY_OPTIONS
]


PER_CLASS_OPTIONS = {"classes", "class_weights"}  # refused in binary mode (see the validation tests)


def cases(loss_cases, modes=MODES, kinds=TARGET_KINDS, exclude=lambda options, mode, kind: False):
    """``(*case, mode, kind)`` params, leaving out binary+per-class options and ``exclude``d combinations."""
    return [
        pytest.param(*case, mode, kind, id="-".join(map(str, (*case, mode, kind))))
        for case in loss_cases
        for mode in modes
        for kind in kinds
        if not (mode == "binary" and PER_CLASS_OPTIONS & case[-1].keys()) and not exclude(case[-1], mode, kind)
    ]


@pytest.mark.parametrize(("loss_name", "options", "mode", "kind"), cases(OVERLAP_CASES))
def test_overlap_losses_match_smp(smp_losses, loss_name, options, mode, kind):
    options = dict(options, ignore_index=IGNORE) if "ignored" in kind else options
    ours = getattr(L, loss_name)(mode, **options)
    theirs = getattr(smp_losses, loss_name)(mode, **options)
    prepare = (lambda x: activate(mode, x)) if options.get("from_logits") is False else (lambda x: x)
    # In binary mode an absent class is the only class: the loss is masked to 0 everywhere.
    only_class_absent = mode == "binary" and "empty_class" in kind
    assert_parity(ours, theirs, make_logits(mode), make_target(mode, kind), prepare,
                  expect_gradient=not only_class_absent)


def test_dice_ignores_absent_classes_but_keeps_them_in_the_average():
    """A class with no target pixel contributes 0 loss yet still counts in the class mean."""
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, dtype=torch.long)  # only class 0 present
    loss = L.DiceLoss("multiclass")(logits, target)
    # class 0: p = 0.5 everywhere, dice = 2*2/(2+4) = 2/3 -> loss 1/3; class 1 contributes 0.
    torch.testing.assert_close(loss, torch.tensor((1 / 3 + 0) / 2))


# --------------------------------------------------------------------------- Focal

FOCAL_OPTIONS = [
    {},
    {"alpha": 0.25},
    {"gamma": 0.0, "alpha": 0.75},
    {"reduced_threshold": 0.5, "reduction": "sum"},
    {"normalized": True},
    {"from_logits": False, "eps": 1e-3},
    {"reduction": "sum"},
    {"reduction": "batchwise_mean"},
    {"reduction": "none"},
    {"class_weights": [1.0, 2.0, 0.5]},
]


# SMP 0.6 raises IndexError for multilabel + ignore_index; see test_focal_multilabel_ignore_masks_each_channel.
@pytest.mark.parametrize(
    ("options", "mode", "kind"),
    cases([(o,) for o in FOCAL_OPTIONS], exclude=lambda o, mode, kind: mode == "multilabel" and "ignored" in kind),
)
def test_focal_matches_smp(smp_losses, options, mode, kind):
    options = dict(options, ignore_index=IGNORE) if "ignored" in kind else options
    prepare = (lambda x: activate(mode, x)) if options.get("from_logits") is False else (lambda x: x)
    assert_parity(L.FocalLoss(mode, **options), smp_losses.FocalLoss(mode, **options),
                  make_logits(mode), make_target(mode, kind), prepare)


@pytest.mark.parametrize("options", [{}, {"alpha": 0.25, "reduction": "sum"}, {"class_weights": [3.0, 1.0, 0.0]}],
                         ids=str)
def test_focal_multilabel_ignore_masks_each_channel(smp_losses, options):
    """Each channel drops its own ignored pixels: the (weighted) mean of per-channel binary focal losses."""
    logits, target = make_logits("multilabel"), make_target("multilabel", "ignored")
    ours = L.FocalLoss("multilabel", ignore_index=IGNORE, **options)(logits, target)
    weights = torch.tensor(options.get("class_weights", [1.0] * C))
    binary_options = {k: v for k, v in options.items() if k != "class_weights"}
    per_channel = torch.stack([
        smp_losses.FocalLoss("binary", ignore_index=IGNORE, **binary_options)(logits[:, c], target[:, c])
        for c in range(C)
    ])
    torch.testing.assert_close(ours, (per_channel * weights).sum() / weights.sum(), **TOL)


# --------------------------------------------------------------------------- Lovasz

@pytest.mark.parametrize("kind", TARGET_KINDS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("per_image", [False, True])
def test_lovasz_matches_smp(smp_losses, per_image, mode, kind):
    options = {"per_image": per_image, "ignore_index": IGNORE if "ignored" in kind else None}
    assert_parity(L.LovaszLoss(mode, **options), smp_losses.LovaszLoss(mode, **options),
                  make_logits(mode), make_target(mode, kind))


@pytest.mark.parametrize("mode", MODES)
def test_lovasz_all_ignored_image_gives_zero_loss_and_gradient(mode):
    """SMP 0.6 returns an empty tensor in multiclass here; we return a connected zero."""
    logits = make_logits(mode)
    target = make_target(mode, "plain")
    target[0] = IGNORE
    loss = L.LovaszLoss(mode, per_image=True, ignore_index=IGNORE)(logits, target)
    (grad,) = torch.autograd.grad(loss, logits)
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert grad[0].abs().sum() == 0 and grad[1].abs().sum() > 0


# --------------------------------------------------------------------------- Soft BCE / soft CE / MCC

SOFT_BCE_OPTIONS = [
    {},
    {"smooth_factor": 0.1},
    {"reduction": "sum"},
    {"reduction": "none", "smooth_factor": 0.2},
    {"pos_weight": torch.tensor([2.0, 0.5, 1.0]).reshape(C, 1, 1)},
    {"weight": torch.tensor([0.3, 1.0, 2.0]).reshape(C, 1, 1), "ignore_index": None},
]


def without_ignore_index_and_ignored_pixels(options, mode, kind):
    """Targets with ignored pixels make no sense for a loss configured without ignore_index."""
    return options.get("ignore_index", -100) is None and "ignored" in kind


@pytest.mark.parametrize(
    ("options", "mode", "kind"),
    cases([(o,) for o in SOFT_BCE_OPTIONS], ["multilabel"], TARGET_KINDS[:3], without_ignore_index_and_ignored_pixels),
)
def test_soft_bce_matches_smp(smp_losses, options, mode, kind):
    target = make_target("multilabel", kind, ignore_value=-100).float()
    assert_parity(L.SoftBCEWithLogitsLoss(**options), smp_losses.SoftBCEWithLogitsLoss(**options),
                  make_logits("multilabel"), target)


SOFT_CE_OPTIONS = [
    {"smooth_factor": 0.0},
    {"smooth_factor": 0.1},
    {"smooth_factor": 0.2, "reduction": "sum"},
    {"smooth_factor": 0.1, "reduction": "none"},
    {"smooth_factor": 0.1, "ignore_index": None},
]


@pytest.mark.parametrize(
    ("options", "mode", "kind"),
    cases([(o,) for o in SOFT_CE_OPTIONS], ["multiclass"], TARGET_KINDS[:3], without_ignore_index_and_ignored_pixels),
)
def test_soft_cross_entropy_matches_smp(smp_losses, options, mode, kind):
    assert_parity(L.SoftCrossEntropyLoss(**options), smp_losses.SoftCrossEntropyLoss(**options),
                  make_logits("multiclass"), make_target("multiclass", kind, ignore_value=-100))


def test_soft_cross_entropy_without_smoothing_is_cross_entropy_summed_over_kept_pixels():
    """``smooth_factor=None`` (SMP's default, which crashes in SMP 0.6) means plain cross-entropy."""
    logits, target = make_logits("multiclass"), make_target("multiclass", "ignored", ignore_value=-100)
    ours = L.SoftCrossEntropyLoss(reduction="sum")(logits, target)
    torch.testing.assert_close(ours, F.cross_entropy(logits, target, ignore_index=-100, reduction="sum"), **TOL)


def test_soft_losses_count_ignored_pixels_in_the_mean():
    """As in SMP, ignored pixels add zero but still divide the mean."""
    logits, target = make_logits("multiclass"), make_target("multiclass", "ignored", ignore_value=-100)
    loss = L.SoftCrossEntropyLoss(reduction="mean")(logits, target)
    total = F.cross_entropy(logits, target, ignore_index=-100, reduction="sum")
    torch.testing.assert_close(loss, total / target.numel(), **TOL)


@pytest.mark.parametrize("kind", ["plain", "empty_class"])
@pytest.mark.parametrize("eps", [1e-5, 0.5])  # a large eps makes every count's eps visible
def test_mcc_matches_smp(smp_losses, eps, kind):
    assert_parity(L.MCCLoss(eps), smp_losses.MCCLoss(eps), make_logits("binary"),
                  make_target("binary", kind).float(), torch.sigmoid)


# --------------------------------------------------------------------------- option validation

@pytest.mark.parametrize(
    ("factory", "kwargs", "match"),
    [
        (L.DiceLoss, {"mode": "binray"}, "mode must be one of"),
        (L.JaccardLoss, {"mode": "binary", "classes": [0]}, "classes cannot be used with mode='binary'"),
        (L.DiceLoss, {"mode": "binary", "class_weights": [1.0]}, "class_weights cannot be used"),
        (L.DiceLoss, {"mode": "multiclass", "classes": [1, 1]}, "distinct"),
        (L.DiceLoss, {"mode": "multiclass", "classes": [-1]}, "non-negative"),
        (L.DiceLoss, {"mode": "multiclass", "class_weights": [0.0, 0.0]}, "all be zero"),
        (L.DiceLoss, {"mode": "multiclass", "class_weights": [1.0, -1.0]}, "non-negative"),
        (L.DiceLoss, {"mode": "multiclass", "smooth": -1.0}, "smooth must lie in"),
        (L.JaccardLoss, {"mode": "multiclass", "eps": 0.0}, "eps must lie in"),
        (L.TverskyLoss, {"mode": "binary", "alpha": -0.1}, "alpha must lie in"),
        (L.TverskyLoss, {"mode": "binary", "gamma": 0.0}, "gamma must lie in"),
        (L.FocalLoss, {"mode": "binary", "alpha": 1.5}, "alpha must lie in"),
        (L.FocalLoss, {"mode": "binary", "gamma": -1.0}, "gamma must lie in"),
        (L.FocalLoss, {"mode": "binary", "reduction": "avg"}, "reduction must be one of"),
        (L.FocalLoss, {"mode": "binary", "reduced_threshold": 0.0}, "reduced_threshold must lie in"),
        (L.FocalLoss, {"mode": "binary", "eps": 0.5}, "eps must lie in"),
        (L.FocalLoss, {"mode": "binary", "class_weights": [1.0]}, "class_weights cannot be used"),
        (L.LovaszLoss, {"mode": "binary", "from_logits": False}, "from_logits=False is not supported"),
        (L.SoftBCEWithLogitsLoss, {"smooth_factor": 1.5}, "smooth_factor must lie in"),
        (L.SoftBCEWithLogitsLoss, {"reduction": "batchwise_mean"}, "reduction must be one of"),
        (L.SoftCrossEntropyLoss, {"smooth_factor": -0.1}, "smooth_factor must lie in"),
        (L.MCCLoss, {"eps": 0.0}, "eps must lie in"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else str(v),
)
def test_invalid_options_raise_value_error(factory, kwargs, match):
    with pytest.raises(ValueError, match=match):
        factory(**kwargs)


@pytest.mark.parametrize(
    ("loss", "match"),
    [
        (L.DiceLoss("multiclass", classes=[0, 3]), r"classes \[3\] are out of range"),
        (L.JaccardLoss("multilabel", class_weights=[1.0, 2.0]), "class_weights has 2 entries"),
        (L.FocalLoss("multiclass", class_weights=[1.0, 2.0]), "class_weights has 2 entries"),
    ],
    ids=["classes", "overlap-weights", "focal-weights"],
)
def test_per_class_options_must_fit_the_prediction(loss, match):
    mode = loss.mode
    with pytest.raises(ValueError, match=match):
        loss(make_logits(mode), make_target(mode, "plain"))


def test_lovasz_multiclass_needs_two_channels():
    with pytest.raises(ValueError, match="at least 2"):
        L.LovaszLoss("multiclass")(torch.randn(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))


# --------------------------------------------------------------------------- defaults and signatures

SPEC_MODELS: dict[str, type[BaseModel]] = {
    "JaccardLoss": spec.JaccardLossSpec,
    "DiceLoss": spec.DiceLossSpec,
    "TverskyLoss": spec.TverskyLossSpec,
    "FocalLoss": spec.FocalLossSpec,
    "LovaszLoss": spec.LovaszLossSpec,
    "SoftBCEWithLogitsLoss": spec.SoftBCELossSpec,
    "SoftCrossEntropyLoss": spec.SoftCrossEntropyLossSpec,
    "MCCLoss": spec.MCCLossSpec,
}
SPEC_TO_SMP_NAME = {"bce_weight": "weight"}


@pytest.mark.parametrize("loss_name", sorted(SPEC_MODELS))
def test_modules_and_spec_share_smp_options_and_defaults(smp_losses, loss_name):
    """Our constructor mirrors SMP's; the spec fields are the same options with the same defaults."""
    theirs = inspect.signature(getattr(smp_losses, loss_name)).parameters
    ours = inspect.signature(getattr(L, loss_name)).parameters
    assert list(ours) == list(theirs)
    for name, param in theirs.items():
        assert ours[name].default == param.default, name
    fields = {SPEC_TO_SMP_NAME.get(k, k): f for k, f in SPEC_MODELS[loss_name].model_fields.items()
              if k not in ("name", "weight")}
    assert set(fields) == set(theirs)
    for name, field in fields.items():
        if theirs[name].default is not inspect.Parameter.empty:
            assert field.default == theirs[name].default, name


# --------------------------------------------------------------------------- the loss: spec section

ADAPTER = TypeAdapter(spec.LossSpec)


def test_spec_module_does_not_import_torch():
    code = "import sys, specseg.spec.loss; assert 'torch' not in sys.modules, 'torch was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("model", list(SPEC_MODELS.values()), ids=lambda m: m.__name__)
def test_every_spec_field_is_documented(model):
    undocumented = [name for name, field in model.model_fields.items() if not field.description]
    assert not undocumented


@pytest.mark.parametrize(
    "data",
    [
        {"name": "dice", "mode": "binary", "smoth": 1.0},  # unknown option
        {"name": "hinge"},  # unknown loss
        {"name": "dice"},  # mode is required
        {"name": "dice", "mode": "Binary"},
        {"name": "dice", "mode": "binary", "smooth": "1.0"},  # no string-to-number coercion
        {"name": "jaccard", "mode": "binary", "log_loss": 1},  # no int-to-bool coercion
        {"name": "focal", "mode": "binary", "gamma": True},
        {"name": "dice", "mode": "multiclass", "classes": "0,1"},
        {"name": "dice", "mode": "multiclass", "classes": [0.0]},
        {"name": "dice", "mode": "multiclass", "classes": [-1]},
        {"name": "dice", "mode": "multiclass", "classes": []},
        {"name": "dice", "mode": "multiclass", "classes": [1, 1]},
        {"name": "dice", "mode": "binary", "classes": [0]},  # SMP forbids classes in binary mode
        {"name": "tversky", "mode": "binary", "class_weights": [1.0]},
        {"name": "focal", "mode": "binary", "class_weights": [1.0]},
        {"name": "dice", "mode": "multiclass", "class_weights": [0.0, 0.0]},
        {"name": "focal", "mode": "binary", "alpha": 1.5},
        {"name": "focal", "mode": "binary", "reduction": "none"},  # not a scalar training loss
        {"name": "lovasz", "mode": "binary", "from_logits": False},
        {"name": "soft_bce", "weight": 0.0},
        {"name": "soft_bce", "smooth_factor": 2.0},
        {"name": "mcc", "eps": float("nan")},
        [],
        "dice",
    ],
    ids=str,
)
def test_spec_rejects_invalid_loss_sections(data):
    with pytest.raises(ValidationError):
        ADAPTER.validate_python(data)


def test_spec_accepts_integers_for_float_options_and_fills_smp_defaults():
    term = ADAPTER.validate_python({"name": "tversky", "mode": "multiclass", "alpha": 1, "weight": 2})
    assert (term.alpha, term.beta, term.gamma, term.weight, term.eps) == (1.0, 0.5, 1.0, 2.0, 1e-7)


def test_weighted_loss_list_builds_the_weighted_sum():
    section = ADAPTER.validate_python([
        {"name": "dice", "mode": "multiclass", "weight": 0.7, "ignore_index": IGNORE},
        {"name": "soft_cross_entropy", "weight": 0.3, "smooth_factor": 0.1, "ignore_index": IGNORE},
        {"name": "focal", "mode": "multiclass", "weight": 2.0, "alpha": 0.25, "ignore_index": IGNORE},
    ])
    loss = build_loss(section)
    assert isinstance(loss, L.WeightedSumLoss)
    logits, target = make_logits("multiclass"), make_target("multiclass", "ignored")
    expected = (
        0.7 * L.DiceLoss("multiclass", ignore_index=IGNORE)(logits, target)
        + 0.3 * L.SoftCrossEntropyLoss(smooth_factor=0.1, ignore_index=IGNORE)(logits, target)
        + 2.0 * L.FocalLoss("multiclass", alpha=0.25, ignore_index=IGNORE)(logits, target)
    )
    torch.testing.assert_close(loss(logits, target), expected)


def test_single_term_builds_the_bare_module_unless_weighted():
    plain = build_loss(ADAPTER.validate_python({"name": "lovasz", "mode": "binary", "per_image": True}))
    assert isinstance(plain, L.LovaszLoss) and plain.per_image
    doubled = build_loss(ADAPTER.validate_python({"name": "lovasz", "mode": "binary", "weight": 2.0}))
    logits, target = make_logits("binary"), make_target("binary", "plain")
    torch.testing.assert_close(doubled(logits, target), 2 * L.LovaszLoss("binary")(logits, target))


def test_soft_bce_spec_weights_are_per_channel():
    term = ADAPTER.validate_python({"name": "soft_bce", "bce_weight": [1.0, 2.0, 3.0], "pos_weight": [0.5, 1.0, 4.0]})
    logits, target = make_logits("multilabel"), make_target("multilabel", "plain").float()
    expected = F.binary_cross_entropy_with_logits(
        logits, target, weight=torch.tensor([1.0, 2.0, 3.0]).reshape(C, 1, 1),
        pos_weight=torch.tensor([0.5, 1.0, 4.0]).reshape(C, 1, 1),
    )
    torch.testing.assert_close(build_term(term)(logits, target), expected)


@pytest.mark.parametrize(
    ("data", "classes", "activation", "expected_paths"),
    [
        ({"name": "dice", "mode": "multiclass"}, 3, None, []),
        ({"name": "dice", "mode": "binary"}, 1, "identity", []),
        ({"name": "dice", "mode": "binary"}, 3, None, [("mode",)]),
        ({"name": "focal", "mode": "multiclass"}, 1, None, [("mode",)]),
        ({"name": "dice", "mode": "multilabel", "classes": [0, 4, 5]}, 5, None, [("classes", 2)]),
        ({"name": "jaccard", "mode": "multiclass", "class_weights": [1.0, 2.0]}, 3, None, [("class_weights",)]),
        ({"name": "dice", "mode": "multiclass"}, 3, "softmax", [("from_logits",)]),
        ({"name": "dice", "mode": "multiclass", "from_logits": False}, 3, "softmax2d", []),
        ({"name": "dice", "mode": "multiclass", "from_logits": False}, 3, None, [("from_logits",)]),
        ({"name": "focal", "mode": "binary", "from_logits": False}, 1, "softmax", [("from_logits",)]),
        ({"name": "lovasz", "mode": "binary"}, 1, "sigmoid", [("from_logits",)]),
        # softmax(log_softmax(x)) == softmax(x): fine for softmax-based losses, not for sigmoid-based ones.
        ({"name": "soft_cross_entropy"}, 3, "logsoftmax", []),
        ({"name": "lovasz", "mode": "multiclass"}, 3, "logsoftmax", []),
        ({"name": "focal", "mode": "multiclass"}, 3, "logsoftmax", [("from_logits",)]),
        ({"name": "soft_bce", "pos_weight": [1.0, 2.0]}, 3, "sigmoid", [("pos_weight",), ("name",)]),
        ({"name": "soft_cross_entropy"}, 1, None, [("name",)]),
        ({"name": "mcc"}, 1, "sigmoid", []),
        ({"name": "mcc"}, 2, None, [("name",), ("name",)]),
        (
            [{"name": "dice", "mode": "multiclass"}, {"name": "soft_cross_entropy"}, {"name": "mcc"}],
            4, None, [(2, "name"), (2, "name")],
        ),
    ],
    ids=str,
)
def test_loss_issues_report_conflicts_with_the_head(data, classes, activation, expected_paths):
    issues = spec.loss_issues(ADAPTER.validate_python(data), classes, activation)
    assert [issue.path for issue in issues] == expected_paths
    assert all(isinstance(issue.message, str) and issue.message for issue in issues)


def test_softmax_losses_are_unchanged_by_a_logsoftmax_head():
    logits, target = make_logits("multiclass"), make_target("multiclass", "ignored")
    for loss in (L.DiceLoss("multiclass", ignore_index=IGNORE), L.SoftCrossEntropyLoss(ignore_index=IGNORE)):
        torch.testing.assert_close(loss(logits.log_softmax(1), target), loss(logits, target), **TOL)


def test_loss_issue_messages_name_the_conflict():
    (issue,) = spec.loss_issues(ADAPTER.validate_python({"name": "dice", "mode": "binary"}), 4, None)
    assert issue.path == ("mode",) and "1 class" in issue.message and "4" in issue.message


def test_model_spec_loss_section_builds_and_conflicts_are_located(tmp_path):
    import specseg
    from specseg import SpecError

    text = (
        "specseg: 1\n"
        "decoder: {architecture: unet}\n"
        "encoder: {name: resnet18}\n"
        "head: {classes: 3}\n"
        "loss:\n"
        "  - {name: dice, mode: multiclass, weight: 0.25}\n"
        "  - {name: focal, mode: multiclass, weight: 0.75}\n"
    )
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    loss = specseg.build_loss(path)
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    expected = 0.25 * L.DiceLoss("multiclass")(logits, target) + 0.75 * L.FocalLoss("multiclass")(logits, target)
    torch.testing.assert_close(loss(logits, target), expected)

    path.write_text(text.replace("classes: 3", "classes: 1"))
    with pytest.raises(SpecError) as info:
        specseg.load_spec(path)
    issue = info.value.issues[0]
    assert issue.path[:2] == ("loss", 0) and issue.location.line == 6
    assert "head.classes" in issue.format()
