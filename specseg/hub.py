"""Models on the Hugging Face Hub: ``hf://`` sources, Hub-ready folders and uploads.

* ``hf://OWNER/REPO[@REVISION]`` names the ``model.safetensors`` artifact of
  a Hub model repository. :func:`hub_file` downloads it through
  huggingface_hub, which keeps its cache (``HF_HUB_CACHE``) and honours
  offline mode (``HF_HUB_OFFLINE=1``: only cached files are used).
* :func:`save_pretrained` writes a folder the Hub shows as a model: the
  artifact, the spec as YAML and a model card (``README.md``) generated from
  the spec. :func:`specseg.load` reads such a folder back.
* :func:`push_to_hub` writes that folder and uploads it in one commit with
  huggingface_hub's API.

Reading a ``hf://`` artifact's metadata (``specseg inspect hf://...``) does
not import torch.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from specseg.model import SegmentationModel
    from specseg.spec.model import ModelSpec

from specseg.hub_source import (
    ARTIFACT_NAME,
    CARD_NAME,
    HF_PREFIX,
    SPEC_NAME,
    HubError,
    hub_file,
    is_hub_source,
    parse_hub_source,
)

__all__ = [
    "ARTIFACT_NAME",
    "CARD_NAME",
    "HF_PREFIX",
    "SPEC_NAME",
    "HubError",
    "hub_file",
    "is_hub_source",
    "model_card",
    "parse_hub_source",
    "push_to_hub",
    "save_pretrained",
]


# --------------------------------------------------------------------------- writing


def model_card(model: "SegmentationModel") -> str:
    """The Hub model card (``README.md``) for a built model, generated from its spec.

    YAML front matter (``library_name``, ``pipeline_tag``, ``tags``, and
    ``license`` / ``datasets`` / ``language`` / ``base_model`` /
    ``tags`` taken from the spec's ``metadata:``), then the architecture,
    encoder, parameter counts, input, preprocessing and the spec itself.
    """
    import json

    from specseg.preprocessing import preprocessing
    from specseg.spec.canonical import spec_hash

    spec: ModelSpec = model.spec
    metadata = dict(spec.metadata)
    front: dict[str, Any] = {"library_name": "specseg", "pipeline_tag": "image-segmentation"}
    tags = ["specseg", "segmentation", "pytorch", spec.architecture]
    extra_tags = metadata.get("tags")
    if isinstance(extra_tags, list):
        tags += [str(t) for t in extra_tags if str(t) not in tags]
    front["tags"] = tags
    for key in ("license", "license_name", "license_link", "datasets", "language", "base_model", "metrics"):
        if key in metadata:
            front[key] = metadata[key]
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    try:
        pre = preprocessing(spec).params()
    except (ValueError, KeyError, LookupError):
        pre = None
    name = spec.name or f"{spec.architecture} with {spec.encoder.name}"
    heads = f"{spec.head.classes} classes"
    if spec.aux_params is not None:
        heads += f"; classification head with {spec.aux_params.classes} classes (the model returns (mask, labels))"
    lines = ["---", *(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items()), "---", "", f"# {name}", ""]
    if spec.description:
        lines += [spec.description.strip(), ""]
    lines += [
        f"A segmentation model built by [specseg](https://pypi.org/project/specseg/) from the spec in `{SPEC_NAME}`.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | `{spec.architecture}` |",
        f"| encoder | `{spec.encoder.name}` (depth {spec.encoder.depth}, output stride {spec.encoder.output_stride}) |",
        f"| parameters | {total:,} ({trainable:,} trainable) |",
        f"| input | {spec.encoder.in_channels} channels, N x {spec.encoder.in_channels} x H x W |",
        f"| output | {heads} |",
        f"| spec hash | `{spec_hash(spec)}` |",
    ]
    if pre is not None:
        lines.append(
            f"| preprocessing | mean {pre['mean']}, std {pre['std']}, input range {pre['input_range']}, {pre['input_space']} |"
        )
    for key, value in metadata.items():
        if key not in front and key != "tags":
            lines.append(f"| {key} | {json.dumps(value, ensure_ascii=False)} |")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "import specseg",
        "",
        'model = specseg.load("hf://OWNER/REPO")  # this repository',
        "preprocess = specseg.preprocessing(model.spec)",
        "```",
        "",
        f"`{ARTIFACT_NAME}` holds the weights and the resolved spec; `specseg inspect` shows them without loading the weights.",
        "",
    ]
    return "\n".join(lines)


def save_pretrained(model: "SegmentationModel", directory: str | os.PathLike[str], force: bool = False) -> Path:
    """Write a Hub-ready folder: ``model.safetensors`` (the artifact), ``spec.yaml`` and ``README.md`` (model card).

    ``spec.yaml`` is the resolved spec in canonical YAML; building it gives
    the same network. Files that exist are replaced only with ``force``
    (else ``FileExistsError`` before anything is written). Returns the folder.
    """
    from specseg.artifacts import ArtifactError, atomic_target, check_writable, save_artifact
    from specseg.spec.canonical import resolved
    from specseg.spec.formatting import canonical_text
    from specseg.spec.model import ModelSpec

    spec = getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise ArtifactError("save_pretrained needs a model built by specseg (a SegmentationModel with a .spec)")
    folder = Path(directory)
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    targets = [folder / ARTIFACT_NAME, folder / SPEC_NAME, folder / CARD_NAME]
    for target in targets:
        check_writable(target, force)
    card = model_card(model)
    spec_text = canonical_text(resolved(spec), "")
    save_artifact(model, targets[0], force=force)
    for target, text in ((targets[1], spec_text), (targets[2], card)):
        with atomic_target(target, force) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return folder


def push_to_hub(
    model: "SegmentationModel",
    repo_id: str,
    *,
    revision: str | None = None,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    create_repo: bool = True,
) -> Any:
    """Upload ``model`` to the Hub model repository ``repo_id`` in one commit; returns huggingface_hub's ``CommitInfo``.

    The files are those of :func:`save_pretrained`. The repository is
    created first unless ``create_repo`` is False (``private`` applies to a
    new one). ``token`` defaults to huggingface_hub's (``HF_TOKEN`` or
    ``hf auth login``). The default commit message names the spec hash.
    """
    from huggingface_hub import HfApi

    from specseg.spec.canonical import spec_hash

    parse_hub_source(HF_PREFIX + repo_id)  # the same repository-id check as hf:// sources
    api = HfApi(token=token)
    if create_repo:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    message = commit_message or f"Upload {model.spec.architecture} ({model.spec.encoder.name}) with specseg, spec {spec_hash(model.spec)}"
    with tempfile.TemporaryDirectory(prefix="specseg-hub-") as folder:
        save_pretrained(model, folder)
        return api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=message, revision=revision, repo_type="model")
