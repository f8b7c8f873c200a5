"""Training: configs stored in checkpoints, the training loop (DDP, EMA, resume), validation
diagnostics, logs and checkpoints.

Owns: config, loop, checkpoint, validation, ema, distributed, logs. May import: geometry, data,
method, network.
"""
