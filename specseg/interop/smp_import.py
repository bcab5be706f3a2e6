"""``specseg import-smp``: turn an SMP ``save_pretrained`` folder into spec + weights.

The folder holds ``config.json`` (``_model_class`` and the constructor
arguments) and ``model.safetensors``. The result is ``spec.yaml`` whose
``weights:`` names the weights file written beside it, pinned by sha256, so
that spec + weights are a versionable trained model that loads offline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

from specseg.errors import Location, SpecError, SpecIssue, format_path
from specseg.fileio import check_target, write_bytes_atomic, write_text_atomic
from specseg.interop.smp_config import SMPConfigError, spec_from_smp_kwargs
from specseg.loader.source import load_document
from specseg.spec.formatting import canonical_text

SPEC_NAME = "spec.yaml"
WEIGHTS_NAME = "model.safetensors"


def _config(src: Path) -> tuple[str, dict[str, Any], Any]:
    config_path = src / "config.json"
    if not src.is_dir():
        raise SpecError([SpecIssue("not a folder; expected an SMP save_pretrained folder", (), Location(str(src), 1, 1))])
    doc, _ = load_document(config_path)
    if not isinstance(doc.data, dict) or "_model_class" not in doc.data:
        raise SpecError(
            [SpecIssue("not an SMP config: it has no '_model_class'", (), Location(str(config_path), 1, 1))]
        )
    data = dict(doc.data)
    model_class = data.pop("_model_class")
    if not isinstance(model_class, str):
        raise SpecError([SpecIssue(f"_model_class must be an SMP class name (a string), not {model_class!r}", ("_model_class",), doc.locate(("_model_class",)))])
    return model_class, data, doc


def spec_for_smp_folder(src: Path) -> tuple[dict[str, Any], Callable[[SpecError], SpecError]]:
    """The spec mapping (without ``weights``) for an SMP save_pretrained folder.

    Also returns a function that re-locates a spec error onto the SMP
    argument in ``config.json`` it came from.
    """
    model_class, kwargs, doc = _config(Path(src))
    origins: dict[tuple[str, ...], str] = {}
    try:
        spec = spec_from_smp_kwargs(model_class, kwargs, origins)
    except SMPConfigError as exc:
        path = (exc.argument,)
        raise SpecError([SpecIssue(str(exc), path, doc.locate(path))]) from None

    def relocate(error: SpecError) -> SpecError:
        issues = []
        for issue in error.issues:
            prefixes = [issue.path[:n] for n in range(len(issue.path), 0, -1)]
            argument = next((origins[p] for p in prefixes if p in origins), None)
            if argument is None:
                issues.append(SpecIssue(f"{format_path(issue.path)}: {issue.message}", (), doc.locate(())))
            else:
                message = f"SMP argument {argument} (spec {format_path(issue.path)}): {issue.message}"
                issues.append(SpecIssue(message, (argument,), doc.locate((argument,))))
        return SpecError(issues)

    original_weights = kwargs.get("encoder_weights")
    # The trained weights replace the encoder's pretrained ones; keep where they came from.
    spec["encoder"].pop("weights", None)
    spec["metadata"] = {"imported_from": {"library": "segmentation_models_pytorch", "model_class": model_class, "encoder_weights": original_weights}}
    return spec, relocate


def import_smp(src: str | Path, out_dir: str | Path, force: bool = False) -> Path:
    """Convert an SMP ``save_pretrained`` folder into ``out_dir/spec.yaml`` + weights.

    The spec is validated and built against the weights before anything is
    written; SMP arguments that specseg cannot represent are refused, never
    dropped. Returns the path of the written spec. Existing files are kept
    unless ``force``.
    """
    from specseg.dryrun import meta_model
    from specseg.loader import load_spec
    from specseg.weights import WeightsError, mismatch_report, read_state_dict

    src, out_dir = Path(src), Path(out_dir)
    spec_dict, relocate = spec_for_smp_folder(src)
    weights_path = src / WEIGHTS_NAME
    try:
        state_dict = read_state_dict(weights_path)
    except WeightsError as exc:
        raise SpecError([SpecIssue(str(exc), (), Location(str(weights_path), 1, 1))]) from None
    try:
        spec = load_spec(spec_dict)
    except SpecError as exc:
        raise relocate(exc) from None
    try:
        model = meta_model(spec)
    except SpecError as exc:  # rules only the build checks (an encoder refusing its params): point at config.json
        raise relocate(exc) from None
    problems = mismatch_report(model, state_dict)
    if problems:
        raise SpecError(
            [
                SpecIssue(
                    f"the weights of encoder {spec.encoder.name!r} cannot be mapped onto specseg's network: " + "; ".join(problems),
                    ("encoder_name",),
                    Location(str(src / "config.json"), 1, 1),
                )
            ]
        )
    spec_path, out_weights = out_dir / SPEC_NAME, out_dir / WEIGHTS_NAME
    for path in (spec_path, out_weights):
        check_target(path, force)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; the output of import-smp is a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    data = weights_path.read_bytes()
    spec_dict["weights"] = {"path": WEIGHTS_NAME, "sha256": hashlib.sha256(data).hexdigest()}
    write_bytes_atomic(out_weights, data)
    header = f"# Imported from the SMP model in {src.name}/ by specseg import-smp.\n"
    write_text_atomic(spec_path, canonical_text(spec_dict, header))
    return spec_path
