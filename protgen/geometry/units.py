"""The one unit conversion inside protgen.

Every array that crosses a module boundary is in Å. Two places work in nanometres, for the same
reason (values of order one for networks and losses): the network's frame updates and the loss's
translational terms. Both convert with this constant.
"""

__all__ = ["ANGSTROM_PER_NM"]

ANGSTROM_PER_NM = 10.0
