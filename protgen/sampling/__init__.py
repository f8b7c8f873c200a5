"""Sampling: simulate a trained model's generator from its prior and write backbone files and
their manifest; the sampler's self-conditioning; motif scaffolding's contigs and conditioned
states; secondary-structure conditions and classifier-free guidance; clash guidance; which
shipped model samples which length.

Owns: config (SampleConfig and its validation, lengths, seeds), sampler (simulating a batch),
directory (a run into a folder), jobs, writer, pool, manifest, self_conditioning, motif,
ss_condition, guidance, routes (models by length).
May import: geometry, data (file writing), method, network, training (checkpoints).
"""
