"""protgen: protein backbone generation with Latent Process Generator Matching.

A small API for notebooks; the command line (``protgen …``) is a thin layer over the same
functions. Heavy modules load on first use, so ``import protgen`` stays cheap.

>>> import protgen
>>> model = protgen.load_model(length=80)             # the shipped model for 80 residues
>>> atoms = protgen.sample(model, length=80, num=4)   # (4, 80, 4, 3) array, Å: N, CA, C, O
>>> protgen.write("design.pdb", atoms[0])             # backbone PDB, residues named GLY
>>> protgen.to_atom_array(atoms[0])                   # a biotite AtomArray
>>> protgen.quality(atoms[0]).strand                  # the offline quality panel of one backbone
# panel, diversity (and more) for many, with report.md
>>> protgen.evaluate(list(atoms), out="eval")

The mathematics is in ``protgen/THEORY.md``.
"""

__version__ = "0.2.0"

__all__ = ["__version__", "load_model", "sample", "write", "to_atom_array", "quality", "evaluate"]


def load_model(checkpoint=None, device: str = "cpu", length: int | None = None):
    """A trained model ready to sample (``protgen.training.checkpoint.TrainedModel``): a
    checkpoint, run directory or weights file; by default the shipped fixed-length model that
    ``protgen sample`` uses for ``length`` residues (``short.pt`` for the lengths its weights
    serve, 40–128; ``default.pt`` for the others and when no length is given)."""
    from protgen.training.checkpoint import default_checkpoint
    from protgen.training.checkpoint import load_model as _load

    if checkpoint is None and length is not None:
        from protgen.sampling.routes import shipped_checkpoint_for

        checkpoint = shipped_checkpoint_for(length)[1]
    return _load(checkpoint or default_checkpoint(), device)


def sample(
    model=None,
    length: int = 100,
    num: int = 1,
    seed: int = 0,
    steps: int = 100,
    rot_rate: float | None | str = "model",
    device: str = "cpu",
    langevin: float = 0.0,
    noise_scale: float = 1.0,
    ss: str | None = None,
    guidance: float | None = None,
):
    """``num`` backbones of ``length`` residues as a numpy array (num, length, 4, 3), Å, atoms N,
    CA, C, O. Sample i uses the same seed as ``protgen sample --seed seed`` does for index i, so
    the API and the command line give the same structures with the same model. ``model`` None:
    the shipped fixed-length model that ``protgen sample`` picks for ``length`` without
    --checkpoint (``short.pt`` for the lengths its weights serve, else ``default.pt``; as
    ``load_model(length=length)``). ``rot_rate`` None or 0: the learned rotation rate; "model":
    what ``protgen sample`` uses for this model (the rate stored with its weights, else 5 for
    fixed-length models and the learned rate for insertion models). ``langevin`` κ > 0 and
    ``noise_scale`` η: stochastic translations, as ``protgen sample --langevin --noise-scale``.
    With an insertion model (Process 3) the length emerges: ``length`` is ignored and a list of
    ``num`` arrays (L_i, 4, 3) is returned. ``ss``: a secondary-structure condition (H, E, L; ?
    or - unconstrained), which gives the length (``length`` is then ignored), for a model trained
    with it (the shipped ss model by default), with classifier-free ``guidance`` w (0
    unconditional, 1 conditional, > 1 guided; None: 1, the exact conditional generator, chosen
    on validation strings in the README's *Secondary-structure control*; a weight without ``ss``
    is refused). The arguments are checked as the command line checks its flags
    (``protgen.sampling.config.check_sample_config``): a bad one raises ConfigError."""
    from dataclasses import replace

    from protgen.method.simulation import SimulationConfig
    from protgen.sampling.config import (
        SampleConfig,
        check_sample_config,
        default_rot_rate,
        sample_seed,
    )
    from protgen.sampling.sampler import sample_states, unconditioned_state

    if ss is not None:
        from protgen.sampling.ss_condition import ss_codes

        length = len(ss_codes(ss, "ss"))
    config = SampleConfig(
        lengths=(length,),
        num=num,
        seed=seed,
        simulation=SimulationConfig(
            steps, None if rot_rate == "model" else rot_rate or None, langevin, noise_scale
        ),
        ss=ss,
        guidance=guidance,
    )
    check_sample_config(config)
    if model is None and ss is not None:
        from protgen.training.checkpoint import default_checkpoint

        model = load_model(default_checkpoint("ss"), device)
    elif model is None:  # the shipped fixed-length model for this length
        model = load_model(device=device, length=length)
    trained = model
    if ss is not None and not trained.config.network.ss_condition:
        from protgen.errors import ConfigError

        raise ConfigError("ss= needs a model trained with a secondary-structure condition")
    trained.model.to(device)
    if rot_rate == "model":
        simulation = replace(config.simulation, rot_rate=default_rot_rate(trained))
        config = replace(config, simulation=simulation)
    emerging = trained.process.emerging_length
    seeds = [sample_seed(seed, 0 if emerging else length, i) for i in range(num)]
    template = unconditioned_state(1 if emerging else length, num)
    if ss is not None:
        template = replace(template, ss=ss_codes(ss).expand(num, -1).clone())
    atoms, lengths, _ = sample_states(trained, template, seeds, config, device)
    if emerging:
        return [atoms[k, :n].numpy() for k, n in enumerate(lengths)]
    return atoms.numpy()


def write(path, atoms, fmt: str | None = None):
    """Write one backbone (L, 4, 3) — or a trajectory (T, L, 4, 3) — as PDB or mmCIF (by suffix)."""
    from protgen.data.structure import write_backbone

    return write_backbone(path, atoms, fmt=fmt)


def to_atom_array(atoms):
    """A biotite AtomArray of one backbone (L, 4, 3): chain A, residues 1..L named GLY."""
    import numpy as np

    from protgen.data.structure import backbone_atom_array

    return backbone_atom_array(np.asarray(atoms, dtype=np.float32))


def quality(atoms):
    """The offline quality panel of one backbone (L, 4, 3): bonds, breaks, clashes, DSSP, Rg,
    Ramachandran (``protgen.evaluation.quality.QualityPanel``)."""
    import numpy as np

    from protgen.evaluation.quality import quality_panel

    return quality_panel(np.asarray(atoms))


def evaluate(structures, out, reference=None, **options):
    """Evaluate backbones — a folder, a sample manifest.csv, or a list of (L, 4, 3) arrays — into
    ``out`` (structures.csv, summary.json, report.md, plots) and return the summary
    (``protgen.evaluation.summary.EvalSummary``: ``.samples.count``, ``.samples.mean("helix")``;
    ``to_dict()`` is summary.json). ``options`` are fields of
    ``protgen.evaluation.config.EvalConfig`` (mpnn, fold_model, workers, ...)."""
    from protgen.evaluation.config import EvalConfig
    from protgen.evaluation.evaluate import evaluate as _evaluate

    return _evaluate(structures, out, EvalConfig(reference=reference, **options))
