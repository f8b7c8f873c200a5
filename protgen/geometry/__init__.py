"""Geometry: SO(3) and SE(3) in torch, backbone atoms ↔ residue frames (Φ's atom placement), the
world state record, secondary structure (DSSP), clashes and the one unit conversion.

Owns: so3, rigid, backbone, world, secondary, contacts, units. May import: nothing of protgen but
errors/files/progress. Every later stage builds on it.
"""
