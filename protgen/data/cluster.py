"""Sequence clustering at a fixed identity: MMseqs2 when installed, a built-in greedy fallback.

Both return one representative index per sequence; clusters are the groups sharing one. The
fallback is CD-HIT-like: sequences by decreasing length join the first representative with
identity ≥ threshold over ≥ coverage of the shorter sequence (global alignment, BLOSUM62),
comparing only representatives that share a 3-mer with the query.
"""

import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from protgen.errors import DatasetError
from protgen.progress import Progress

__all__ = ["cluster_sequences", "mmseqs_available", "GREEDY_LIMIT"]

# sequences; above this "auto" without MMseqs2 asks for it (the greedy pass grows ~quadratically)
GREEDY_LIMIT = 5000


def mmseqs_available() -> bool:
    return shutil.which("mmseqs") is not None


def cluster_sequences(
    sequences: list[str],
    identity: float = 0.3,
    coverage: float = 0.8,
    method: str = "auto",
    threads: int = 1,
) -> np.ndarray:
    """Cluster label (index of the representative) of each sequence. → (n,) int."""
    if method == "auto":
        if not mmseqs_available() and len(sequences) > GREEDY_LIMIT:
            raise DatasetError(
                f"clustering {len(sequences):,} sequences needs MMseqs2 (`apt-get install "
                "mmseqs2`, or conda's mmseqs2); the built-in greedy clustering is meant for up to "
                f"{GREEDY_LIMIT:,} (pass --cluster-method greedy to wait for it anyway)"
            )
        method = "mmseqs" if mmseqs_available() else "greedy"
    if method == "mmseqs":
        if not mmseqs_available():
            raise DatasetError(
                "--cluster-method mmseqs: the mmseqs program is not on the PATH (`apt-get install "
                "mmseqs2`)"
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
            "mmseqs",
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
            raise DatasetError(f"cannot run MMseqs2 ({error.strerror or error})") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise DatasetError(
                f"MMseqs2 failed clustering {len(sequences):,} sequences "
                f"({tail[0] if tail else f'exit status {done.returncode}'}); "
                "pass --cluster-method greedy to use the built-in clustering"
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
