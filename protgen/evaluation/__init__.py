"""Evaluation: the quality panel, designability (ProteinMPNN, ESMFold), diversity and novelty
(TM-align), reports and plots.

Owns: quality (with ramachandran_allowed.json), similarity, designability, evaluate, cache (the
reference sets' results), report. May import: geometry, data.
"""
