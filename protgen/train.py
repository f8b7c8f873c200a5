"""Training: AdamW with warm-up, gradient clipping, EMA weights, atomic checkpoints, resume, DDP.

One process: ``protgen train --data DIR --out RUN``. Several: ``torchrun --nproc_per_node N -m
protgen train ...`` (gloo on CPU, NCCL on GPU); each rank draws its own shard of clusters and only
rank 0 writes. A run directory holds ``checkpoint.pt`` (latest, atomic), ``metrics.csv``,
``validation.csv``, ``loss.png`` and ``config.json``.
"""

import csv
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from protgen import checkpoint
from protgen.dataset import TrainingSet
from protgen.errors import CheckpointError, ConfigError, ProtgenError
from protgen.files import atomic_path
from protgen.loader import Batch, BatchLoader
from protgen.generator import FrameVelocity, Prediction
from protgen.loss import AuxiliaryLoss, generator_matching_loss
from protgen.model import GeneratorModel, ModelConfig
from protgen.progress import Progress
from protgen.rigid import Rigid
from protgen.validation import denoising_diagnostics, validation_loss

__all__ = ["TrainConfig", "TrainResult", "train", "EMA"]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and bookkeeping of a training run (stored in checkpoints)."""

    steps: int = 20000  # optimiser steps in total
    batch_size: int = 8  # segments per batch per process
    crop_length: int = 128  # residues; longer segments are cropped at random
    max_pairs: int = 0  # if > 0, batches hold at most max_pairs // L² chains of padded length L (batch_size is the cap)
    lr: float = 2e-4  # peak AdamW learning rate
    warmup: int = 500  # steps of linear warm-up
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    grad_clip: float = 1.0  # max global gradient norm
    ema_decay: float = 0.999  # EMA of the weights (sampling uses the EMA)
    self_condition_prob: float = 0.5  # probability of a self-conditioning pass (if the network has it)
    checkpoint_every: int = 250  # steps between checkpoints
    val_every: int = 250  # steps between validation passes
    val_batches: int = 2  # validation batches per time bin
    log_every: int = 10  # steps between metrics.csv rows
    seed: int = 0  # seeds model init, data order and noise
    bf16: bool = False  # bfloat16 autocast (GPU only)
    max_nonfinite: int = 20  # consecutive skipped (non-finite) steps that stop the run
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...


@dataclass(frozen=True)
class TrainResult:
    """checkpoint: path of the last checkpoint; step: steps done; model: this process's trained
    model (raw weights, not EMA); stopped: True if a signal ended the run early."""

    checkpoint: Path
    step: int
    model: GeneratorModel
    stopped: bool


class EMA:
    """Exponential moving average of a module's floating-point state, with warm-up: the decay at
    update n is min(decay, (1 + n)/(10 + n)), so early averages do not keep the initial weights
    (an average of the initial and trained weights is a different, poor network)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: torch.nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1 - decay)
            else:
                self.shadow[k].copy_(v)


def _setup_distributed(config: TrainConfig) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if config.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(config.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"--device {config.device}: CUDA is not available on this machine")
    if world == 1:
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world, device


def _lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10 % at the last step."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


