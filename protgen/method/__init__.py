"""The method (LPGM): latent processes (prior, conditional paths, Φ, targets), generator
parameters, the conditional generator matching loss, and the simulation of a generator.

Owns: process, generator, loss, simulation. May import: geometry. Knows nothing of networks,
data files or training.
"""
