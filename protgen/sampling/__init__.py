"""Sampling: simulate a trained model's generator from its prior and write backbone files and
their manifest; motif scaffolding's contigs and conditioned states; clash guidance.

Owns: sample, manifest, motif, guidance.
May import: geometry, data (file writing), method, network, training (checkpoints).
"""
