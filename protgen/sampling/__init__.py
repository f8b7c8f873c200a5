"""Sampling: simulate a trained model's generator from its prior and write backbone files and
their manifest; the sampler's self-conditioning; motif scaffolding's contigs and conditioned
states; secondary-structure conditions and classifier-free guidance; clash guidance.

Owns: sample, manifest, self_conditioning, motif, ss_condition, guidance.
May import: geometry, data (file writing), method, network, training (checkpoints).
"""
