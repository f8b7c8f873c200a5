"""Training: AdamW with warm-up, gradient clipping, EMA weights, atomic checkpoints, resume, DDP.

One process: ``protgen train --data DIR --out RUN``. Several: ``torchrun --nproc_per_node N -m
protgen train ...`` (gloo on CPU, NCCL on GPU); each rank draws its own shard of clusters and only
rank 0 writes. A run directory holds ``checkpoint.pt`` (latest, atomic), ``metrics.csv``,
``validation.csv``, ``loss.png`` and ``config.json``.
"""

import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from protgen.data.dataset import TrainingSet
from protgen.data.loader import Batch, BatchLoader, Step
from protgen.data.random_motifs import with_random_motifs
from protgen.data.ss_masks import with_ss_condition
from protgen.errors import ConfigError, DatasetError, ProtgenError
from protgen.files import writable_folder
from protgen.geometry.rigid import Rigid
from protgen.method.generator import FrameVelocity, Prediction
from protgen.method.loss import LossTerms, generator_matching_loss
from protgen.method.registry import make_process
from protgen.network.model import GeneratorModel
from protgen.progress import Progress
from protgen.training import checkpoint
from protgen.training.checkpoint import Checkpoint, RngState
from protgen.training.config import ModelConfig, TrainConfig
from protgen.training.distributed import StopRequest, any_rank, setup
from protgen.training.ema import EMA
from protgen.training.initialisation import initialise_from
from protgen.training.logs import append_csv, plot
from protgen.training.resolve import RunRequest, resolve_run
from protgen.training.run_directory import open_run_directory
from protgen.training.validation import denoising_diagnostics, validation_loss

__all__ = ["TrainResult", "train", "train_run"]


@dataclass(frozen=True)
class TrainResult:
    """checkpoint: path of the last checkpoint; step: steps done; model: this process's trained
    model (raw weights, not EMA); stopped: True if a signal ended the run early (a run that reached
    its time limit is not stopped: it exits normally, its checkpoint written)."""

    checkpoint: Path
    step: int
    model: GeneratorModel
    stopped: bool


