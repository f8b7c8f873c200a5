"""Downloads: mmCIF files from the RCSB (or a mirror) by PDB id, and ProMod3's structure database.

Every download streams to a temporary file and is renamed into place only after its checks pass
(size, gzip integrity, an mmCIF ``data_`` block, or a sha256), so an interrupted or failed
download never leaves a file that a later run would trust; a re-run skips what is complete.
Transient failures (HTTP 5xx, 429, timeouts, dropped connections, truncated bodies) are retried
with exponential back-off; a 404 is final.
"""

import csv
import errno
import gzip
import hashlib
import http.client
import re
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from protgen import __version__
from protgen.errors import DatasetError, ProtgenError
from protgen.files import atomic_path
from protgen.progress import Progress

__all__ = [
    "FetchConfig",
    "FetchResult",
    "parse_ids",
    "fetch_entries",
    "download",
    "is_downloaded",
    "PROMOD3_URL",
    "PROMOD3_SHA256",
    "DEFAULT_URL",
]

DEFAULT_URL = "https://files.rcsb.org/download/{ID}.cif.gz"
PROMOD3_URL = "https://deb.debian.org/debian/pool/main/p/promod3/promod3-data_3.2.1+ds-6_all.deb"
PROMOD3_SHA256 = "7d1011a2686ea92e263f3daf9940f787351ff94f19eb47646c624754d80b8f56"
_ID = re.compile(r"^([0-9][A-Za-z0-9]{3})(?:[_:.]([A-Za-z0-9]{1,4}))?$")


@dataclass(frozen=True)
class FetchConfig:
    """How ``protgen data fetch`` downloads."""

    # URL template: {ID} upper-case id, {id} lower-case; or a base URL (+ "/{ID}.cif.gz")
    url: str = DEFAULT_URL
    workers: int = 4  # parallel downloads
    retries: int = 4  # further attempts after a transient failure
    backoff: float = 1.0  # s; the wait before retry k is backoff · 2^k
    timeout: float = 30.0  # s without data before an attempt fails
    max_bytes: int = 200 * 2**20  # larger responses are refused


@dataclass(frozen=True)
class FetchResult:
    """downloaded, skipped (already complete) and failed (id, reason) entries."""

    downloaded: list[str]
    skipped: list[str]
    failed: list[tuple[str, str]]


class _Transient(Exception):
    """A failure worth retrying."""


class _Final(Exception):
    """A failure that retrying will not fix."""


def parse_ids(items: list[str]) -> list[str]:
    """PDB ids (upper case, first occurrence order) from ids or ``PDBID_CHAIN`` names, e.g. 1ABC,
    1abc_A, 2XYZ:B. Raises DatasetError naming the first malformed one."""
    ids = []
    for item in items:
        match = _ID.match(item.strip())
        if not match:
            raise DatasetError(
                f"{item!r} is not a PDB id (4 characters, e.g. 1ABC) or PDBID_CHAIN (e.g. 1ABC_A)"
            )
        ids.append(match.group(1).upper())
    return list(dict.fromkeys(ids))


def read_id_file(path: str | Path) -> list[str]:
    """Ids from a text file: one per line (or whitespace/comma separated), '#' starts a comment."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read the id list ({error.strerror or error})") from None
    return [
        token
        for line in text.splitlines()
        for token in re.split(r"[\s,]+", line.split("#")[0])
        if token
    ]


def _url(template: str, pdb_id: str) -> str:
    if "{id}" not in template and "{ID}" not in template:
        template = template.rstrip("/") + "/{ID}.cif.gz"
    return template.replace("{ID}", pdb_id.upper()).replace("{id}", pdb_id.lower())


def _get(url: str, dest: Path, config: FetchConfig, check) -> None:
    """One attempt: stream url into dest, then check(dest). Raises _Transient or _Final."""
    request = urllib.request.Request(url, headers={"User-Agent": f"protgen/{__version__}"})
    try:
        out = open(dest, "wb")
    except OSError as error:
        raise ProtgenError(f"cannot write {dest.parent}: {error.strerror or error}") from None
    try:
        with out, urllib.request.urlopen(request, timeout=config.timeout) as response:
            expected = response.headers.get("Content-Length")
            if expected is not None and int(expected) > config.max_bytes:
                raise _Final(
                    f"response of {int(expected)} bytes exceeds the {config.max_bytes}-byte limit"
                )
            size = 0
            while chunk := response.read(1 << 20):
                size += len(chunk)
                if size > config.max_bytes:
                    raise _Final(f"response exceeds the {config.max_bytes}-byte limit")
                _write(out, chunk, dest)
            if expected is not None and size != int(expected):
                raise _Transient(f"truncated response ({size} of {expected} bytes)")
    except urllib.error.HTTPError as error:
        if error.code in (408, 429) or error.code >= 500:
            raise _Transient(f"HTTP {error.code} {error.reason}") from None
        raise _Final(
            f"HTTP {error.code} {error.reason}" + (" (no such entry)" if error.code == 404 else "")
        ) from None
    except urllib.error.URLError as error:
        raise _Transient(f"network error ({error.reason})") from None
    except http.client.IncompleteRead as error:
        raise _Transient(
            f"truncated response ({len(error.partial)} bytes before the connection closed)"
        ) from None
    # reading the response: SSL, resets, timeouts
    except (OSError, http.client.HTTPException) as error:
        raise _Transient(f"network error ({type(error).__name__}: {error})") from None
    check(dest)


def _write(out, chunk: bytes, dest: Path) -> None:
    """Write to the download's file; a full disk (or any write error) stops the whole fetch."""
    try:
        out.write(chunk)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise ProtgenError(
                f"the disk is full while writing {dest.parent} (files already complete are kept)"
            ) from None
        raise ProtgenError(f"cannot write {dest.parent}: {error.strerror or error}") from None


