"""Encoder plugins: in-process registration (SMP's seed example), installed entry points, isolation of failures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator, List

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

import specseg
from specseg import EncoderMixin
from specseg.encoders.registry import registry, unregister_encoder
from specseg.testing import check_encoder, single_threaded

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "specseg-example-plugin"


# --- SMP's seed example, with only its import changed ------------------------------------------


class MyEncoder(torch.nn.Module, EncoderMixin):
    def __init__(self, **kwargs):
        super().__init__()

        # A number of channels for each encoder feature tensor, list of integers
        self._out_channels: List[int] = [3, 16, 64, 128, 256, 512]

        # A number of stages in decoder (in other words number of downsampling operations), integer
        # use in in forward pass to reduce number of returning features
        self._depth: int = 5

        # Default number of input channels in first Conv2d layer for encoder (usually 3)
        self._in_channels: int = 3

        # Define encoder modules below
        channels = self._out_channels
        self.stages = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Conv2d(channels[i], channels[i + 1], 3, stride=2, padding=1), torch.nn.ReLU())
            for i in range(5)
        )

    def forward(self, x: torch.Tensor) -> List[torch.Tensor]:
        features = [x]
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


SEED_ENTRY = {
    "encoder": MyEncoder,  # encoder class here
    "pretrained_settings": {
        "imagenet": {
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "url": "https://some-url.com/my-model-weights",
            "input_space": "RGB",
            "input_range": [0, 1],
        },
    },
    "params": {
        # init params for encoder if any
    },
}


@pytest.fixture
def cleanup() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        unregister_encoder(name)


def _unet(name: str, **encoder) -> dict:
    return {"specseg": 1, "encoder": {"name": name, **encoder}, "decoder": {"architecture": "unet"}, "head": {"classes": 2}}


@pytest.mark.parametrize("depth", [5, 3])
def test_seed_encoder_registered_in_process_builds_and_runs(cleanup: list[str], depth: int) -> None:
    cleanup.append("my_awesome_encoder")
    specseg.register_encoder("my_awesome_encoder", SEED_ENTRY)
    spec = _unet("my_awesome_encoder", depth=depth)
    with single_threaded():
        model = specseg.build(spec).eval()
        assert model.encoder.out_channels == [3, 16, 64, 128, 256, 512][: depth + 1]
        with torch.no_grad():
            assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2, 64, 64)
    from specseg.preprocessing import preprocessing_params

    assert preprocessing_params("my_awesome_encoder")["mean"] == [0.485, 0.456, 0.406]


def test_seed_encoder_keeps_the_contract() -> None:
    assert check_encoder(MyEncoder) == []


def test_registration_forms(cleanup: list[str]) -> None:
    cleanup += ["as_decorator", "as_keywords"]

    @specseg.register_encoder("as_decorator", params={"scale": 2})
    class Scaled(MyEncoder):
        def __init__(self, scale: int = 1, **kwargs):
            super().__init__(**kwargs)
            self.scale = scale

    assert registry.get("as_decorator").encoder is Scaled
    specseg.register_encoder("as_keywords", encoder=MyEncoder, pretrained_settings={}, params={})
    with torch.device("meta"):
        assert specseg.build(_unet("as_decorator")).encoder.scale == 2


def test_name_clashes_name_both_sources(cleanup: list[str]) -> None:
    cleanup.append("clash_me")
    specseg.register_encoder("clash_me", MyEncoder)
    with pytest.raises(ValueError, match="already registered by runtime; my-tool"):
        specseg.register_encoder("clash_me", MyEncoder, source="my-tool")
    with pytest.raises(ValueError, match="built-in encoder"):
        specseg.register_encoder("resnet34", MyEncoder)


def test_check_encoder_reports_specific_violations() -> None:
    class Liar(MyEncoder):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self._out_channels = [3, 16, 64, 100, 256, 512]

    problems = check_encoder(Liar, check_depths=[3, 5], check_in_channels=(), check_output_strides=(), check_trace=False)
    assert any("feature 3 has shape (2, 128, 8, 8), expected (2, 100, 8, 8)" in p for p in problems), problems


class _WidthParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    width: int = Field(8, ge=1)


def test_params_model_validates_with_locations(cleanup: list[str], tmp_spec) -> None:
    cleanup.append("with_params")
    specseg.register_encoder("with_params", MyEncoder, params_model=_WidthParams)
    path = tmp_spec("specseg: 1\nencoder:\n  name: with_params\n  params:\n    width: 0\n    colour: red\ndecoder: {architecture: unet}\n")
    with pytest.raises(specseg.SpecError) as info:
        specseg.load_spec(path)
    found = {(i.path, i.location.line if i.location else None) for i in info.value.issues}
    assert (("encoder", "params", "width"), 5) in found and (("encoder", "params", "colour"), 6) in found
    from specseg.encoders.plugin_report import plugin_params_schemas

    assert plugin_params_schemas()["with_params"]["properties"]["width"]["minimum"] == 1


class _FussyEncoder(MyEncoder):
    """A plugin encoder whose constructor fails in its own way on a value it was given."""

    def __init__(self, width: int = 8, **kwargs):
        if width > 64:
            raise RuntimeError(f"width {width} does not fit the stem")
        super().__init__(**kwargs)


def test_plugin_constructor_failing_on_params_is_a_located_refusal(cleanup: list[str], tmp_spec) -> None:
    """Without a params model only the constructor can judge encoder.params: whatever it raises is exit 1 at encoder.params."""
    cleanup.append("fussy")
    specseg.register_encoder("fussy", _FussyEncoder)
    path = tmp_spec("specseg: 1\nencoder:\n  name: fussy\n  params: {width: 100}\ndecoder: {architecture: unet}\n")
    specseg.load_spec(path)  # nothing declared to check against at validate time
    with pytest.raises(specseg.SpecError) as info:
        specseg.build(path)
    (issue,) = info.value.issues
    assert issue.path == ("encoder", "params") and issue.location.line == 4 and "width 100 does not fit the stem" in issue.message


def test_discovery_runs_once_and_can_be_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    from specseg.encoders import plugins

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(plugins, "_entry_points", lambda *groups: calls.append(groups) or {g: [] for g in groups})
    registry.rediscover()
    first = len(calls)
    for _ in range(3):
        registry.names()
        registry.is_valid_name("resnet34")
    assert first == 1 and len(calls) == first  # one scan of the metadata for both groups, once
    monkeypatch.setenv("SPECSEG_DISABLE_PLUGINS", "1")
    registry.rediscover()
    assert len(calls) == first
    monkeypatch.delenv("SPECSEG_DISABLE_PLUGINS")
    registry.rediscover()


def test_built_in_names_resolve_without_scanning_for_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    from specseg.encoders import plugins
    from specseg.encoders.registry import EncoderRegistry

    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(plugins, "_entry_points", lambda *groups: calls.append(groups) or {g: [] for g in groups})
    fresh = EncoderRegistry()
    for entry in (registry.peek_raw(n) for n in ("resnet34", "mit_b0")):
        assert entry is not None
        fresh.add(entry)
    # A built-in always wins over a plugin of the same name, so its lookups skip discovery...
    assert fresh.get("resnet34") is registry.peek_raw("resnet34") and fresh.problem("mit_b0") is None
    assert calls == []
    # ...while any other name scans the installed metadata, once.
    assert fresh.peek("not_an_encoder") is None and fresh.problem("not_an_encoder") is None
    assert len(calls) == 1


# --- installed plugins, found through their entry points -------------------------------------------

_ALPHA = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "specseg-plugin-alpha"
        version = "1.2.0"

        [project.entry-points."specseg.encoders"]
        alpha_net = "alpha_plugin:entries"
        broken_net = "alpha_plugin.broken:Encoder"
        shared_net = "alpha_plugin:AlphaEncoder"
        resnet34 = "alpha_plugin:AlphaEncoder"

        [tool.setuptools]
        packages = ["alpha_plugin"]
    """,
    "alpha_plugin/__init__.py": """
        import torch
        from specseg import EncoderMixin

        class AlphaEncoder(torch.nn.Module, EncoderMixin):
            def __init__(self, width=4, **kwargs):
                super().__init__()
                self._out_channels = [3] + [width * 2**i for i in range(5)]
                self._depth = kwargs.get("depth", 5)
                self._in_channels = 3
                chans = self._out_channels
                self.convs = torch.nn.ModuleList(torch.nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1) for i in range(5))

            def forward(self, x):
                out = [x]
                for conv in self.convs[: self._depth]:
                    x = conv(x)
                    out.append(x)
                return out

        def entries():
            demo = {"url": "https://example.invalid/alpha.pth", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
            return {"alpha_net": {"encoder": AlphaEncoder, "pretrained_settings": {"demo": demo, "aerial": demo}, "params": {"width": 2}}}
    """,
    "alpha_plugin/broken.py": """
        raise ImportError("this plugin module is broken on purpose")
    """,
}
_BETA = {
    "pyproject.toml": """
        [build-system]
        requires = ["setuptools>=68"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "specseg-plugin-beta"
        version = "0.1.0"

        [project.entry-points."specseg.encoders"]
        shared_net = "beta_plugin:BetaEncoder"

        [tool.setuptools]
        packages = ["beta_plugin"]
    """,
    "beta_plugin/__init__.py": """
        BetaEncoder = None
    """,
}


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the example plugin and two freshly written plugins pip-installed into it."""
    base = tmp_path_factory.mktemp("plugins")
    example = base / "example"
    shutil.copytree(EXAMPLE, example, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    alpha = _write_package(base / "alpha", _ALPHA)
    beta = _write_package(base / "beta", _BETA)
    target = base / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(target), str(example), str(alpha), str(beta)],
        check=True,
        capture_output=True,
        text=True,
    )
    return target


_DRIVER = r"""
import json, sys
import specseg
from specseg.errors import SpecError
out = {}

