"""The method (LPGM): latent processes (prior, conditional path, Φ, targets), generator
parameters, the conditional generator matching loss, and the simulation of a generator. Knows
nothing of networks, data files or training.

Owns: paths (the shared path geometry), process (the LatentProcess protocol, Processes 1 and 2),
insertion (Process 3), registry (processes by name), generator, loss, simulation.
May import: geometry.
"""
