"""Evaluation: the quality panel, designability (ProteinMPNN, ESMFold), diversity and novelty
(TM-align), the summary, reports and plots.

Owns: quality (with ramachandran_allowed.json), similarity, designability, evaluate, cache (the
reference sets' results), summary, report.
May import: geometry, data, sampling (the manifest and motif files of samples).
"""
