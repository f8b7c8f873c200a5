"""Sampling: simulate a trained model's generator from its prior and write backbone files.

Owns: sample. May import: geometry, data (file writing), method, network, training (checkpoints).
"""
