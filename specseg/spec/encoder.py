"""The ``encoder:`` section (torch-free)."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field, JsonValue, ValidationInfo, field_validator

from specseg.spec.base import SpecModel
from specseg.spec.common import OutputStride

#: A weights name: ``imagenet``, SMP's names (``ssl``, ``imagenet+5k``) or a timm pretrained tag (``a1_in1k``).
WEIGHTS_NAME = re.compile(r"[A-Za-z0-9_.+\-]{1,200}\Z")
#: Suffixes that make a weights string a file path rather than a weights name.
WEIGHTS_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")

#: The JSON Schema form of the rule ``_weights_form`` enforces: a weights name, or a path (a separator
#: or a weights-file suffix, any case: JSON Schema regexes have no flags; U+212A lowercases to 'k').
WEIGHTS_STRING_PATTERN = (
    r"^(?:[A-Za-z0-9_.+\-]{1,200}$|[\s\S]*[/\\][\s\S]*$|[\s\S]*\."
    r"(?:[Ss][Aa][Ff][Ee][Tt][Ee][Nn][Ss][Oo][Rr][Ss]|[Pp][Tt][Hh]?|[Bb][Ii][Nn]|[Cc][Kk\u212a][Pp][Tt])$)"
)

#: Weights forms: a name (downloaded through timm / huggingface_hub) or a path to a local file.
WeightsName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="A weights name (`imagenet`, `ssl`, a timm tag such as `a1_in1k`), or the path of a local weights file "
        "(recognised by a `/` or a .safetensors/.pt/.pth/.bin/.ckpt suffix), relative to the spec file.",
        json_schema_extra={"pattern": WEIGHTS_STRING_PATTERN},
    ),
]


def is_weights_path(value: str) -> bool:
    """Whether a ``weights`` string names a file (has a path separator or a weights-file suffix)."""
    return "/" in value or "\\" in value or value.lower().endswith(WEIGHTS_FILE_SUFFIXES)


class WeightsFile(SpecModel):
    """A local weights file, optionally pinned by its sha256."""

    path: str = Field(min_length=1, max_length=4096, description="Path to a .safetensors file or a torch checkpoint (read with weights_only=True), relative to the spec file.")
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="Expected sha256 of the file (64 lowercase hex digits); a mismatch is refused before loading.")


#: A ``tu-`` name in timm's form, any case (``tu-ResNet18`` gets a suggestion; paths and modules do not qualify).
_TIMM_LIKE = re.compile(r"[Tt][Uu]-[A-Za-z0-9][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)?\Z")


def _encoder_name_schema() -> dict[str, Any]:
    from specseg.encoders.registry import registry

    return {
        "anyOf": [
            {"enum": [e.name for e in registry.entries() if e.is_builtin]},
            {"type": "string", "pattern": r"^tu-[a-z0-9][a-z0-9_]*(\.[a-z0-9_]+)?$"},
        ],
        "description": "A registered encoder name, or `tu-<timm model name>` for any timm model with features_only support.",
    }


class EncoderSpec(SpecModel):
    """The feature extractor (backbone) and how much of it is used."""

    name: str = Field(
        "resnet34",
        json_schema_extra=lambda schema: schema.update(_encoder_name_schema()),
        description="A registered encoder name, or `tu-<timm model name>` for any timm model with features_only support.",
    )
    weights: WeightsName | WeightsFile | None = Field(
        None,
        description="null for random initialisation; `imagenet` (or another weights name the encoder lists, or a timm pretrained tag) to download pretrained weights; or a local file: {path, sha256} or a path string, relative to the spec file.",
    )
    depth: int = Field(5, ge=1, le=5, description="Number of downsampling stages used, 1..5. Default depends on the architecture (5 for most; PSPNet 3, DPT 4).")
    in_channels: int = Field(3, ge=1, le=4096, description="Channels of the input image.")
    output_stride: OutputStride = Field(32, description="Total stride of the deepest feature map: 32, or 16/8 by dilating the last stages. Default depends on the architecture.")
    output_indices: list[Annotated[int, Field(ge=-64, le=64)]] | None = Field(None, min_length=1, max_length=5, description="ViT encoders only (DPT): indices of the transformer blocks whose outputs feed the decoder; null for the architecture's default.")
    params: dict[str, JsonValue] = Field(default_factory=dict, description="Extra keyword arguments for the encoder.")

    @field_validator("name")
    @classmethod
    def _known_name(cls, value: str) -> str:
        from specseg.encoders.registry import registry
        from specseg.loader.suggest import closest

        problem = registry.problem(value)
        if problem is not None:
            raise ValueError(problem)
        if _TIMM_LIKE.match(value) and value not in registry:
            # timm names are checked against the shipped timm index (torch-free), with suggestions.
            from specseg.encoders.timm_index import name_problem

            timm_problem = name_problem(value)
            if timm_problem is not None:
                raise ValueError(timm_problem)
        if registry.is_valid_name(value):
            return value
        hints = closest(value, registry.names(), n=3)
        hint = f"; did you mean {', '.join(repr(h) for h in hints)}?" if hints else "."
        raise ValueError(
            f"unknown encoder {value!r}{hint} Use a registered name (`specseg list encoders`) "
            "or `tu-<timm model name>`"
        )

    @field_validator("weights")
    @classmethod
    def _weights_form(cls, value: Any) -> Any:
        """A path string becomes ``{path: ...}``; anything else must be a weights name."""
        if not isinstance(value, str):
            return value
        if is_weights_path(value):
            return WeightsFile(path=value)
        if not WEIGHTS_NAME.match(value):
            raise ValueError(
                f"{value!r} is neither a weights name (letters, digits, '_', '.', '+', '-') nor a file path "
                "(a path needs a '/' or a .safetensors/.pt/.pth/.bin/.ckpt suffix)"
            )
        return value

    @field_validator("params")
    @classmethod
    def _known_params(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Validate ``params`` against what the encoder declares it takes (torch-free; see :mod:`specseg.encoders.encoder_params`)."""
        name = info.data.get("name")
        if not isinstance(name, str) or not value:
            return value
        from specseg.encoders.encoder_params import builtin_params_problems, timm_params_problems
        from specseg.encoders.registry import registry

        if name.startswith("tu-"):
            _raise_at_keys(timm_params_problems(value), value)
            return value
        entry = registry.peek(name) if registry.problem(name) is None else None
        if entry is not None and entry.is_builtin:
            if entry.timm_model is not None:
                _raise_at_keys(timm_params_problems(value), value)
            elif isinstance(entry.encoder, str):
                _raise_at_keys(builtin_params_problems(name, entry.encoder, value), value)
            return value
        try:
            model = registry.params_model(name)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin's params module that fails to import
            declared = getattr(registry.peek(name), "params_model", None)
            origin = ""
            if hasattr(declared, "group") and hasattr(declared, "value"):  # an entry point: name the plugin
                from specseg.encoders.plugins import describe

                origin = f" (plugin {describe(declared)})"
            raise ValueError(
                f"cannot check the params of encoder {name!r}{origin}: its params model failed to import: {type(exc).__name__}: {exc}"
            ) from None
        if model is not None:
            model.model_validate(value)
        return value


def _raise_at_keys(problems: list[tuple[str, str]], params: dict[str, Any]) -> None:
    """Raise one located error per ``(key, message)``, at ``encoder.params.<key>``."""
    if not problems:
        return
    from pydantic import ValidationError

    raise ValidationError.from_exception_data(
        "EncoderParams",
        [
            {"type": "value_error", "loc": (key,), "input": params[key], "ctx": {"error": ValueError(message)}}
            for key, message in problems
        ],
    )
