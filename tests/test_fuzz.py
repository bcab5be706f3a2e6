"""Property-based fuzzing of the spec pipeline (hypothesis).

Two sources of specs:

* documents generated from the JSON Schema itself (hypothesis-jsonschema);
* mutations of every example in ``specs/``: keys dropped, duplicated,
  renamed, values retyped or pushed out of range, applied to the data or to
  the YAML text (lines duplicated, deleted, truncated, YAML 1.1 tokens).

The property: loading either succeeds, and then the model builds and runs a
forward pass on a small input (huge generated models are first measured on
the meta device and shrunk to a tiny encoder and small channels), or raises
:class:`specseg.SpecError` whose every issue has a location; no other
exception escapes, at load time or at build time. JSON Schema and Pydantic
give the same verdict, except for what JSON Schema cannot express
(:data:`INEXPRESSIBLE`).

The default budget is small and derandomized, so CI is reproducible, and a
failure is reported as found (unshrunk) to bound CI time;
``SPECSEG_FUZZ_EXAMPLES=N`` runs N examples per test, with fresh randomness
and shrinking.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("hypothesis_jsonschema")

import torch
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import specseg
from specseg import SpecError
from specseg.spec.model import ModelSpec
from specseg.spec.versions import spec_class
from tests.conftest import SPECS

_LONG_RUN = int(os.environ.get("SPECSEG_FUZZ_EXAMPLES", "0") or 0)


def fuzz_settings(default_examples: int) -> settings:
    """Derandomized with a small budget by default; ``SPECSEG_FUZZ_EXAMPLES=N`` for a long, random run."""
    phases = list(Phase) if _LONG_RUN else [Phase.explicit, Phase.reuse, Phase.generate]
    return settings(
        max_examples=_LONG_RUN or default_examples,
        deadline=None,
        derandomize=not _LONG_RUN,
        phases=phases,  # shrinking a generated spec can take minutes: only in long runs
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much, HealthCheck.large_base_example],
    )


#: Models with more parameters than this are shrunk before being built for real.
MAX_BUILD_PARAMETERS = 3_000_000
#: Spatial sizes tried for the forward pass, smallest first.
INPUT_SIZES = (64, 128, 256)


# --------------------------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------------------------


def _errors(data: Any) -> list[dict[str, Any]]:
    try:
        spec_class(data).model_validate(data)
    except ValidationError as exc:
        return exc.errors(include_url=False)
    return []


def _inexpressible(error: dict[str, Any]) -> str | None:
    """Why JSON Schema cannot catch what Pydantic reports here, or None when it should have."""
    kind, value = error["type"], error.get("input")
    if kind == "cross_field":
        return "cross-field rule (e.g. len(decoder.channels) == encoder.depth, loss vs head.classes)"
    if kind == "value_error" and isinstance(value, dict):
        return "cross-field rule inside a section (a model validator, e.g. a dice loss's class_weights vs its mode)"
    if kind == "int_type" and isinstance(value, float) and value.is_integer():
        return "JSON Schema counts a float with zero fraction (5.0) as an integer"
    if kind == "finite_number":
        return "JSON Schema has no NaN (and no infinity where a field has no bound)"
    if kind == "value_error" and tuple(error.get("loc", ()))[-2:] == ("encoder", "name") and str(value).startswith("tu-"):
        return "which `tu-` names exist is data (the timm index), not schema: the schema takes any name of the `tu-` pattern"
    loc = tuple(error.get("loc", ()))
    if kind == "value_error" and any(loc[i : i + 2] == ("encoder", "params") for i in range(len(loc))):
        return "which encoder.params an encoder takes is per-encoder data (specseg/encoders/encoder_params.py), not schema"
    if isinstance(value, str) and value.endswith("\n"):
        return (
            "python-jsonschema evaluates `pattern` with Python's re, whose `$` also matches before a final "
            "newline; ECMA-262 regexes, which JSON Schema specifies, and Pydantic do not"
        )
    return None


#: What JSON Schema cannot express (or python-jsonschema does not check); every disagreement must be one of these.
INEXPRESSIBLE = (
    "cross_field",
    "model validators within a section",
    "int_type on whole floats",
    "finite_number",
    "strings ending in a newline vs `$`",
    "tu- names timm does not have",
    "encoder.params an encoder does not take",
)


def check_agreement(data: Any, schema_validator: Any) -> None:
    """JSON Schema and Pydantic agree on ``data``, except for :data:`INEXPRESSIBLE` rules."""
    schema_ok = schema_validator.is_valid(data)
    errors = _errors(data) if isinstance(data, dict) else [{"type": "not_a_mapping"}]
    if schema_ok and errors:
        unexplained = [e for e in errors if _inexpressible(e) is None]
        assert not unexplained, f"the JSON Schema accepts what Pydantic refuses: {unexplained}"
    if not schema_ok:
        assert errors, f"Pydantic accepts what the JSON Schema refuses: {[e.message for e in schema_validator.iter_errors(data)][:3]}"


def assert_located(exc: SpecError, text_source: bool) -> None:
    """Every issue says what is wrong and where: a file position for text, a spec path for a mapping."""
    assert exc.issues, "a SpecError without issues"
    for issue in exc.issues:
        assert issue.message
        if text_source:
            assert issue.location is not None and issue.location.line >= 1 and issue.location.column >= 1, issue.format()
        else:  # a mapping has no positions (Location is None): the path says where
            assert issue.location is not None or issue.path or "top level" in issue.message, issue.format()


def _shrunk(data: dict[str, Any]) -> dict[str, Any]:
    """The same architecture with a tiny encoder and small sizes (generated models can be huge)."""
    data = copy.deepcopy(data)
    data["weights"] = None
    encoder = data.setdefault("encoder", {})
    decoders = data.get("decoders") if isinstance(data.get("decoders"), dict) else {"": data.get("decoder", {})}
    arch = "dpt" if any(d.get("architecture") == "dpt" for d in decoders.values()) else None
    encoder.update(name="tu-test_vit" if arch == "dpt" else "tu-test_resnet", weights=None, params={})
    encoder.pop("output_indices", None)
    if isinstance(encoder.get("in_channels"), int):
        encoder["in_channels"] = min(encoder["in_channels"], 4)

    def small(key: str, value: Any) -> Any:
        if "channels" in key and isinstance(value, int) and not isinstance(value, bool):
            return min(value, 32)
        if "channels" in key and isinstance(value, list):
            return [min(v, 32) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    if "decoders" in data:
        # Version 2: every named decoder and head.
        data["decoders"] = {n: {k: small(k, v) for k, v in d.items()} for n, d in decoders.items()}
        parts = list(data.get("heads", {}).values())
    else:
        data["decoder"] = {k: small(k, v) for k, v in data.get("decoder", {}).items()}
        parts = [data.get(section) for section in ("head", "aux_params")]
    for part in parts:
        if isinstance(part, dict) and isinstance(part.get("classes"), int):
            part["classes"] = min(part["classes"], 4)
    return data


def _meta_parameters(spec: ModelSpec) -> int:
    from specseg.dryrun import meta_model

    return sum(p.numel() for p in meta_model(spec).parameters())


def exercise_build(spec: ModelSpec) -> str:
    """Build ``spec`` (or its shrunk variant when large) and run one forward pass; SpecError only."""
    data = spec.model_dump(mode="json")
    data["weights"] = None
    data["encoder"]["weights"] = None  # never download or read files
    for candidate in (data, _shrunk(data)):
        try:
            spec = spec_class(candidate).model_validate(candidate)
        except ValidationError:
            return "shrinking made it invalid"
        try:
            if _meta_parameters(spec) > MAX_BUILD_PARAMETERS:
                continue
            model = specseg.build(spec).eval()
        except SpecError as exc:
            assert_located(exc, text_source=False)
            return "refused at build time"
        for size in INPUT_SIZES:  # the smallest the architecture takes (PAN needs 8x its output stride)
            x = torch.zeros(1, spec.encoder.in_channels, size, size)
            try:
                model.check_input_shape(x)
                break
            except ValueError:
                continue
        else:
            return "input size refused"
        with torch.no_grad():
            out = model(x)
        if isinstance(out, dict):
            # Version 2: one output per head, in spec order.
            assert list(out) == list(spec.heads)
            for name, head in spec.heads.items():
                assert out[name].shape[0] == 1
                if head.activation not in ("argmax", "argmax2d"):
                    assert out[name].shape[1] == head.classes
            return "built"
        mask = out[0] if isinstance(out, tuple) else out
        assert mask.shape[0] == 1
        if spec.head.activation not in ("argmax", "argmax2d"):  # argmax reduces the class dimension
            assert mask.shape[1] == spec.head.classes
        return "built"
    return "too large"


def check_spec(source: Any, schema_validator: Any = None, text_source: bool = False) -> str:
    """The property, for a dict or a YAML/JSON text."""
    try:
        spec = specseg.load_spec(source)
    except SpecError as exc:
        assert_located(exc, text_source)
        outcome = "invalid"
    else:
        outcome = exercise_build(spec)
    if schema_validator is not None:
        data = source
        if text_source:
            from specseg.loader.source import load_document

            try:
                data = load_document(source)[0].data
            except SpecError:
                return outcome  # refused while reading: nothing to compare
        check_agreement(data, schema_validator)
    return outcome


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    import jsonschema

    from specseg.schema import json_schema

    return jsonschema.Draft202012Validator(json_schema())


@pytest.fixture(autouse=True, scope="module")
def _few_threads() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------
# (a) Specs generated from the JSON Schema
# --------------------------------------------------------------------------------------------


def _schema_strategy() -> st.SearchStrategy[Any]:
    from hypothesis_jsonschema import from_schema

    from specseg.spec.model import ModelSpec
    from specseg.spec.multitask import MultiTaskSpec

    # hypothesis-jsonschema does not finish on the published schema's if/then rules (one per
    # architecture and encoder rule), so draws come from each version's plain Pydantic schema;
    # the published schema still judges every draw (check_agreement).
    return st.one_of(from_schema(ModelSpec.model_json_schema()), from_schema(MultiTaskSpec.model_json_schema()))


#: Minimal examples of bugs the fuzzer found, replayed on every run (see the fixes they name).
REGRESSIONS = [
    # validate crashed with TypeError (exit 3): an unhashable architecture was looked up in a dict (spec/model.py).
    {"specseg": 1, "decoder": {"architecture": ["unet"]}},
    {"specseg": 1, "decoder": {"architecture": {"unet": 1}}},
    # build raised RuntimeError (exit 3) without the inplace_abn package; now a SpecError at decoder.norm (blocks/norm.py).
    {"specseg": 1, "encoder": {"name": "tu-test_resnet"}, "decoder": {"architecture": "unet", "norm": {"type": "inplace"}}},
    # the JSON Schema accepted any encoder.weights string; Pydantic only names and paths (spec/encoder.py).
    {"specseg": 1, "decoder": {"architecture": "unet"}, "encoder": {"weights": "D\u00eb"}},
    # a lone surrogate is not a character: refused by the JSON/YAML readers with a position (loader).
    {"specseg": 1, "decoder": {"architecture": "unet"}, "name": "\ud800"},
    # Literal[1] and Literal[1, 3, 5, 7] took `true` as 1 (Pydantic compares literals by equality) (spec/common.py).
    {"specseg": True, "decoder": {"architecture": "linknet"}},
    {"specseg": 1, "decoder": {"architecture": "unet"}, "head": {"kernel_size": True}},
]


@fuzz_settings(100)
@given(data=st.deferred(_schema_strategy))
@example(data=REGRESSIONS[0])
@example(data=REGRESSIONS[1])
@example(data=REGRESSIONS[2])
@example(data=REGRESSIONS[3])
@example(data=REGRESSIONS[4])
@example(data=REGRESSIONS[5])
@example(data=REGRESSIONS[6])
def test_specs_generated_from_the_schema(data: Any, schema_validator: Any) -> None:
    """As JSON text (so every issue must have a position), and as a mapping."""
    check_spec(json.dumps(data), schema_validator, text_source=True)
    check_spec(data)


# --------------------------------------------------------------------------------------------
# (b) Mutations of the example specs
# --------------------------------------------------------------------------------------------

_RETYPES = ["5", 5, 5.0, 5.5, True, None, [], {}, [1], {"k": 1}, "yes", float("nan"), float("inf"), -1, 0, 10**6, 2**63, 10**40]
_OUT_OF_RANGE = [-1, 0, 6, 65537, 100_001, 10**6, 2**63, -(2**63) - 1, 10**4000 - 1]
_YAML_TOKENS = ["yes", "no", "on", "off", "017", "0x1F", "1.10", "1e3", ".nan", ".inf", "-.inf", "~", "null", "''", "[]", "{}",
                "!!binary aGk=", "!!python/name:os.system", "*nope", "&a 1", "<<: {}", "'5'", "5.0", "-1", "0", "1e999"]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, prefix + (i,))
    return out


def _parent(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        data = data[part]
    return data


@st.composite
def mutated_data(draw: Any, base: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(data)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, last = _parent(data, path), path[-1]
        op = draw(st.sampled_from(["drop", "retype", "rename", "out_of_range", "add_key", "grow_list"]))
        if op == "drop":
            del parent[last]
        elif op == "retype":
            parent[last] = copy.deepcopy(draw(st.sampled_from(_RETYPES)))
        elif op == "out_of_range":
            parent[last] = draw(st.sampled_from(_OUT_OF_RANGE))
        elif op == "rename" and isinstance(last, str):
            cut = draw(st.integers(0, len(last)))
            new = last[:cut] + draw(st.sampled_from(["", "s", "_", "X"])) + last[cut + 1 :]
            if new and new not in parent:
                parent[new] = parent.pop(last)
        elif op == "add_key" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "_target_", "name", "channels", "classes", "depth", "architecture"]))] = draw(st.sampled_from(_RETYPES[:6]))
        elif op == "grow_list" and isinstance(parent[last], list):
            parent[last] = parent[last] + parent[last]
    return data


@st.composite
def mutated_text(draw: Any, text: str) -> str:
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 3))):
        if not lines:
            break
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["duplicate", "delete", "token", "truncate", "indent", "char"]))
        if op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "delete":
            del lines[i]
        elif op == "token" and ":" in lines[i]:
            key, _, _ = lines[i].partition(":")
            lines[i] = f"{key}: {draw(st.sampled_from(_YAML_TOKENS))}"
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "indent":
            lines[i] = draw(st.sampled_from(["", " ", "   ", "\t"])) + lines[i]
        elif op == "char":
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + draw(st.sampled_from(["[", "]", "{", "}", ",", ":", "#", "&", "*", "!", "'", '"', "%", "@", "\\", "\x00", "é"])) + lines[i][j:]
    return "\n".join(lines) + "\n"


def _spec_data(path: Path) -> dict[str, Any]:
    from specseg.loader.source import load_document

    return load_document(path)[0].data


#: Budget per example spec, so that all of them together stay within a few hundred examples.
_PER_SPEC = 8


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_mutated_example_data(path: Path, schema_validator: Any) -> None:
    base = _spec_data(path)

    @fuzz_settings(_PER_SPEC)
    @given(data=mutated_data(base))
    def run(data: dict[str, Any]) -> None:
        check_spec(data, schema_validator)

    run()


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_mutated_example_text(path: Path, schema_validator: Any) -> None:
    text = path.read_text(encoding="utf-8")

    @fuzz_settings(_PER_SPEC)
    @given(source=mutated_text(text))
    def run(source: str) -> None:
        check_spec(source, schema_validator, text_source=True)

    run()


def test_unmutated_examples_build() -> None:
    """The baseline of the mutation tests: every example passes the property unchanged."""
    assert {check_spec(_spec_data(p)) for p in SPECS} <= {"built", "too large"}


def test_regression_pan_input_size_is_checked_before_the_forward_pass() -> None:
    """Found by the fuzzer: `specseg build` of a PAN spec with a 64x64 input ended in an internal error (exit 3).

    check_input_shape now knows PAN's minimum (the deepest map must be 8x8), so the CLI reports a usage error.
    """
    model = specseg.build({"specseg": 1, "encoder": {"name": "tu-test_resnet"}, "decoder": {"architecture": "pan"}})
    with pytest.raises(ValueError, match="needs inputs of at least 128x128"):
        model.check_input_shape(torch.zeros(1, 3, 64, 64))
    model.check_input_shape(torch.zeros(1, 3, 128, 128))