class _Stop:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so the run can checkpoint and leave."""

    def __init__(self):
        self.requested = False
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.requested = True

    def restore(self):
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def _loss_on(model, module, batch: Batch, generator, self_condition: bool, autocast, aux: AuxiliaryLoss):
    x_1, mask = batch.frames, batch.mask

    def predict(t, x_t) -> Prediction:
        self_cond = None
        if self_condition:
            with torch.no_grad(), autocast():
                self_cond = module.network(t, x_t, mask).x1_hat.trans.float()
        with autocast():
            prediction = model(t, x_t, mask, self_cond)
        velocity = FrameVelocity(prediction.velocity.omega.float(), prediction.velocity.v.float())
        x1_hat = Rigid(prediction.x1_hat.rots.float(), prediction.x1_hat.trans.float())
        return Prediction(velocity, x1_hat)

    return generator_matching_loss(module.process, predict, x_1, mask, generator, aux=aux)


def train(data: str | Path, out: str | Path, model_config: ModelConfig, config: TrainConfig, resume: bool = False,
          init_from: str | Path | None = None) -> TrainResult:
    """Train a model (or continue the run in ``out`` with ``resume``).

    ``init_from``: a checkpoint or weights file whose (EMA) network weights start a new run — for
    fine-tuning and for continuing across machines; its network config must equal model_config's.
    """
    rank, world, device = _setup_distributed(config)
    out = Path(out)
    ckpt_path = out / "checkpoint.pt"
    dataset = TrainingSet.load(data)
    state = None
    if resume:
        state = checkpoint.load(ckpt_path, map_location="cpu")
        if state["data_fingerprint"] != dataset.meta["fingerprint"]:
            raise CheckpointError(f"{ckpt_path} was trained on data {state['data_fingerprint']}, but {data} is {dataset.meta['fingerprint']}")
        model_config = checkpoint.model_config_from_dict(state["model_config"])
        config = TrainConfig(**{**state["train_config"], "steps": config.steps, "device": config.device})
        if init_from is not None:
            raise ConfigError("--init-from starts a new run; it cannot be combined with --resume")
    elif ckpt_path.exists():
        raise ProtgenError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if config.bf16 and device.type != "cuda":
        raise ConfigError("--bf16 needs a CUDA device")
    torch.manual_seed(config.seed)
    module = GeneratorModel(model_config).to(device)
    model = torch.nn.parallel.DistributedDataParallel(module) if world > 1 else module
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        (no_decay if p.ndim < 2 else decay).append(p)
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    if init_from is not None:
        _initialise_from(module, init_from, model_config)
    ema = EMA(module.network, config.ema_decay)
    loader = BatchLoader(dataset, "train", config.batch_size, config.crop_length, config.seed, rank, world, max_pairs=config.max_pairs)
    generator = torch.Generator(device=device).manual_seed(config.seed * 1000 + rank)
    coin = torch.Generator().manual_seed(config.seed * 1000 + rank + 1)
    step, skipped_total = 0, 0
    if state is not None:
        step, skipped_total = state["step"], state["skipped_steps"]
        _restore(state, rank, module, optimizer, ema, loader, generator, coin, device)
    val_batches = []
    if dataset.indices("val"):
        val_loader = BatchLoader(dataset, "val", config.batch_size, config.crop_length, seed=12345)
        val_batches = [next(val_loader).to(device) for _ in range(config.val_batches)]
    if rank == 0:
        _open_run_directory(out, data, dataset, model_config, config, module, world, device, step)

    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if config.bf16 else _no_autocast
    stop = _Stop()
    progress = Progress(config.steps - step, "training", enabled=rank == 0, unit="steps")
    consecutive_bad, last_time, residues = 0, time.monotonic(), 0
    self_condition = model_config.network.self_condition
    aux = AuxiliaryLoss(model_config.process.aux_weight, model_config.process.aux_t_min, model_config.process.weight_clip)

    def snapshot():
        rngs = {"loader": loader.state(), "noise": generator.get_state(), "coin": coin.get_state(), "torch": torch.get_rng_state()}
        gathered = [rngs]
        if world > 1:
            gathered = [None] * world
            dist.all_gather_object(gathered, rngs)
        if rank == 0:
            checkpoint.save(ckpt_path, {
                "model_config": asdict(model_config), "train_config": asdict(config),
                "data_fingerprint": dataset.meta["fingerprint"], "model": module.network.state_dict(),
                "ema": ema.shadow, "optimizer": optimizer.state_dict(), "step": step,
                "skipped_steps": skipped_total, "rng": gathered,
            })  # fmt: skip

    try:
        while step < config.steps:
            if _any_rank(stop.requested, world, device):
                snapshot()
                if rank == 0:
                    print(f"\nprotgen train: stopped at step {step}; checkpoint written to {ckpt_path} (continue with --resume)", flush=True)
                return TrainResult(ckpt_path, step, module, True)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * _lr_factor(step, config)
            batch = next(loader).to(device)
            use_sc = self_condition and torch.rand((), generator=coin).item() < config.self_condition_prob
            loss = _loss_on(model, module, batch, generator, use_sc, autocast, aux)
            optimizer.zero_grad(set_to_none=True)
            loss.total.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), config.grad_clip)
            if not torch.isfinite(grad_norm) or not torch.isfinite(loss.total):
                consecutive_bad += 1
                skipped_total += 1
                if consecutive_bad >= config.max_nonfinite:
                    raise ProtgenError(f"{consecutive_bad} non-finite losses or gradients in a row at step {step}; "
                                       f"stopped, last good checkpoint kept at {ckpt_path}")
                continue
            consecutive_bad = 0
            optimizer.step()
            ema.update(module.network, step)
            step += 1
            residues += int(batch.mask.sum()) * world
            progress.update(1, extra=f"loss {loss.total.item():.3f} rot {loss.terms['rot'].item():.3f} trans {loss.terms['trans'].item():.3f}")
            if rank == 0 and (step % config.log_every == 0 or step == config.steps):
                now = time.monotonic()
                _append_csv(out / "metrics.csv", {
                    "step": step, "loss": loss.total.item(), **{k: v.item() for k, v in loss.terms.items()},
                    "lr": optimizer.param_groups[0]["lr"], "grad_norm": grad_norm.item(), "skipped": skipped_total,
                    "steps_per_s": config.log_every / (now - last_time), "residues_per_s": residues / (now - last_time),
                })  # fmt: skip
                last_time, residues = now, 0
            if val_batches and (step % config.val_every == 0 or step == config.steps) and rank == 0:
                ema_module = GeneratorModel(model_config).to(device)
                ema_module.network.load_state_dict(ema.shadow)
                ema_module.eval()
                val = validation_loss(ema_module, val_batches, config.seed, aux)
                row = {"step": step, **{f"t={t}": v for t, v in val.items()}, "mean": sum(val.values()) / len(val)}
                for d in denoising_diagnostics(ema_module, val_batches, config.seed):
                    row |= {f"rmsd@{d.t}": d.rmsd, f"strand_recall@{d.t}": d.strand_recall,
                            f"helix_recall@{d.t}": d.helix_recall, f"clashes_per_100@{d.t}": d.clashes_per_100}  # fmt: skip
                _append_csv(out / "validation.csv", row)
                _plot(out)
            if step % config.checkpoint_every == 0 or step == config.steps:
                snapshot()
                if rank == 0:
                    _plot(out)
    finally:
        stop.restore()
        progress.close()
    return TrainResult(ckpt_path, step, module, False)


def _initialise_from(module: GeneratorModel, path: str | Path, model_config: ModelConfig) -> None:
    """Load the (EMA) network weights of another run into a new one; the architectures must match."""
    source, _ = checkpoint.load_model(path)
    if source.config.network != model_config.network:
        a, b = asdict(source.config.network), asdict(model_config.network)
        diff = ", ".join(f"{k} {a[k]} vs {b[k]}" for k in a if a[k] != b[k])
        raise ConfigError(f"--init-from {path}: its network differs from this run's ({diff}); use its preset/config")
    module.network.load_state_dict(source.network.state_dict())


def _restore(state: dict, rank: int, module, optimizer, ema: EMA, loader: BatchLoader, generator, coin, device) -> None:
    """Model, optimiser, EMA and every RNG of a checkpoint (this rank's, or the last rank's)."""
    module.network.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    ema.shadow = {k: v.to(device) for k, v in state["ema"].items()}
    rng = state["rng"][min(rank, len(state["rng"]) - 1)]
    loader.restore(rng["loader"])
    generator.set_state(rng["noise"])
    coin.set_state(rng["coin"])
    torch.set_rng_state(rng["torch"])


def _open_run_directory(out: Path, data, dataset: TrainingSet, model_config, config, module, world, device, step) -> None:
    """config.json, logs cut back to the resumed step, and the run's one-line header."""
    out.mkdir(parents=True, exist_ok=True)
    count = module.network.parameter_count()
    info = {"model": asdict(model_config), "train": asdict(config), "data": str(data), "data_fingerprint": dataset.meta["fingerprint"],
            "parameters": count, "world_size": world}
    (out / "config.json").write_text(json.dumps(info, indent=2) + "\n")
    _truncate_csv(out / "metrics.csv", step)
    _truncate_csv(out / "validation.csv", step)
    print(f"protgen train: {count:,} parameters, process {model_config.process.name!r}, device {device}, "
          f"{world} process(es), {len(dataset.indices('train'))} training segments", flush=True)