def _with_retries(url: str, dest: Path, config: FetchConfig, check) -> None:
    """Download url to dest atomically, retrying transient failures; raises _Final or _Transient."""
    for attempt in range(config.retries + 1):
        try:
            with atomic_path(dest) as tmp:
                _get(url, tmp, config, check)
            return
        except _Transient:
            if attempt == config.retries:
                raise
            time.sleep(config.backoff * 2**attempt)


def _check_mmcif(path: Path) -> None:
    """A complete mmCIF file (gzipped or not): non-empty, intact gzip stream, a data_ block."""
    data = path.read_bytes()
    if not data:
        raise _Transient("empty response")
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error):
            raise _Transient("truncated or corrupt gzip data") from None
    head = data[:4096].lstrip()
    if not head.startswith(b"data_"):
        raise _Final("not an mmCIF file (no data_ block at the start)")


def _local_name(pdb_id: str) -> str:
    return f"{pdb_id.upper()}.cif.gz"


def _complete(path: Path) -> bool:
    if not path.is_file():
        return False
    try:
        _check_mmcif(path)
        return True
    except (_Transient, _Final):
        return False


def _fetch_one(pdb_id: str, out: Path, config: FetchConfig) -> tuple[str, str, str | None]:
    """(id, 'downloaded' | 'skipped' | 'failed', reason)."""
    dest = out / _local_name(pdb_id)
    if _complete(dest):
        return pdb_id, "skipped", None
    try:
        _with_retries(_url(config.url, pdb_id), dest, config, _check_mmcif)
    except (_Transient, _Final) as error:
        return pdb_id, "failed", str(error)
    if dest.read_bytes()[:2] != b"\x1f\x8b":  # keep every entry as .cif.gz whatever the mirror sent
        with atomic_path(dest) as tmp:
            tmp.write_bytes(gzip.compress(dest.read_bytes()))
    return pdb_id, "downloaded", None


def fetch_entries(
    ids: list[str], out: str | Path, config: FetchConfig = FetchConfig()
) -> FetchResult:
    """Download the mmCIF files of PDB entries into ``out`` as ``ID.cif.gz``; already complete
    files are skipped. Failures are collected (and written to ``out/fetch_failures.csv``), never
    raised, except a full disk."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(len(ids), "fetching", unit="entries")
    result = FetchResult([], [], [])
    with ThreadPoolExecutor(max(1, config.workers)) as pool:
        for pdb_id, status, reason in pool.map(lambda i: _fetch_one(i, out, config), ids):
            if status == "failed":
                result.failed.append((pdb_id, reason))
            else:
                (result.downloaded if status == "downloaded" else result.skipped).append(pdb_id)
            progress.update(
                1,
                extra=f"{len(result.downloaded)} new, {len(result.skipped)} present, "
                f"{len(result.failed)} failed",
            )
    progress.close()
    failures = out / "fetch_failures.csv"
    if result.failed:
        with atomic_path(failures) as tmp, open(tmp, "w", newline="") as handle:
            csv.writer(handle).writerows([("id", "reason"), *result.failed])
    elif failures.exists():
        failures.unlink()
    return result


def download(
    url: str, dest: str | Path, sha256: str | None = None, config: FetchConfig = FetchConfig()
) -> Path:
    """One file (e.g. the promod3-data package) to ``dest``, verified by sha256; an existing file
    with the right checksum is kept. Raises DatasetError with the reason on failure."""
    dest = Path(dest)

    def check(path: Path) -> None:
        if sha256 is not None and _sha256(path) != sha256:
            raise _Final(f"sha256 {_sha256(path)} differs from the expected {sha256}")

    if sha256 is not None and is_downloaded(dest, sha256):
        return dest
    try:
        _with_retries(url, dest, config, check)
    except (_Transient, _Final) as error:
        raise DatasetError(f"cannot download {url}: {error}") from None
    return dest


def is_downloaded(dest: str | Path, sha256: str) -> bool:
    """Whether ``dest`` holds the file with this sha256 already (download would keep it)."""
    dest = Path(dest)
    return dest.is_file() and _sha256(dest) == sha256


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()
