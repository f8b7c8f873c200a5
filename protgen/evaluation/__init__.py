"""Evaluation: the quality panel, designability (ProteinMPNN, ESMFold), diversity and novelty
(TM-align), reports and plots.

Owns: quality, similarity, designability, evaluate, report. May import: geometry, data.
"""
