"""Writing a sampling run's backbone files and its manifest as each batch ends."""

import errno
import os
from pathlib import Path

import numpy as np
import torch

from protgen.data.structure import write_backbone
from protgen.errors import ProtgenError
from protgen.geometry.secondary import codes_to_ss
from protgen.sampling.config import SampleConfig
from protgen.sampling.jobs import Job
from protgen.sampling.manifest import ManifestRow, write_manifest
from protgen.sampling.ss_condition import ss_codes

__all__ = ["Writer"]


def _write_manifest(out: Path, rows: list[ManifestRow]) -> None:
    write_manifest(out / "manifest.csv", rows)


def _finish(
    job: Job, atoms: np.ndarray, motif_file: str | None, out: Path
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, dict]:
    """Atoms to write, B-factors, chain IDs and the manifest's motif columns of one job. Motif
    residues are written with the motif file's own atoms, moved as the sample placed them; the
    motif file is named relative to the output folder (the pair can move together)."""
    if job.layout is None:
        return atoms, None, None, {}
    layout = job.layout
    true = layout.motif_atoms[layout.fixed]
    centre = true[:, 1].mean(0)
    atoms = atoms.copy()
    # the frames were fixed: a pure translation
    atoms[layout.fixed] = true - centre + atoms[layout.fixed][:, 1].mean(0)
    columns = {
        "motif_file": _relative(Path(motif_file), out),
        "contig": layout.description,
        "motif_positions": layout.motif_positions,
        "motif_residues": layout.motif_residues,
    }
    return atoms, layout.fixed.astype(float), layout.chain, columns


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` (absolute only where no relative path exists)."""
    try:
        return Path(os.path.relpath(path.resolve(), folder.resolve())).as_posix()
    except ValueError:  # another drive
        return str(path.resolve())


class Writer:
    """Backbone files and the manifest (rewritten after every batch, so it always lists what is on
    disk); a full disk or another write error ends the run with what was kept. A run of several
    models (routes) names the one sampling next with :meth:`use`."""

    def __init__(self, out: Path, order: list[str]):
        self.out = out
        # rows are listed in job order, whichever batch ends first
        self.order = {name: k for k, name in enumerate(order)}
        self.rows: list[ManifestRow] = []
        self.listed = 0

    def use(self, config: SampleConfig, fingerprint: str, model: str) -> None:
        """The settings, model file fingerprint and model name of the samples written next."""
        self.config, self.fingerprint, self.model = config, fingerprint, model

    def write(
        self,
        done: list[tuple[int, Job]],
        atoms: torch.Tensor,
        path: list[torch.Tensor],
        seconds: float,
    ) -> None:
        """Jobs k of the batch (with their final lengths) from atoms (B, N, 4, 3) and the path."""
        config, suffix = self.config, "cif" if self.config.fmt == "cif" else "pdb"
        try:
            for k, job in done:
                final, b_factors, chains, columns = _finish(
                    job, atoms[k, : job.length].numpy(), config.motif_file, self.out
                )
                write_backbone(
                    self.out / job.name, final, b_factors, fmt=config.fmt, chain_ids=chains
                )
                if config.trajectory:
                    traj = torch.stack([p[k] for p in path]).numpy()
                    write_backbone(
                        self.out / job.name.replace(f".{suffix}", f"_traj.{suffix}"),
                        traj,
                        b_factors,
                        fmt=config.fmt,
                        chain_ids=chains,
                    )
                self.rows.append(
                    ManifestRow(
                        file=job.name,
                        length=job.length,
                        index=job.index,
                        seed=job.seed,
                        steps=config.simulation.steps,
                        rot_rate=config.simulation.rot_rate,
                        checkpoint=self.fingerprint,
                        model=self.model,
                        seconds=seconds,
                        clash_guidance=config.clash_guidance,
                        langevin=config.simulation.langevin,
                        noise_scale=config.simulation.noise_scale,
                        **columns,
                        **(
                            {}
                            if config.ss is None
                            else {
                                "ss": codes_to_ss(ss_codes(config.ss)),
                                "ss_source": config.ss_source or "",
                                "guidance": config.guidance_weight,
                            }
                        ),
                    )
                )
            self.rows.sort(key=lambda row: self.order[row.file])
            _write_manifest(self.out, self.rows)
            self.listed = len(self.rows)
        except OSError as error:
            # the failed file's temporary copy is gone, so the small manifest usually still fits
            try:
                _write_manifest(self.out, self.rows)
                self.listed = len(self.rows)
            except OSError:
                pass
            kept = (
                f"{len(self.rows)} backbone(s) written so far are kept, {self.listed} of them "
                "listed in manifest.csv"
            )
            if error.errno == errno.ENOSPC:
                raise ProtgenError(
                    f"the disk is full while writing to {self.out}; {kept}"
                ) from None
            raise ProtgenError(
                f"cannot write to {self.out} ({error.strerror or error}); {kept}"
            ) from None