class _no_autocast:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _any_rank(flag: bool, world: int, device) -> bool:
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def _append_csv(path: Path, row: dict) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


def _truncate_csv(path: Path, step: int) -> None:
    """Drop rows logged after the checkpoint a run resumes from (or all rows for a new run)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    keep = [rows[0]] + [r for r in rows[1:] if int(r[0]) <= step] if rows else []
    if len(keep) <= 1:
        path.unlink()
        return
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(keep)


def _plot(out: Path) -> None:
    """loss.png: training loss per component and validation loss by time bin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def read(name):
        path = out / name
        if not path.exists():
            return {}
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return {k: [float(r[k]) for r in rows] for k in rows[0]} if rows else {}

    metrics, val = read("metrics.csv"), read("validation.csv")
    if not metrics:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for k, key in enumerate(("loss", "rot", "trans")):
        values = np.asarray(metrics[key])
        window = max(1, min(25, len(values) // 10))
        smooth = np.convolve(values, np.ones(window) / window, mode="valid")
        axes[0].plot(metrics["step"], values, color=f"C{k}", lw=0.5, alpha=0.3)
        axes[0].plot(metrics["step"][window - 1 :], smooth, color=f"C{k}", lw=1.5, label=f"{key} (running mean of {window})")
    axes[0].set(xlabel="step", ylabel="training loss", yscale="log", title="training")
    axes[0].legend()
    for key in (k for k in val if k.startswith("t=")):
        axes[1].plot(val["step"], val[key], label=key, marker=".")
    axes[1].set(xlabel="step", ylabel="validation loss (EMA)", yscale="log", title="validation by time")
    if val:
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(out / "loss.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
