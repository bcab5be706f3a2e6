"""Metrics: confusion counts and scores, numerically equal to SMP 0.6.

Counts must match SMP exactly; scores to 1e-6 (NaN where SMP gives NaN)
for every metric, reduction, class weighting and zero-division policy, on
counts that contain 0/0 cases (a class absent from prediction and target).
"""

from __future__ import annotations

import warnings

import pytest
import torch

import specseg.metrics as M

N, C, H, W = 2, 3, 16, 16
METRIC_NAMES = list(M.__all__[1:])  # everything but get_stats
REDUCTIONS = ["micro", "macro", "weighted", "micro-imagewise", "macro-imagewise", "weighted-imagewise", "none", None]
CLASS_WEIGHTS = [0.1, 0.2, 0.3, 0.4]  # for C + 1 classes, see stats_with_zero_divisions
ZERO_DIVISIONS = [1.0, 0.0, -5.0, "warn"]


@pytest.fixture(autouse=True, scope="module")
def single_thread():
    """Tiny tensors gain nothing from intra-op threads, which only spin when the CPU is busy."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def smp_metrics():
    """SMP's metrics package; the parity tests are skipped without it."""
    return pytest.importorskip("segmentation_models_pytorch").metrics


def random_labels(seed: int, low: int = 0, high: int = C) -> torch.Tensor:
    """``(N, H, W)`` class indices drawn from ``low..high-1``."""
    return torch.randint(low, high, (N, H, W), generator=torch.Generator().manual_seed(seed))


def assert_same_stats(ours, theirs) -> None:
    """tp, fp, fn, tn are identical integer tensors."""
    for name, a, b in zip(("tp", "fp", "fn", "tn"), ours, theirs):
        assert a.dtype == torch.long, name
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- get_stats

@pytest.mark.parametrize("ignore_index", [None, -1, 255])
def test_multiclass_stats_match_smp(smp_metrics, ignore_index):
    output, target = random_labels(0), random_labels(1)
    output[0, :2] = 7  # predictions outside 0..C-1 are counted for no class
    if ignore_index is not None:
        target[random_labels(2) == 0] = ignore_index
    ours = M.get_stats(output, target, "multiclass", ignore_index=ignore_index, num_classes=C)
    theirs = smp_metrics.get_stats(output, target, "multiclass", ignore_index=ignore_index, num_classes=C)
    assert_same_stats(ours, theirs)


@pytest.mark.parametrize("mode", ["binary", "multilabel"])
@pytest.mark.parametrize("threshold", [None, 0.5, 0.3])
def test_binary_and_multilabel_stats_match_smp(smp_metrics, mode, threshold):
    g = torch.Generator().manual_seed(3)
    channels = 1 if mode == "binary" else C
    target = torch.randint(0, 2, (N, channels, H, W), generator=g)
    scores = torch.rand(N, channels, H, W, generator=g)
    output = scores if threshold is not None else (scores > 0.5).long()
    ours = M.get_stats(output, target, mode, threshold=threshold)
    assert_same_stats(ours, smp_metrics.get_stats(output, target, mode, threshold=threshold))


def test_per_channel_thresholds_threshold_each_channel(smp_metrics):
    """A threshold list (documented by SMP 0.6 but raising TypeError there) applies one value per channel."""
    g = torch.Generator().manual_seed(4)
    output, target = torch.rand(N, C, H, W, generator=g), torch.randint(0, 2, (N, C, H, W), generator=g)
    thresholds = [0.2, 0.5, 0.8]
    ours = M.get_stats(output, target, "multilabel", threshold=thresholds)
    per_channel = [smp_metrics.get_stats(output[:, c:c + 1], target[:, c:c + 1], "multilabel", threshold=t)
                   for c, t in enumerate(thresholds)]
    assert_same_stats(ours, [torch.cat(parts, dim=1) for parts in zip(*per_channel)])