def unet(name, **params):
    return {"specseg": 1, "encoder": {"name": name, "params": params}, "decoder": {"architecture": "unet"}, "head": {"classes": 2}}

def attempt(key, fn):
    try:
        out[key] = fn()
    except SpecError as exc:
        out[key] = "error: " + str(exc)

# validation knows plugin names without importing plugin code (or torch)
attempt("validate_example", lambda: specseg.load_spec(unet("example_tiny", width=8)).encoder.name)
attempt("validate_broken", lambda: specseg.load_spec(unet("broken_net")).encoder.name)
attempt("validate_shared", lambda: specseg.load_spec(unet("shared_net")).encoder.name)
attempt("validate_bad_params", lambda: specseg.load_spec(unet("example_tiny", width="wide")).encoder.name)
out["imported_before_build"] = sorted(m for m in sys.modules if m.startswith(("alpha_plugin", "beta_plugin", "specseg_example_plugin.encoder", "torch")))

import torch

def run(name, **params):
    model = specseg.build(unet(name, **params)).eval()
    with torch.no_grad():
        return list(model(torch.zeros(1, 3, 64, 64)).shape)

attempt("build_example", lambda: run("example_tiny", width=8))
attempt("build_broken", lambda: run("broken_net"))
attempt("build_alpha", lambda: run("alpha_net"))
attempt("build_builtin", lambda: type(specseg.build(unet("resnet34")).encoder).__name__)
from specseg.encoders.plugin_report import plugin_rows
rows, warnings = plugin_rows(load=True)
out["plugins"] = {r["name"]: [r["distribution"], r["status"]] for r in rows}
out["warnings"] = warnings
from specseg.encoders.catalog import encoder_rows
out["listed_source"] = {r["name"]: r["source"] for r in encoder_rows("*_net", include_timm=False)}
print("JSON" + json.dumps(out))
"""


def _drive(site: Path, **env: str) -> dict:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)]), **env}
    result = subprocess.run([sys.executable, "-c", _DRIVER], capture_output=True, text=True, env=environ, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.split("JSON", 1)[1])


def test_installed_plugins_are_found_through_entry_points(site: Path) -> None:
    out = _drive(site)
    assert out["validate_example"] == "example_tiny"
    assert out["validate_broken"] == "broken_net"  # the name is declared; its code is not imported yet
    assert out["imported_before_build"] == []
    assert "encoder.params.width" in out["validate_bad_params"]
    assert out["build_example"] == [1, 2, 64, 64]
    assert out["build_alpha"] == [1, 2, 64, 64]  # a registration function returning entries
    # a broken plugin breaks only its own encoders, with a message naming distribution and entry point
    assert out["build_broken"].startswith("error: ") and "specseg-plugin-alpha" in out["build_broken"]
    assert "broken_net = alpha_plugin.broken:Encoder" in out["build_broken"] and "broken on purpose" in out["build_broken"]
    assert out["build_builtin"] == "ResNetEncoder"  # a plugin cannot replace a built-in name
    # two distributions declaring one name: an error naming both
    assert "specseg-plugin-alpha" in out["validate_shared"] and "specseg-plugin-beta" in out["validate_shared"]
    assert out["plugins"]["example_tiny"] == ["specseg-example-plugin", "ok"]
    assert out["plugins"]["broken_net"] == ["specseg-plugin-alpha", "error"]
    assert any("resnet34" in w and "built-in" in w for w in out["warnings"])
    assert any("shared_net" in w for w in out["warnings"])
    assert out["listed_source"]["alpha_net"] == "specseg-plugin-alpha"


def test_disable_plugins(site: Path) -> None:
    out = _drive(site, SPECSEG_DISABLE_PLUGINS="1")
    assert out["validate_example"].startswith("error: ") and "unknown encoder 'example_tiny'" in out["validate_example"]
    assert out["plugins"] == {} and out["build_builtin"] == "ResNetEncoder"


def test_list_encoders_gives_plugins_a_weights_list(site: Path) -> None:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "specseg", "list", "encoders", "--json", "--filter", "*_[nt]*"], capture_output=True, text=True, env=environ, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert rows["alpha_net"]["weights"] == ["aerial", "demo"]  # its pretrained_settings, once imported
    assert rows["example_tiny"]["weights"] == []
    assert rows["broken_net"]["weights"] == []  # fails to import: an empty list and a warning naming it
    assert "broken_net" in result.stderr and "warning:" in result.stderr
    assert all(isinstance(r["weights"], list) for r in rows.values())


def test_example_plugin_tests_pass_after_the_readme_install_steps(site: Path) -> None:
    """README: `pip install ./examples/specseg-example-plugin` then `python -m pytest examples/specseg-example-plugin/tests`."""
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        capture_output=True, text=True, env=environ, cwd=ROOT, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
