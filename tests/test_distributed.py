"""Models built by specseg train under DistributedDataParallel (two local processes).

Each rank builds the model from the same spec, wraps it in DDP, runs a few
SGD steps on its own data, and saves its state dict; afterwards every rank
must hold exactly the same parameters, and they must have moved.

``SyncBatchNorm.convert_sync_batchnorm`` is checked on every architecture
here (conversion, then forward and backward); under DDP it needs one CUDA
device per rank (torch refuses SyncBatchNorm in CPU modules), so that case
runs only where two GPUs are present, with NCCL.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import specseg

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="torch.distributed with gloo is not available")

WORLD_SIZE = 2
STEPS = 3
ENCODER = {"name": "tu-test_resnet", "depth": 5}
SPECS = {
    "unet-aux": {
        "specseg": 1,
        "encoder": ENCODER,
        "decoder": {"architecture": "unet", "channels": [32, 16, 16, 8, 8]},
        "head": {"classes": 3},
        "aux_params": {"classes": 2, "dropout": 0.0},
        "seed": 1,
    },
    "fpn": {
        "specseg": 1,
        "encoder": ENCODER,
        "decoder": {"architecture": "fpn", "pyramid_channels": 32, "segmentation_channels": 32},
        "head": {"classes": 3},
        "seed": 2,
    },
    # Spec format 2: two decoders and three heads on one encoder, a dict output.
    "multitask": {
        "specseg": 2,
        "encoder": ENCODER,
        "decoders": {
            "main": {"architecture": "unet", "channels": [32, 16, 16, 8, 8]},
            "context": {"architecture": "fpn", "pyramid_channels": 32, "segmentation_channels": 32},
        },
        "heads": {
            "mask": {"type": "segmentation", "from": "main", "classes": 3},
            "depth": {"type": "segmentation", "from": "context", "classes": 1},
            "labels": {"type": "classification", "from": "encoder", "classes": 2, "dropout": 0.0},
        },
        "seed": 3,
    },
}


def _classes(spec: dict[str, Any]) -> int:
    """Classes of the mask: ``head`` in version 1, the ``mask`` head in version 2."""
    return spec["head"]["classes"] if "head" in spec else spec["heads"]["mask"]["classes"]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _loss(out: Any, classes: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    target = torch.randint(0, classes, (2, 64, 64), generator=generator).to(device)
    if isinstance(out, dict):
        depth = torch.rand(2, 1, 64, 64, generator=generator).to(device)
        label_target = torch.randint(0, 2, (2, 2), generator=generator).float().to(device)
        return (
            torch.nn.functional.cross_entropy(out["mask"], target)
            + torch.nn.functional.mse_loss(out["depth"], depth)
            + torch.nn.functional.binary_cross_entropy_with_logits(out["labels"], label_target)
        )
    if isinstance(out, tuple):
        mask, labels = out
        label_target = torch.randint(0, 2, (2, 2), generator=generator).float().to(device)
        return torch.nn.functional.cross_entropy(mask, target) + torch.nn.functional.binary_cross_entropy_with_logits(labels, label_target)
    return torch.nn.functional.cross_entropy(out, target)


def _worker(rank: int, specs: dict[str, dict[str, Any]], sync_bn: bool, port: int, out: str) -> None:
    """One rank: train every spec in turn (one process group, started once: process start-up dominates)."""
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    device = torch.device("cuda", rank) if sync_bn else torch.device("cpu")
    dist.init_process_group("nccl" if sync_bn else "gloo", rank=rank, world_size=WORLD_SIZE)
    try:
        for name, spec in specs.items():
            model = specseg.build(spec)
            if sync_bn:
                model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
            model = model.to(device)
            initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
            ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[rank] if sync_bn else None)
            optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
            generator = torch.Generator().manual_seed(100 + rank)  # each rank sees different data
            ddp.train()
            for _ in range(STEPS):
                x = torch.randn(2, 3, 64, 64, generator=generator).to(device)
                loss = _loss(ddp(x), _classes(spec), generator, device)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            state = {k: v.detach().cpu().clone() for k, v in ddp.module.state_dict().items()}
            moved = any(not torch.equal(state[k], initial[k].cpu()) for k in initial if state[k].is_floating_point())
            torch.save({"state": state, "moved": moved}, Path(out) / f"{name}-rank{rank}.pt")
            dist.barrier()
    finally:
        dist.destroy_process_group()


_TWO_GPUS = torch.cuda.is_available() and torch.cuda.device_count() >= WORLD_SIZE and dist.is_nccl_available()


@pytest.mark.parametrize(
    "sync_bn",
    [
        pytest.param(False, id="batchnorm-gloo-cpu"),
        pytest.param(
            True,
            id="syncbatchnorm-nccl-cuda",
            marks=pytest.mark.skipif(not _TWO_GPUS, reason="SyncBatchNorm under DDP needs one CUDA device per rank (torch refuses it in CPU modules)"),
        ),
    ],
)
def test_ddp_training_keeps_ranks_identical(sync_bn: bool, tmp_path: Path) -> None:
    mp.spawn(_worker, args=(SPECS, sync_bn, _free_port(), str(tmp_path)), nprocs=WORLD_SIZE, join=True)
    for name, spec in SPECS.items():
        first, second = (torch.load(tmp_path / f"{name}-rank{r}.pt", weights_only=True) for r in range(WORLD_SIZE))
        assert first["moved"] and second["moved"], f"{name}: no parameter changed, nothing was trained"
        assert first["state"].keys() == second["state"].keys()
        different = [k for k in first["state"] if not torch.equal(first["state"][k], second["state"][k])]
        if sync_bn:
            assert different == [], f"{name}: ranks diverged: {different[:5]}"
        else:
            # Plain BatchNorm keeps per-rank running statistics (DDP broadcasts rank 0's buffers before each
            # forward, so they differ by the last step only); parameters are all-reduced and must agree.
            params = {k for k, _ in specseg.build(spec).named_parameters()}
            assert [k for k in different if k in params] == [], f"{name}: parameters diverged: {different[:5]}"
            assert different, f"{name}: running statistics should differ per rank without SyncBatchNorm"


@pytest.mark.parametrize("name", list(SPECS))
def test_convert_sync_batchnorm(name: str) -> None:
    """Every BatchNorm becomes a SyncBatchNorm with the same state; the model still trains (forward + backward)."""
    model = specseg.build(SPECS[name])
    before = model.state_dict()
    count = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert count > 0 and sum(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.modules()) == count
    assert not any(type(m) is torch.nn.BatchNorm2d for m in converted.modules())
    after = converted.state_dict()
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    converted.train()
    generator = torch.Generator().manual_seed(0)
    loss = _loss(converted(torch.randn(2, 3, 64, 64, generator=generator)), _classes(SPECS[name]), generator, torch.device("cpu"))
    loss.backward()
    assert all(p.grad is not None for p in converted.parameters())
