"""``protgen sample``: write backbone files from the shipped model or a checkpoint."""

from dataclasses import replace
from pathlib import Path

from protgen.cli.threads import add_threads_flag, set_threads
from protgen.errors import ConfigError
from protgen.method.simulation import SimulationConfig
from protgen.sampling.config import (
    DEFAULT_GUIDANCE,
    MAX_LENGTH,
    SampleConfig,
    check_sample_config,
    default_rot_rate,
    parse_lengths,
)
from protgen.sampling.directory import sample_to_directory
from protgen.sampling.routes import Route, shipped_routes
from protgen.sampling.ss_condition import ss_codes, ss_from_file
from protgen.training.checkpoint import default_checkpoint, load_model
from protgen.training.distributed import resolve_device

__all__ = ["register"]


def register(sub) -> None:
    d, s = SampleConfig(), SimulationConfig()
    p = sub.add_parser(
        "sample",
        help="sample backbones into PDB/mmCIF files",
        description="Sample protein backbones (N, CA, C, O; residues named GLY) with the models "
        "shipped in the package (at a fixed length: short.pt for the 40-128 residues its weights "
        "serve, default.pt otherwise), or --checkpoint. Writes lenLLLL_IIII.pdb files and "
        "manifest.csv, which names each sample's model.",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--length", type=int, help="residues per backbone (default 100)")
    group.add_argument(
        "--lengths",
        help="several lengths: a list 60,80,120 or start:stop:step with stop included (60:200:20); "
        "a length listed k times gets k times --num samples",
    )
    p.add_argument(
        "--num", type=int, default=d.num, help="samples per length (default %(default)s)"
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument(
        "--checkpoint",
        help="a checkpoint, run directory or weights file (default: the shipped model for what is "
        "asked; at a fixed length, short.pt for 40-128 residues and default.pt otherwise)",
    )
    p.add_argument("--steps", type=int, default=s.steps, help="Euler steps (default %(default)s)")
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        help="seed; the same seed gives the same files on CPU (default %(default)s)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=d.batch_size,
        help="samples of one length simulated together (default %(default)s)",
    )
    p.add_argument(
        "--rot-rate",
        type=float,
        help="rotation-rate schedule: ω = c·log(R_tᵀR̂_1) with this c (FrameFlow uses 10); 0 = "
        "the learned ω exactly (default: the rate stored with the model's weights, 5 for "
        f"short.pt; else {s.rot_rate:g} for fixed-length and motif models, 0 for insertion models)",
    )
    p.add_argument(
        "--sparse",
        action="store_true",
        help="use the shipped sparse model (pair features and attention over each residue's 48 "
        "nearest residues; for long chains: ~2× faster at 300 residues, ~5× at 1,000, "
        "README's Benchmarks) instead of the dense one; fixed length, without --checkpoint",
    )
    p.add_argument(
        "--no-self-condition",
        action="store_true",
        help="do not feed the previous x̂_1 back to the network",
    )
    p.add_argument(
        "--clash-guidance",
        type=float,
        default=0.0,
        metavar="ETA",
        help="from t = 0.6 on, nudge x̂_1 away from overlapping CA atoms and off-3.8 Å CA–CA "
        "bonds with this step (Å²; e.g. 0.1); changes the sampled law, off by default",
    )
    p.add_argument(
        "--langevin",
        type=float,
        default=s.langevin,
        metavar="KAPPA",
        help="stochastic translations: Langevin strength κ of the SDE with the ODE's marginals "
        "(g² = 2κ(1−t)²σ², score from x̂_1); 0 = the ODE (default %(default)s); fixed-length "
        "models",
    )
    p.add_argument(
        "--noise-scale",
        type=float,
        default=None,
        metavar="ETA",
        help="with --langevin: scale of the injected noise; 1 keeps the marginals, < 1 lowers "
        f"the temperature (fewer, sharper modes) (default {s.noise_scale:g})",
    )
    p.add_argument(
        "--trajectory",
        action="store_true",
        help="also write each sample's path as a multi-model file",
    )
    p.add_argument(
        "--format",
        choices=("pdb", "cif"),
        default=d.fmt,
        help="output format (default %(default)s)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="CPU processes sampling different batches, dividing the threads among them: keeps "
        "the cores busy on runs of many small batches (--lengths, --num); each holds its own "
        "copy of the model (default 1)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the outputs of an earlier run in --out: its files are moved into "
        "--out/replaced-YYYYMMDD-HHMMSS/, so the folder holds this run only",
    )
    m = p.add_argument_group(
        "motif scaffolding",
        "generate scaffolds around fixed residues of a structure file (RFdiffusion's contig "
        "syntax); files are MOTIFSTEM_IIII.pdb, motif residues with B-factor 1.0",
    )
    m.add_argument("--motif", metavar="FILE", help="PDB/mmCIF file holding the motif residues")
    m.add_argument(
        "--contig",
        help='the output chain, e.g. "5-20,A16-35,10-25,A52-71,5-20" (scaffold lengths or ranges; '
        "motif residues as chain+author numbers, a range holding every residue between its ends "
        "in the file's order, insertion codes included, and an end may carry one: H82A; /0 "
        "starts a new chain)",
    )
    m.add_argument(
        "--total-length",
        metavar="A-B",
        help="bounds of the whole scaffold's length with --motif, e.g. 60-80",
    )
    c = p.add_argument_group(
        "secondary structure",
        "generate backbones with a given helix/strand/loop string (the shipped ss model is used "
        "when --checkpoint is not given); the manifest records the condition",
    )
    condition = c.add_mutually_exclusive_group()
    condition.add_argument(
        "--ss",
        metavar="STRING",
        help="one character per residue: H helix, E strand, L loop, ? or - unconstrained, e.g. "
        "LLHHHHHHHHHLLLEEEEELLEEEEELL; the length is the string's",
    )
    condition.add_argument(
        "--ss-from",
        metavar="FILE[:CHAIN]",
        help="take the condition from a real chain's DSSP (its first protein chain unless CHAIN "
        "is named): new backbones in that protein's topology",
    )
    c.add_argument(
        "--guidance",
        type=float,
        default=None,
        metavar="W",
        help="classifier-free guidance weight: 0 unconditional, 1 conditional, > 1 guided "
        f"(default {DEFAULT_GUIDANCE:g})",
    )
    v = p.add_argument_group(
        "variable length",
        "an insertion model (Process 3) grows each chain from one residue: the length emerges",
    )
    v.add_argument(
        "--process",
        choices=("frames", "insertion"),
        help="which shipped model to use when --checkpoint is not given "
        "(default frames; insertion: lengths emerge)",
    )
    v.add_argument(
        "--min-length",
        type=int,
        default=1,
        help="insertion models: draw again samples shorter than this",
    )
    v.add_argument(
        "--max-length",
        type=int,
        default=MAX_LENGTH,
        help="insertion models: draw again samples longer than this",
    )
    add_threads_flag(p)
    p.set_defaults(run=_run)


def _run(args) -> None:
    lengths = (
        parse_lengths(args.lengths)
        if args.lengths
        else parse_lengths(str(100 if args.length is None else args.length))
    )
    if args.workers < 1:
        raise ConfigError(
            f"--workers {args.workers}: --num, --steps, --batch-size and --workers must be positive"
        )
    if args.noise_scale is not None and args.langevin == 0:
        raise ConfigError(
            "--noise-scale scales the noise of --langevin κ > 0; without --langevin sampling is "
            "the deterministic ODE and the flag would do nothing"
        )
    ss, ss_source = args.ss, None
    if args.ss_from is not None:
        ss, ss_source = ss_from_file(args.ss_from), args.ss_from
    if ss is not None:
        if args.length is not None or args.lengths:
            raise ConfigError(
                "--ss/--ss-from give the length (one residue per character); drop "
                "--length/--lengths"
            )
        lengths = (len(ss_codes(ss, "--ss")),)
    if args.motif is not None and (args.length is not None or args.lengths):
        raise ConfigError(
            "with --motif the lengths come from --contig (and --total-length), not "
            "--length/--lengths"
        )
    if args.sparse and (
        args.checkpoint is not None
        or args.motif is not None
        or args.process == "insertion"
        or ss is not None
    ):
        raise ConfigError(
            "--sparse picks the shipped sparse fixed-length model; a --checkpoint's own network "
            "decides (see protgen train --neighbours)"
            if args.checkpoint is not None
            else "--sparse is an unconditional fixed-length model: not for --motif, --ss or "
            "--process insertion"
        )
    rot_rate = args.rot_rate or None
    config = SampleConfig(
        lengths,
        args.num,
        args.seed,
        args.batch_size,
        args.format,
        args.trajectory,
        not args.no_self_condition,
        SimulationConfig(
            args.steps,
            rot_rate,
            args.langevin,
            1.0 if args.noise_scale is None else args.noise_scale,
        ),
        args.motif,
        args.contig,
        args.total_length,
        args.min_length,
        args.max_length,
        clash_guidance=args.clash_guidance,
        ss=ss,
        ss_source=ss_source,
        guidance=args.guidance,
    )
    check_sample_config(config)
    set_threads(args.threads)
    device = str(resolve_device(args.device))
    if args.workers > 1 and device != "cpu":
        raise ConfigError(
            f"--workers {args.workers} runs CPU processes; on --device {device} use --batch-size "
            "instead"
        )
    kind = (
        "sparse"
        if args.sparse
        else "motif"
        if args.motif
        else "ss"
        if ss is not None
        else ("insertion" if args.process == "insertion" else "default")
    )
    if args.checkpoint is not None:
        routes = [Route(Path(args.checkpoint), args.checkpoint, None)]
    elif kind == "default":  # the shipped fixed-length models, by length
        routes = shipped_routes(config.lengths)
    else:
        routes = [Route(default_checkpoint(kind), kind, None)]
    routes = [replace(r, trained=load_model(r.checkpoint, device)) for r in routes]
    trained = routes[0].trained
    emerging = trained.process.emerging_length
    # --process names the kind of shipped model: "insertion" is the one whose length emerges
    if (
        args.process is not None
        and args.checkpoint is not None
        and ((args.process == "insertion") != emerging)
    ):
        raise ConfigError(
            f"--process {args.process} does not match {args.checkpoint}, a "
            f"{trained.config.process.name!r} model"
            + (" (its length emerges)" if emerging else " (of fixed length)")
        )
    if emerging and (args.length is not None or args.lengths):
        raise ConfigError(
            "an insertion model lets the length emerge; bound it with --min-length/--max-length "
            "instead of --length"
        )
    if not emerging and (args.min_length != 1 or args.max_length != MAX_LENGTH):
        raise ConfigError(
            "--min-length/--max-length bound the emerging length of an insertion model; this "
            "model takes --length/--lengths"
        )
    # each model samples with its own rotation rate unless --rot-rate names one
    routes = [
        replace(
            r,
            simulation=replace(
                config.simulation,
                rot_rate=rot_rate if args.rot_rate is not None else default_rot_rate(r.trained),
            ),
        )
        for r in routes
    ]
    rows = sample_to_directory(routes, args.out, config, device, args.force, workers=args.workers)
    print(f"wrote {len(rows)} backbones and manifest.csv to {args.out}")
