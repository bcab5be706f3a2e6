"""``specseg import-smp``: turn an SMP ``save_pretrained`` model into spec + weights.

The source is a folder, or the Hugging Face repository id of one
(``smp-hub/segformer-b0-512x512-ade-160k``, optionally ``@revision``),
downloaded through huggingface_hub (its cache and ``HF_HUB_OFFLINE``
honoured). It holds ``config.json`` (``_model_class`` and the constructor
arguments) and ``model.safetensors``. The result is ``spec.yaml`` whose
``weights:`` names the weights file written beside it, pinned by sha256, so
that spec + weights are a versionable trained model that loads offline.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Mapping

from specseg.errors import Location, SpecError, SpecIssue, format_path
from specseg.fileio import check_target, write_bytes_atomic, write_text_atomic
from specseg.interop.smp_config import SMPConfigError, spec_from_smp_kwargs
from specseg.loader.source import load_document
from specseg.spec.formatting import canonical_text

SPEC_NAME = "spec.yaml"
WEIGHTS_NAME = "model.safetensors"


#: A Hugging Face model repository id, optionally pinned: ``owner/name`` or ``owner/name@revision``.
REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*(@[\w.\-/]+)?\Z")
#: The files of an SMP save_pretrained model.
MODEL_FILES = ("config.json", WEIGHTS_NAME)


def is_repo_id(src: str | Path) -> bool:
    """Whether ``src`` names a Hugging Face repository rather than a local folder (which wins when it exists)."""
    text = str(src)
    return not Path(text).exists() and REPO_ID.match(text) is not None


def download_model(repo: str) -> tuple[Path, str, str]:
    """Fetch an SMP model's files from Hugging Face: (snapshot folder, repository id, commit).

    Goes through huggingface_hub, so a cached copy is used and
    ``HF_HUB_OFFLINE=1`` is honoured; a failure is a :class:`SpecError`.
    """
    from huggingface_hub import hf_hub_download

    repo_id, _, revision = repo.partition("@")
    paths = []
    for filename in MODEL_FILES:
        try:
            paths.append(Path(hf_hub_download(repo_id, filename=filename, revision=revision or None)))
        except Exception as exc:  # noqa: BLE001 - offline, not cached, no such repository or file: one clear message
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SpecError(
                [
                    SpecIssue(
                        f"could not fetch {filename} of the SMP model {repo} from Hugging Face ({type(exc).__name__}: {detail}). "
                        "Without network access, fetch the repository on a machine that has it (its Hugging Face cache, "
                        "or the folder written by save_pretrained) and import from there",
                        (),
                        Location(repo, 1, 1),
                    )
                ]
            ) from None
    folder = paths[0].parent
    return folder, repo_id, folder.name  # snapshots/<commit>/


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


def spec_for_smp_folder(src: Path) -> tuple[dict[str, Any], Callable[[SpecError], SpecError], Any]:
    """The spec mapping (without ``weights``) for an SMP save_pretrained folder.

    Also returns a function that re-locates a spec error onto the SMP
    argument in ``config.json`` it came from, and the parsed config document
    (to locate arguments).
    """
    model_class, kwargs, doc = _config(Path(src))
    origins: dict[tuple[str, ...], str] = {}
    ignored: list[str] = []
    try:
        spec = spec_from_smp_kwargs(model_class, kwargs, origins, ignored)
    except SMPConfigError as exc:
        path = (exc.argument,)
        raise SpecError([SpecIssue(str(exc), path, doc.locate(path))]) from None

    def argument_of(path: tuple) -> str | None:
        prefixes = [path[:n] for n in range(len(path), 0, -1)]
        return next((origins[p] for p in prefixes if p in origins), None)

    def relocate(error: SpecError) -> SpecError:
        issues = []
        for issue in error.issues:
            # The argument behind the path, else behind a path the rule relates it to (a default on one side).
            candidates = [argument_of(tuple(issue.path))] + [argument_of(tuple(path)) for path, _ in issue.related]
            argument = next((a for a in candidates if a is not None), None)
            if argument is None:
                # A rule on defaults only: point at the model class, the argument that chose them.
                where = ("_model_class",)
                issues.append(SpecIssue(f"{format_path(issue.path)}: {issue.message}", where, doc.locate(where)))
            else:
                message = f"SMP argument {argument} (spec {format_path(issue.path)}): {issue.message}"
                issues.append(SpecIssue(message, (argument,), doc.locate((argument,))))
        return type(error)(issues)  # a SpecValueError stays one (SMP's ValueError)

    original_weights = kwargs.get("encoder_weights")
    # The trained weights replace the encoder's pretrained ones; keep where they came from.
    spec["encoder"].pop("weights", None)
    imported: dict[str, Any] = {"library": "segmentation_models_pytorch", "model_class": model_class, "encoder_weights": original_weights}
    if ignored:
        # Arguments SMP recorded in config.json but did not use: kept on record, not in the network.
        imported["ignored_by_smp"] = {key: kwargs[key] for key in ignored}
    spec["metadata"] = {"imported_from": imported}
    return spec, relocate, doc


def refusal(own: Mapping[str, Any], state_dict: Mapping[str, Any], problems: list[str], encoder_name: str) -> str:
    """Why a checkpoint does not load: its layout (same tensors, other key names) or its network differs."""
    def shapes(tensors: Mapping[str, Any]) -> Counter:
        return Counter(tuple(v.shape) for v in tensors.values())

    detail = "; ".join(problems)
    for part, prefix in (("encoder", "encoder."), ("decoder and heads", "")):
        ours = {k: v for k, v in own.items() if k.startswith(prefix) and (prefix or not k.startswith("encoder."))}
        theirs = {k: v for k, v in state_dict.items() if k.startswith(prefix) and (prefix or not k.startswith("encoder."))}
        if ours.keys() == theirs.keys() and all(tuple(ours[k].shape) == tuple(theirs[k].shape) for k in ours):
            continue
        if shapes(ours) == shapes(theirs):
            return (
                f"the layout differs: the file's {part} holds the same tensors as specseg's network for encoder "
                f"{encoder_name!r} under other key names, and no key mapping is known for it ({detail})"
            )
        count = lambda d: sum(int(math.prod(v.shape)) for v in d.values())  # noqa: E731
        return (
            f"the network differs: the file's {part} has {len(theirs)} tensors ({count(theirs):,} values), specseg's network "
            f"for encoder {encoder_name!r} {len(ours)} ({count(ours):,}) ({detail})"
        )
    return detail


def import_smp(src: str | Path, out_dir: str | Path, force: bool = False) -> Path:
    """Convert an SMP ``save_pretrained`` folder, or a Hugging Face repository id of one, into ``out_dir/spec.yaml`` + weights.

    The spec is validated and built against the weights before anything is
    written; SMP arguments that specseg cannot represent are refused, never
    dropped. Returns the path of the written spec. Existing files are kept
    unless ``force``.
    """
    from specseg.dryrun import meta_model
    from specseg.loader import load_spec
    from specseg.weights import WeightsError, mismatch_report, read_state_dict

    source: dict[str, str] = {}
    if is_repo_id(src):
        folder, repo_id, commit = download_model(str(src))
        source = {"huggingface_repo": repo_id, "revision": commit}
        src = folder
    src, out_dir = Path(src), Path(out_dir)
    spec_dict, relocate, doc = spec_for_smp_folder(src)
    spec_dict["metadata"]["imported_from"].update(source)
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
    own = model.state_dict()
    problems = mismatch_report(model, state_dict, own)
    if problems:
        where = "encoder_name" if "encoder_name" in doc.data else ()
        path = (where,) if where else ()
        raise SpecError(
            [
                SpecIssue(
                    f"the weights in {WEIGHTS_NAME} cannot be loaded into specseg's network: "
                    + refusal(own, state_dict, problems, spec.encoder.name),
                    path,
                    doc.locate(path),
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
    origin = f"the Hugging Face repository {source['huggingface_repo']}" if source else f"{src.name}/"
    header = f"# Imported from the SMP model in {origin} by specseg import-smp.\n"
    write_text_atomic(spec_path, canonical_text(spec_dict, header))
    return spec_path
