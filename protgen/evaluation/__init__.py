"""Evaluation: the quality panel, designability (ProteinMPNN, ESMFold), diversity and novelty
(TM-align), the summary, reports and plots.

Owns: config (EvalConfig and its check), backbones (what is evaluated: files, manifests, reference
chains), quality (with ramachandran_allowed.json), results (one structure's), similarity,
designability (ProteinMPNN, ESMFold), designs (their files and figures per backbone), diversity
(and novelty), conditioning (motif and secondary-structure figures), cache (an evaluation's, the
reference sets' results), summary, report, evaluate.
May import: geometry, data, sampling (the manifest and motif files of samples).
"""
