"""Data: structure files and databases → clean segments → clustered training sets → batches.

Owns: structure (the only module that touches file formats), promod3 (ProMod3's structure
database), fetch (downloads from the RCSB), segment, cluster, dataset, loader, random_motifs
(the motifs of conditional training), ss_masks (the secondary-structure conditions of training).
May import: geometry.
"""
