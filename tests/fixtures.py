"""Small training sets made from ideal backbones, shared by the training and sampling tests."""

import numpy as np
from chains import HELIX, STRAND, ideal_chain

from protgen.data.dataset import BuildConfig, build
from protgen.data.segment import SegmentConfig
from protgen.data.structure import write_backbone

HAIRPIN = [HELIX] * 18 + [(-60.0, 130.0), (80.0, 10.0), (-90.0, 0.0)] + [HELIX] * 19


def training_set(tmp_path, n_chains=6, val_fraction=0.3):
    """A built training set of n_chains ideal 40–60-residue backbones (helix, strand, hairpin)."""
    folder = tmp_path / "pdb"
    folder.mkdir(exist_ok=True)
    shapes = [
        HAIRPIN,
        [HELIX] * 50,
        [STRAND] * 45,
        [HELIX] * 25 + [(-70.0, 150.0)] * 5 + [STRAND] * 20,
    ]
    for k in range(n_chains):
        atoms = ideal_chain(shapes[k % len(shapes)]).astype(np.float32)
        write_backbone(folder / f"c{k}.pdb", atoms)
        text = (folder / f"c{k}.pdb").read_text()
        # distinct sequences so that every chain is its own cluster
        aa = ["ALA", "LEU", "GLU", "LYS", "SER", "VAL", "ILE", "ASP", "ARG", "THR"]
        rng = np.random.default_rng(k)
        lines = [
            l[:17] + aa[rng.integers(len(aa))] + l[20:]
            if l.startswith("ATOM") and l[12:16] == " N  "
            else l
            for l in text.splitlines()
        ]
        names = {}
        out = []
        for l in lines:
            if l.startswith("ATOM"):
                key = l[22:26]
                if l[12:16] == " N  ":
                    names[key] = l[17:20]
                l = l[:17] + names[key] + l[20:]
            out.append(l)
        (folder / f"c{k}.pdb").write_text("\n".join(out) + "\n")
    config = BuildConfig(
        SegmentConfig(max_rg_ratio=10.0), cluster_method="greedy", val_fraction=val_fraction
    )
    return build([folder], tmp_path / "set", config)
