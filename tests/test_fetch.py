"""Downloads against an HTTP server on 127.0.0.1 that the tests start: fixture entries, 404s,
500s that recover, slow and truncated responses, resumption, checksums. No other address is used."""

import gzip
import hashlib
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from protgen.data.fetch import FetchConfig, download, fetch_entries, parse_ids
from protgen.errors import DatasetError

CIF = b"data_%s\n#\n_entry.id %s\n#\n"


class _Server(BaseHTTPRequestHandler):
    """Paths /ID.cif.gz. 1AAA, 2BBB: good; 3CCC: 404; 4DDD: 500 twice, then good; 5EEE: stalls
    longer than the client's timeout; 6FFF: declares more bytes than it sends; 7GGG: not mmCIF;
    /pkg.deb: a file for checksum tests. Every request is counted."""

    hits: dict[str, int] = {}

    def log_message(self, *args):  # keep test output clean
        pass

    def _send(self, body: bytes, length: int | None = None):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        name = self.path.strip("/").split(".")[0]
        self.hits[name] = self.hits.get(name, 0) + 1
        if self.path == "/pkg.deb":
            return self._send(b"package bytes" * 1000)
        if name in ("1AAA", "2BBB"):
            return self._send(gzip.compress(CIF % (name.encode(), name.encode())))
        if name == "4DDD":
            if self.hits[name] <= 2:
                return self.send_error(500, "busy")
            return self._send(gzip.compress(CIF % (b"4DDD", b"4DDD")))
        if name == "5EEE":
            time.sleep(4.0)
            return self._send(gzip.compress(CIF % (b"5EEE", b"5EEE")))
        if name == "6FFF":
            return self._send(gzip.compress(CIF % (b"6FFF", b"6FFF"))[:20], length=200)
        if name == "7GGG":
            return self._send(gzip.compress(b"<html>maintenance</html>"))
        self.send_error(404, "Not Found")


@pytest.fixture
def server():
    _Server.hits = {}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


# a 2 s timeout leaves room for a loaded machine (tests run one process per core); 5EEE stalls 4 s
FAST = dict(workers=3, retries=2, backoff=0.01, timeout=2.0)


def test_ids_and_chain_names_parse_and_bad_ones_are_named():
    assert parse_ids(["1abc", "1ABC_A", "2xyz:B", "3QRS"]) == ["1ABC", "2XYZ", "3QRS"]
    with pytest.raises(DatasetError, match="'12345' is not a PDB id"):
        parse_ids(["1ABC", "12345"])


def test_fetch_downloads_retries_and_reports_each_failure(server, tmp_path):
    ids = ["1AAA", "2BBB", "3CCC", "4DDD", "5EEE", "6FFF", "7GGG"]
    result = fetch_entries(ids, tmp_path / "out", FetchConfig(server + "/{ID}.cif.gz", **FAST))
    assert sorted(result.downloaded) == ["1AAA", "2BBB", "4DDD"] and result.skipped == []
    failed = dict(result.failed)
    assert set(failed) == {"3CCC", "5EEE", "6FFF", "7GGG"}
    assert "404" in failed["3CCC"] and _Server.hits["3CCC"] == 1, "a 404 is final: no retry"
    assert "network error" in failed["5EEE"] and _Server.hits["5EEE"] == 3, (
        "a timeout is retried, then reported"
    )
    assert "truncated" in failed["6FFF"] and _Server.hits["6FFF"] == 3
    assert "not an mmCIF file" in failed["7GGG"] and _Server.hits["7GGG"] == 1
    assert _Server.hits["4DDD"] == 3, "two 500s, then success"
    assert gzip.decompress((tmp_path / "out" / "4DDD.cif.gz").read_bytes()).startswith(b"data_4DDD")
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["1AAA.cif.gz", "2BBB.cif.gz", "4DDD.cif.gz", "fetch_failures.csv"], (
        "failed downloads leave no file"
    )
    assert "3CCC,HTTP 404" in (tmp_path / "out" / "fetch_failures.csv").read_text()


def test_a_rerun_skips_complete_files_and_replaces_damaged_ones(server, tmp_path):
    out = tmp_path / "out"
    fetch_entries(["1AAA", "2BBB"], out, FetchConfig(server, **FAST))
    # a damaged file from elsewhere
    (out / "2BBB.cif.gz").write_bytes((out / "2BBB.cif.gz").read_bytes()[:15])
    before = dict(_Server.hits)
    result = fetch_entries(["1AAA", "2BBB"], out, FetchConfig(server, **FAST))
    assert result.skipped == ["1AAA"] and result.downloaded == ["2BBB"]
    assert _Server.hits["1AAA"] == before["1AAA"] and _Server.hits["2BBB"] == before["2BBB"] + 1
    assert not (out / "fetch_failures.csv").exists()


def test_download_verifies_the_checksum_and_keeps_a_verified_file(server, tmp_path):
    good = hashlib.sha256(b"package bytes" * 1000).hexdigest()
    path = download(server + "/pkg.deb", tmp_path / "pkg.deb", good, FetchConfig(**FAST))
    assert path.read_bytes() == b"package bytes" * 1000
    download(server + "/pkg.deb", tmp_path / "pkg.deb", good, FetchConfig(**FAST))
    assert _Server.hits["pkg"] == 1, "a file with the right checksum is not downloaded again"
    with pytest.raises(DatasetError, match="sha256 .* differs"):
        download(server + "/pkg.deb", tmp_path / "other.deb", "0" * 64, FetchConfig(**FAST))
    assert not (tmp_path / "other.deb").exists()


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "protgen", "data", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )


def test_cli_fetch_and_promod3_report_in_one_line(server, tmp_path):
    (tmp_path / "ids.txt").write_text("# ProMod3 chains\n1AAA_A\n2BBB_C 3CCC_A\n")
    out = _cli(
        "fetch",
        "--ids",
        str(tmp_path / "ids.txt"),
        "--out",
        str(tmp_path / "cif"),
        "--url",
        server + "/{ID}.cif.gz",
        "--retries",
        "0",
    )
    assert out.returncode == 0, out.stderr
    assert (
        "2 downloaded, 0 already present, 1 failed" in out.stdout and "3CCC: HTTP 404" in out.stdout
    )
    out = _cli("fetch", "3CCC", "--out", str(tmp_path / "none"), "--url", server, "--retries", "0")
    assert out.returncode == 1 and out.stderr.strip().splitlines()[-1].startswith(
        "protgen: error: no entry could be downloaded"
    )
    out = _cli("fetch", "--out", str(tmp_path / "none"))
    assert out.returncode == 1 and "no ids" in out.stderr
    out = _cli(
        "promod3",
        "--out",
        str(tmp_path / "set"),
        "--download-dir",
        str(tmp_path),
        "--url",
        server + "/pkg.deb",
    )
    assert (
        out.returncode == 1 and "sha256" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    )
