"""Opening a training run's directory (rank 0): config.json, the logs cut back to the step the run
starts from, and the run's one-line header."""

import json
from dataclasses import asdict
from pathlib import Path

from protgen.data.dataset import TrainingSet
from protgen.files import atomic_path
from protgen.training.logs import truncate_csv

__all__ = ["open_run_directory"]


def open_run_directory(
    out: Path,
    data,
    dataset: TrainingSet,
    model_config,
    config,
    module,
    world,
    device,
    step,
    init_from,
) -> None:
    """config.json, logs cut back to the resumed step, and the run's one-line header."""
    out.mkdir(parents=True, exist_ok=True)
    count = module.network.parameter_count()
    info = {
        "model": model_config.to_dict(),
        "train": asdict(config),
        "data": str(data),
        "data_fingerprint": dataset.meta.fingerprint,
        "parameters": count,
        "world_size": world,
        "init_from": None if init_from is None else str(init_from),
    }
    with atomic_path(out / "config.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    truncate_csv(out / "metrics.csv", step)
    truncate_csv(out / "validation.csv", step)
    print(
        f"protgen train: {count:,} parameters, process {model_config.process.name!r}, device "
        f"{device}, {world} process(es), {len(dataset.indices('train'))} training segments",
        flush=True,
    )
