"""Training: configs stored in checkpoints, what a new or resumed run is, the training loop
(DDP, EMA, resume), validation diagnostics, logs, checkpoints and the shipped weights' lookup.

Owns: config, resolve, initialisation (--init-from weights), loop, run_directory, checkpoint,
validation, ema, distributed, logs.
May import: geometry, data, method, network.
"""