def test_ignored_pixels_count_nowhere():
    output = torch.tensor([[0, 1, 1, 2]])
    target = torch.tensor([[0, 1, -1, 2]])
    tp, fp, fn, tn = M.get_stats(output, target, "multiclass", ignore_index=-1, num_classes=3)
    assert tp.tolist() == [[1, 1, 1]] and fp.tolist() == [[0, 0, 0]] and fn.tolist() == [[0, 0, 0]]
    assert tn.tolist() == [[2, 2, 2]]  # 3 counted pixels, 1 of each class


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"output": torch.zeros(1, 4, dtype=torch.long), "target": torch.zeros(1, 4), "mode": "binary"},
         "integer dtype"),
        ({"output": torch.zeros(1, 4), "target": torch.zeros(1, 4, dtype=torch.long), "mode": "binary"}, "threshold"),
        ({"output": torch.zeros(1, 4), "target": torch.zeros(1, 4, dtype=torch.long), "mode": "multiclass",
          "threshold": 0.5}, "integer class indices"),
        ({"mode": "binari"}, "mode must be one of"),
        ({"mode": "multiclass", "num_classes": 2, "threshold": 0.5}, "threshold is not supported"),
        ({"target": torch.zeros(1, 1, 5, dtype=torch.long), "mode": "binary"}, "shape"),
        ({"mode": "multilabel", "ignore_index": -1}, "ignore_index is not supported"),
        ({"mode": "multiclass"}, "num_classes is required"),
        ({"mode": "multiclass", "num_classes": 3, "ignore_index": 0}, "outside that range"),
        ({"output": torch.rand(1, 2, 4), "target": torch.zeros(1, 2, 4, dtype=torch.long), "mode": "multilabel",
          "threshold": [0.5]}, "threshold has 1 values"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_get_stats_rejects_misconfiguration(kwargs, match):
    arguments = {"output": torch.zeros(1, 1, 4, dtype=torch.long), "target": torch.zeros(1, 1, 4, dtype=torch.long)}
    with pytest.raises(ValueError, match=match):
        M.get_stats(**{**arguments, **kwargs})


# --------------------------------------------------------------------------- scores


@pytest.fixture(scope="module")
def stats_with_zero_divisions():
    """Counts with 0/0 cases: class 2 is absent from image 0, class C from every image."""
    output, target = random_labels(5), random_labels(6)
    output[0][output[0] == 2] = 0
    target[0][target[0] == 2] = 1
    return M.get_stats(output, target, "multiclass", num_classes=C + 1)


def metric_cases():
    """Every metric x reduction, with class weights where the reduction needs or accepts them."""
    params = []
    for name in METRIC_NAMES:
        for reduction in REDUCTIONS:
            weightings = [CLASS_WEIGHTS] if reduction and reduction.startswith("weighted") else [None, CLASS_WEIGHTS]
            params += [pytest.param(name, reduction, w, id=f"{name}-{reduction}-{'w' if w else 'nw'}")
                       for w in weightings]
    return params


@pytest.mark.parametrize(("name", "reduction", "class_weights"), metric_cases())
def test_metrics_match_smp(smp_metrics, stats_with_zero_divisions, name, reduction, class_weights):
    for zero_division in ZERO_DIVISIONS:
        kwargs = {"reduction": reduction, "class_weights": class_weights, "zero_division": zero_division}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the "warn" policy is checked in its own test
            ours = getattr(M, name)(*stats_with_zero_divisions, **kwargs)
            theirs = getattr(smp_metrics, name)(*stats_with_zero_divisions, **kwargs)
        torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6, equal_nan=True,
                                   msg=lambda m: f"zero_division={zero_division!r}: {m}")


@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("reduction", ["micro", "macro", "macro-imagewise", None])
def test_fbeta_matches_smp(smp_metrics, stats_with_zero_divisions, beta, reduction):
    ours = M.fbeta_score(*stats_with_zero_divisions, beta=beta, reduction=reduction)
    theirs = smp_metrics.fbeta_score(*stats_with_zero_divisions, beta=beta, reduction=reduction)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)


def test_iou_by_hand():
    """Two images, two classes: per-image/per-class IoU and the micro / macro aggregations."""
    tp, fp, fn, tn = (torch.tensor(v) for v in ([[2, 0], [1, 3]], [[1, 0], [0, 1]], [[1, 0], [2, 0]], [[0, 4], [1, 0]]))
    torch.testing.assert_close(M.iou_score(tp, fp, fn, tn), torch.tensor([[0.5, 1.0], [1 / 3, 0.75]]))
    torch.testing.assert_close(M.iou_score(tp, fp, fn, tn, reduction="micro"), torch.tensor(6 / 11))
    torch.testing.assert_close(M.iou_score(tp, fp, fn, tn, reduction="macro"), torch.tensor((3 / 7 + 3 / 4) / 2))


def test_zero_division_policies():
    zeros = torch.zeros(1, 1, dtype=torch.long)
    all_true_negative = (zeros, zeros, zeros, torch.full((1, 1), 4))
    assert M.iou_score(*all_true_negative).item() == 1.0  # default zero_division=1
    assert M.iou_score(*all_true_negative, zero_division=0.25).item() == 0.25
    with pytest.warns(UserWarning, match="Zero division"):
        assert M.iou_score(*all_true_negative, zero_division="warn").item() == 0.0
    # "micro" never substitutes: the 0/0 stays NaN, as in SMP 0.6.
    assert torch.isnan(M.iou_score(*all_true_negative, reduction="micro", zero_division=1.0))


def test_warn_policy_is_silent_without_zero_division(stats_with_zero_divisions):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.accuracy(*stats_with_zero_divisions, reduction="macro", zero_division="warn")


def test_macro_with_class_weights_divides_by_the_class_count(stats_with_zero_divisions):
    """SMP 0.6 quirk kept: 'macro' multiplies by normalised weights, then averages over classes."""
    weighted = M.f1_score(*stats_with_zero_divisions, reduction="weighted", class_weights=CLASS_WEIGHTS)
    macro = M.f1_score(*stats_with_zero_divisions, reduction="macro", class_weights=CLASS_WEIGHTS)
    torch.testing.assert_close(macro, weighted / (C + 1))


def test_aliases():
    assert M.precision is M.positive_predictive_value and M.recall is M.sensitivity


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"reduction": "weighted"}, "needs class_weights"),
        ({"reduction": "weighted-imagewise"}, "needs class_weights"),
        ({"reduction": "mean"}, "reduction must be one of"),
        ({"zero_division": "nan"}, "zero_division must be"),
        ({"reduction": "macro", "class_weights": [0.0] * (C + 1)}, "positive sum"),
    ],
    ids=str,
)
def test_metric_options_are_validated(stats_with_zero_divisions, kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.iou_score(*stats_with_zero_divisions, **kwargs)
