"""Geometry: SO(3) and SE(3) in torch, backbone atoms ↔ residue frames (Φ's atom placement), the
world state record, superposition, secondary structure (DSSP), clashes, compactness and the one
unit conversion. Every later stage builds on it.

Owns: so3, rigid, backbone, world, superposition, secondary, contacts, compactness, units.
May import: none.
"""