def _lr_factor(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 10 % at the last step."""
    if step < config.warmup:
        return (step + 1) / config.warmup
    progress = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


def _loss_on(
    model,
    module: GeneratorModel,
    process,
    batch: Batch,
    rng,
    self_condition: bool,
    autocast,
    config: ModelConfig,
) -> LossTerms:
    def predict(t, x_t) -> Prediction:
        self_cond = None
        if self_condition:
            with torch.no_grad(), autocast():
                x1_hat = module.network(t, x_t).x1_hat
                self_cond = Rigid(x1_hat.rots.float(), x1_hat.trans.float())
        with autocast():
            prediction = model(t, x_t, self_cond)
        gaps = prediction.velocity.gap_counts
        velocity = FrameVelocity(
            prediction.velocity.omega.float(),
            prediction.velocity.v.float(),
            None if gaps is None else gaps.float(),
        )
        return Prediction(
            velocity, Rigid(prediction.x1_hat.rots.float(), prediction.x1_hat.trans.float())
        )

    return generator_matching_loss(process, predict, batch.x_1, rng, config=config.loss)


def train(
    data: str | Path,
    out: str | Path,
    model_config: ModelConfig | None,
    config: TrainConfig | None,
    resume: bool = False,
    init_from: str | Path | None = None,
) -> TrainResult:
    """Train a model (or continue the run in ``out`` with ``resume``).

    On resume, None configs mean "as stored"; given ones must keep the stored model and change
    only resumable training settings (``protgen.training.resolve``). ``init_from``: a checkpoint
    or weights file whose (EMA) network weights start a new run — fine-tuning, or continuing on
    another machine; its network config must equal model_config's.
    """
    return train_run(data, out, RunRequest.of(model_config, config, resume, init_from))


def train_run(data: str | Path, out: str | Path, request: RunRequest) -> TrainResult:
    """Train the run ``request`` describes (see :func:`protgen.training.resolve.resolve_run`)."""
    out = Path(out)
    dataset = TrainingSet.load(data)
    if not dataset.indices("train"):
        raise DatasetError(
            f"{data} has no training segments (every cluster went to validation); rebuild it "
            "with a smaller --val-fraction"
        )
    run = resolve_run(request, out, dataset.meta.fingerprint)
    writable_folder(out, create=False)  # named before the model is built; nothing made yet
    model_config, config, state = run.model, run.train, run.state
    if run.applied and os.environ.get("RANK", "0") == "0":
        print(
            f"protgen train: resuming at step {state.step} with {'; '.join(run.applied)}",
            flush=True,
        )
    rank, world, device = setup(config.device)
    if rank == 0 and state is None and config.warmup >= config.steps:
        print(
            f"protgen train: warning: the warm-up ({config.warmup} steps) is not shorter than "
            f"the run ({config.steps} steps); the learning rate never reaches its peak",
            file=sys.stderr,
            flush=True,
        )
    torch.manual_seed(config.seed)
    module = GeneratorModel(model_config.network).to(device)
    if run.source is not None:
        initialise_from(module, run.source, run.init_from, model_config)
    trainer = _Run(out, dataset, model_config, config, module, rank, world, device)
    if state is not None:
        trainer.restore(state)
    if rank == 0:
        open_run_directory(
            out,
            data,
            dataset,
            model_config,
            config,
            module,
            world,
            device,
            trainer.step,
            run.init_from,
        )
    return trainer.loop()


class _Run:
    """The state of one training run: model, optimiser, EMA, data streams, RNGs and counters."""

    def __init__(
        self,
        out: Path,
        dataset: TrainingSet,
        model_config: ModelConfig,
        config: TrainConfig,
        module,
        rank,
        world,
        device,
    ):
        self.out, self.dataset, self.model_config, self.config = out, dataset, model_config, config
        self.module, self.rank, self.world, self.device = module, rank, world, device
        self.process = make_process(model_config.process)
        self.model = torch.nn.parallel.DistributedDataParallel(module) if world > 1 else module
        decay = [p for p in module.parameters() if p.ndim >= 2]
        no_decay = [p for p in module.parameters() if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        self.optimizer = torch.optim.AdamW(groups, lr=config.lr)
        self.ema = EMA(module.network, config.ema_decay)
        self.loader = BatchLoader(
            dataset,
            "train",
            config.batch_size,
            config.crop_length,
            config.seed,
            rank,
            world,
            max_pairs=config.max_pairs,
            whole_steps=config.whole_steps,
        )
        self.rng = torch.Generator(device=device).manual_seed(config.seed * 1000 + rank)
        self.coin = torch.Generator().manual_seed(config.seed * 1000 + rank + 1)
        self.step, self.skipped = 0, 0
        # training steps only (validation and checkpoints excluded)
        self.train_seconds, self.cpu_seconds = 0.0, 0.0
        self.val_batches = []
        if dataset.indices("val"):
            val_loader = BatchLoader(
                dataset,
                "val",
                config.val_chains or config.batch_size,
                config.crop_length,
                seed=12345,
            )
            self.val_batches = [next(val_loader).to(device) for _ in range(config.val_batches)]

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def restore(self, state: Checkpoint) -> None:
        """Model, optimiser, EMA and every RNG of a checkpoint (this rank's). A checkpoint of
        another number of processes is refused (each rank's data shard and noise depend on it);
        one whose noise generator ran on another kind of device restarts that generator from a
        seed, since a CPU and a CUDA generator's states do not convert."""
        if len(state.rng) != self.world:
            raise ConfigError(
                f"the run was trained by {len(state.rng)} process(es) and is resumed by "
                f"{self.world}: each process's data shard and noise depend on that number; "
                f"resume with torchrun --nproc_per_node {len(state.rng)} (or start a new run "
                "with --init-from)"
            )
        self.step, self.skipped = state.step, state.skipped_steps
        self.train_seconds, self.cpu_seconds = state.train_seconds or 0.0, state.cpu_seconds or 0.0
        self.module.network.load_state_dict(state.model)
        self.optimizer.load_state_dict(state.optimizer)
        # a resumed run may change these (RESUMABLE); group 0 decays, group 1 (biases, norms) not
        self.optimizer.param_groups[0]["weight_decay"] = self.config.weight_decay
        self.optimizer.param_groups[1]["weight_decay"] = 0.0
        self.ema.shadow = {k: v.to(self.device) for k, v in state.ema.items()}
        self.ema.decay = self.config.ema_decay
        rng = state.rng[self.rank]
        self.loader.restore(rng.loader)
        self._restore_noise(rng)
        self.coin.set_state(rng.coin)
        torch.set_rng_state(rng.torch)

    def _restore_noise(self, rng: RngState) -> None:
        """The noise generator's state, or — when it was saved on another kind of device — a
        fresh seed for it (the run goes on, with other noise than an uninterrupted run's)."""
        if rng.device in (None, self.device.type):
            try:
                self.rng.set_state(rng.noise)
                return
            except RuntimeError:  # a state of another size: saved on another device
                pass
        saved_on = rng.device or "another device"
        self.rng.manual_seed(self.config.seed * 1000 + self.rank + 1_000_003 * self.step)
        if self.rank == 0:
            print(
                f"protgen train: the checkpoint's noise generator ran on {saved_on}; on "
                f"{self.device.type} it restarts from a seed (the losses will differ from an "
                "uninterrupted run's)",
                file=sys.stderr,
                flush=True,
            )

    def snapshot(self) -> None:
        """An atomic checkpoint of everything (every rank's RNGs gathered on rank 0)."""
        rngs = RngState(
            loader=self.loader.state(),
            noise=self.rng.get_state(),
            coin=self.coin.get_state(),
            torch=torch.get_rng_state(),
            device=self.device.type,
        )
        gathered = [rngs]
        if self.world > 1:
            gathered = [None] * self.world
            dist.all_gather_object(gathered, rngs)
        if self.rank == 0:
            checkpoint.save(
                self.checkpoint_path,
                Checkpoint(
                    model_config=self.model_config,
                    ema=self.ema.shadow,
                    data_fingerprint=self.dataset.meta.fingerprint,
                    train_config=self.config,
                    model=self.module.network.state_dict(),
                    optimizer=self.optimizer.state_dict(),
                    step=self.step,
                    skipped_steps=self.skipped,
                    rng=tuple(gathered),
                    train_seconds=self.train_seconds,
                    cpu_seconds=self.cpu_seconds,
                ),
            )

    def loop(self) -> TrainResult:
        config = self.config
        autocast = (
            (lambda: torch.autocast(self.device.type, dtype=torch.bfloat16))
            if config.bf16
            else nullcontext
        )
        stop = StopRequest()
        progress = Progress(
            config.steps, "training", enabled=self.rank == 0, unit="steps", start=self.step
        )
        consecutive_bad, residues, steps_logged, clipped, train_seconds = 0, 0, 0, 0, 0.0
        deadline = time.monotonic() + 60 * config.time_limit if config.time_limit > 0 else math.inf
        try:
            while self.step < config.steps:
                if any_rank(time.monotonic() > deadline, self.world, self.device):
                    self.snapshot()
                    if self.rank == 0:
                        print(
                            f"\nprotgen train: time limit ({config.time_limit:g} min) reached at "
                            f"step {self.step}; checkpoint written to {self.checkpoint_path} "
                            "(continue with --resume)",
                            flush=True,
                        )
                    return TrainResult(self.checkpoint_path, self.step, self.module, False)
                if any_rank(stop.requested, self.world, self.device):
                    self.snapshot()
                    if self.rank == 0:
                        print(
                            f"\nprotgen train: stopped at step {self.step}; checkpoint written to "
                            f"{self.checkpoint_path} (continue with --resume)",
                            flush=True,
                        )
                    return TrainResult(self.checkpoint_path, self.step, self.module, True)
                started, cpu_started = time.monotonic(), time.process_time()
                loss, grad_norm, step_residues = self._step(autocast)
                if not torch.isfinite(grad_norm) or not torch.isfinite(loss.total):
                    consecutive_bad, self.skipped = consecutive_bad + 1, self.skipped + 1
                    if consecutive_bad >= config.max_nonfinite:
                        raise ProtgenError(
                            f"{consecutive_bad} non-finite losses or gradients in a row at step "
                            f"{self.step}; stopped, last good checkpoint kept at "
                            f"{self.checkpoint_path}"
                        )
                    continue
                consecutive_bad = 0
                self.optimizer.step()
                self.ema.update(self.module.network, self.step)
                self.step += 1
                residues += step_residues * self.world
                steps_logged, clipped = (
                    steps_logged + 1,
                    clipped + int(grad_norm.item() > config.grad_clip),
                )
                train_seconds += time.monotonic() - started
                self.train_seconds += time.monotonic() - started
                self.cpu_seconds += time.process_time() - cpu_started
                progress.update(
                    1,
                    extra=" ".join(
                        f"{k} {v.item():.3f}"
                        for k, v in [("loss", loss.total), *loss.terms.items()]
                    ),
                )
                if self.rank == 0 and (
                    self.step % config.log_every == 0 or self.step == config.steps
                ):
                    # rates over the steps since the last row, in training time (no validation or
                    # checkpoint time)
                    append_csv(
                        self.out / "metrics.csv",
                        {
                            "step": self.step,
                            "loss": loss.total.item(),
                            **{k: v.item() for k, v in loss.terms.items()},
                            "lr": self.optimizer.param_groups[0]["lr"],
                            "grad_norm": grad_norm.item(),
                            "skipped": self.skipped,
                            "steps_per_s": steps_logged / train_seconds,
                            "residues_per_s": residues / train_seconds,
                            "clipped": clipped / steps_logged,
                        },
                    )
                    steps_logged, clipped, residues, train_seconds = 0, 0, 0, 0.0
                if (
                    self.val_batches
                    and self.rank == 0
                    and (self.step % config.val_every == 0 or self.step == config.steps)
                ):
                    self.validate()
                if self.step % config.checkpoint_every == 0 or self.step == config.steps:
                    self.snapshot()
                    if self.rank == 0:
                        plot(self.out)
        finally:
            stop.restore()
            progress.close()
        return TrainResult(self.checkpoint_path, self.step, self.module, False)

    def _step(self, autocast) -> tuple[LossTerms, torch.Tensor, int]:
        """One step's forward/backward passes, micro-batch by micro-batch, each weighted by its
        share of the step's chains (the optimiser steps only if the result was finite). Returns
        the step's loss, its gradient norm before clipping, and its residue count."""
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * _lr_factor(self.step, self.config)
        item = next(self.loader)
        step = item if isinstance(item, Step) else Step((item,))
        step = step.to(self.device)
        # A run saved before whole steps scales its one batch's mean by its size over batch_size.
        weights = (
            step.weights()
            if self.config.whole_steps
            else [step.chains / self.config.batch_size if self.config.max_pairs > 0 else 1.0]
        )
        self.optimizer.zero_grad(set_to_none=True)
        parts = []
        for k, (batch, weight) in enumerate(zip(step.batches, weights)):
            if self.config.motif_prob > 0:
                batch = with_random_motifs(batch, self.config.motif_prob, self.coin)
            if self.model_config.network.ss_condition:
                batch = with_ss_condition(
                    batch, self.config.ss_drop, self.config.ss_partial, self.coin
                )
            self_condition = (
                self.model_config.network.self_condition
                and torch.rand((), generator=self.coin).item() < self.config.self_condition_prob
            )
            last = k == len(step.batches) - 1
            # DDP reduces once, after the last
            with self.model.no_sync() if self.world > 1 and not last else nullcontext():
                loss = _loss_on(
                    self.model,
                    self.module,
                    self.process,
                    batch,
                    self.rng,
                    self_condition,
                    autocast,
                    self.model_config,
                )
                (loss.total * weight).backward()
            parts.append((loss, weight))
        total = sum(w * loss.total.detach() for loss, w in parts) / sum(w for _, w in parts)
        terms = {
            name: sum(w * loss.terms[name] for loss, w in parts) / sum(w for _, w in parts)
            for name in parts[0][0].terms
        }
        grad_norm = torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.config.grad_clip)
        return (
            LossTerms(total, **terms),
            grad_norm,
            int(sum(b.mask.sum() for b in step.batches)),
        )

    def validate(self) -> None:
        """validation.csv: the EMA model's loss by time bin and its denoising diagnostics."""
        ema_module = GeneratorModel(self.model_config.network).to(self.device)
        ema_module.network.load_state_dict(self.ema.shadow)
        ema_module.eval()
        val = validation_loss(
            ema_module, self.process, self.val_batches, self.config.seed, self.model_config.loss
        )
        # hours: this run's training wall time; core_hours: its processes' CPU time (all ranks),
        # both over training steps only: runs on other machines or thread counts compare per compute
        row = {
            "step": self.step,
            "hours": self.train_seconds / 3600,
            "core_hours": self.cpu_seconds * self.world / 3600,
            **{f"t={t}": v for t, v in val.items()},
            "mean": sum(val.values()) / len(val),
        }
        for d in denoising_diagnostics(
            ema_module, self.process, self.val_batches, self.config.seed
        ):
            row |= {
                f"rmsd@{d.t}": d.rmsd,
                f"strand_recall@{d.t}": d.strand_recall,
                f"helix_recall@{d.t}": d.helix_recall,
                f"clashes_per_100@{d.t}": d.clashes_per_100,
            }
        append_csv(self.out / "validation.csv", row)
        plot(self.out)
