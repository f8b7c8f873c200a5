"""Validation during training: the loss by time bin and one-pass denoising diagnostics.

Both use fixed validation batches and fixed noise (the same seed every call), so successive rows
of ``validation.csv`` differ only through the weights. The diagnostics measure what samples
lose first: real chains noised along the training path to time t and denoised in one pass
(x̂_1, no self-conditioning), scored by CA RMSD to the truth after superposition, recall of the
truth's DSSP strands and helices, clashing residue pairs per 100 residues and the fraction of
CA–CA(next) distances in the range of a trans peptide (local geometry, what late times set;
scripts/compare_denoising.py prints it, validation.csv keeps the other four).
"""

from dataclasses import dataclass

import numpy as np
import torch

from protgen.data.loader import Batch
from protgen.geometry.backbone import frames_to_backbone, in_ca_ca_range
from protgen.geometry.contacts import count_clashes
from protgen.geometry.secondary import dssp
from protgen.geometry.superposition import kabsch_rmsd
from protgen.method.loss import LossConfig, generator_matching_loss
from protgen.method.process import LatentProcess

__all__ = [
    "LOSS_TIMES",
    "DIAGNOSTIC_TIMES",
    "Denoising",
    "validation_loss",
    "denoising_diagnostics",
]

LOSS_TIMES = (0.1, 0.3, 0.5, 0.7, 0.9)
DIAGNOSTIC_TIMES = (0.5, 0.7)


@dataclass(frozen=True)
class Denoising:
    """One-pass denoising at time t, pooled over the validation chains.

    rmsd: Å, mean CA RMSD of x̂_1 to x_1 after superposition; strand_recall, helix_recall: fraction
    of the truth's DSSP E (H) residues that are E (H) in x̂_1; clashes_per_100: clashing residue
    pairs per 100 residues of x̂_1 (the quality panel's definition); ca_ca_in_range: fraction of
    x̂_1's CA–CA(next) distances in_ca_ca_range (consecutive residues of the chain Φ shows).
    """

    t: float
    rmsd: float
    strand_recall: float
    helix_recall: float
    clashes_per_100: float
    ca_ca_in_range: float


@torch.no_grad()
def validation_loss(
    model,
    process: LatentProcess,
    batches: list[Batch],
    seed: int,
    config: LossConfig = LossConfig(),
) -> dict[float, float]:
    """Mean loss of the validation batches at each time of LOSS_TIMES (same noise every call).

    ``model(t, x_t)`` → Prediction; ``process``: the latent process it was trained for.
    """
    out = {}
    for t_value in LOSS_TIMES:
        rng = torch.Generator(device=batches[0].mask.device).manual_seed(seed)
        total = 0.0
        for batch in batches:
            t = torch.full((batch.mask.shape[0],), t_value, device=batch.mask.device)
            total += generator_matching_loss(
                process, model, batch.x_1, rng, t=t, config=config
            ).total.item()
        out[t_value] = total / len(batches)
    return out


@torch.no_grad()
def denoising_diagnostics(
    model,
    process: LatentProcess,
    batches: list[Batch],
    seed: int,
    times=DIAGNOSTIC_TIMES,
    self_condition: bool = False,
) -> list[Denoising]:
    """x̂_1 of one pass from Φ(Y_t) on each validation chain, scored against the truth; with
    ``self_condition``, of a second pass fed the first pass's x̂_1 (as the sampler feeds it)."""
    out = []
    for t_value in times:
        rng = torch.Generator(device=batches[0].mask.device).manual_seed(seed)
        rmsd, strands, helices, clashes, spacing = [], [0, 0], [0, 0], [0, 0], [0, 0]
        for batch in batches:
            t = torch.full((batch.mask.shape[0],), t_value, device=batch.mask.device)
            path = process.sample_path(batch.x_1, t, rng)
            x_t = process.phi(path.y_t)
            x1_hat = model(t, x_t).x1_hat
            if self_condition:
                x1_hat = model(t, x_t, x1_hat).x1_hat
            predicted = frames_to_backbone(x1_hat, x_t.mask, index=x_t.index).float().cpu().numpy()
            if process.emerging_length:  # Φ shows only the residues there at t
                clean = process.clean_frames(path, batch.x_1)
                true = frames_to_backbone(clean, x_t.mask, index=x_t.index).float().cpu().numpy()
            else:
                true = batch.atoms.float().cpu().numpy()
            for k, n in enumerate(x_t.mask.sum(-1).tolist()):
                rmsd.append(float(kabsch_rmsd(predicted[k, :n, 1], true[k, :n, 1])))
                ss_hat, ss = (
                    np.array(list(dssp(predicted[k, :n]))),
                    np.array(list(dssp(true[k, :n]))),
                )
                strands[0] += int(((ss == "E") & (ss_hat == "E")).sum())
                strands[1] += int((ss == "E").sum())
                helices[0] += int(((ss == "H") & (ss_hat == "H")).sum())
                helices[1] += int((ss == "H").sum())
                clashes[0] += count_clashes(predicted[k, :n])
                clashes[1] += n
                ca_ca = np.linalg.norm(np.diff(predicted[k, :n, 1], axis=0), axis=-1)
                spacing[0] += int(in_ca_ca_range(ca_ca).sum())
                spacing[1] += len(ca_ca)
        out.append(
            Denoising(
                t_value,
                float(np.mean(rmsd)),
                strands[0] / max(strands[1], 1),
                helices[0] / max(helices[1], 1),
                100 * clashes[0] / max(clashes[1], 1),
                spacing[0] / max(spacing[1], 1),
            )
        )
    return out
