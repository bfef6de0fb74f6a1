"""Soak (slow): `mobile-mlops telemetry serve` in its own process on loopback takes SOAK_RECORDS (default 200,000)
records in batches from 16 clients while slow clients stall mid-body and malformed clients post garbage. Every
request is answered, every accepted record is in the store, and the server's memory stays flat.

Figures (RSS at start/middle/end, seconds, batches a second) are printed and written to $SOAK_REPORT if set."""
from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.fleet.ingest import signature
from tests.fleet.test_ingest import KEY, record

RECORDS = int(os.environ.get("SOAK_RECORDS", "200000"))  # 1,000,000: SOAK_RECORDS=1000000 (9 min here)
PER_BATCH = 1000  # ~600 kB a body, under fleet.max_body_bytes
CLIENTS, SLOW, MALFORMED = 16, 4, 2
ROOT = Path(__file__).resolve().parents[2]


def rss_kib(pid: int) -> int:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def template(day: str) -> tuple[bytes, bytes]:
    """A batch body around its id: prefix + id + suffix (building 1,000 bodies costs no client CPU)."""
    rows = [record(i, day=day) for i in range(PER_BATCH)]
    rows[7] = record(7, day=day, crashes=99)  # one impossible record a batch: quarantined, not accepted
    text = json.dumps({"schema": "mobile-mlops/fleet-telemetry/v1", "batch_id": "@ID@", "records": rows})
    prefix, suffix = text.encode().split(b"@ID@")
    return prefix, suffix


class Tally:
    def __init__(self) -> None:
        self.lock, self.statuses, self.accepted, self.quarantined, self.errors = threading.Lock(), {}, 0, 0, []

    def add(self, status: int, answer: dict | None = None) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 202 and answer:
                self.accepted += answer["accepted"]
                self.quarantined += answer["quarantined"]


def good_client(port: int, ids: list[int], prefix: bytes, suffix: bytes, tally: Tally) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for n in ids:
            data = prefix + f"soak-{n:07d}".encode() + suffix
            conn.request("POST", "/v1/telemetry", data, {"X-Signature": signature(KEY, data),
                                                        "Content-Type": "application/json"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            tally.add(response.status, answer)
            if response.status != 202:
                tally.errors.append((n, response.status, answer))
    except Exception as exc:  # any failure to be answered is the finding
        tally.errors.append(("good", repr(exc)))
    finally:
        conn.close()


def slow_client(port: int, stop: threading.Event, tally: Tally) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(b"POST /v1/telemetry HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n" + b"{" * 10)
                reply = b""
                while chunk := sock.recv(65536):
                    reply += chunk
            tally.add(int(reply.split()[1]) if reply else -1)
        except Exception as exc:
            tally.errors.append(("slow", repr(exc)))


def malformed_client(port: int, stop: threading.Event, tally: Tally, seed: int) -> None:
    rng = random.Random(seed)
    bodies = [b"[" * 100_000, b"not json", json.dumps({"records": [{"sessions": 10**30}]}).encode(),
              b'{"schema": 1}', bytes(rng.randrange(256) for _ in range(2000))]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while not stop.is_set():
        data = rng.choice(bodies)
        try:
            conn.request("POST", "/v1/telemetry", data,
                         {"X-Signature": signature(KEY, data) if rng.random() < 0.5 else "00"})
            response = conn.getresponse()
            answer = json.loads(response.read())
            tally.add(response.status)
            if not 400 <= response.status < 500 or not answer.get("error"):
                tally.errors.append(("malformed", response.status, answer))
        except Exception as exc:
            tally.errors.append(("malformed", repr(exc)))
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


@pytest.mark.slow
def test_soak_records_from_16_clients_with_slow_and_malformed_ones(tmp_path: Path):
    directory = tmp_path / "telemetry"
    today = dt.datetime.now(dt.UTC).date()
    server = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "telemetry", "serve", "--port", "0", "--params", str(ROOT / "params.yaml"),
         "--set", f"fleet.directory={directory}", "--set", f"fleet.first_day={today}",
         "--set", "fleet.read_timeout_s=2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "MOBILE_MLOPS_TELEMETRY_KEY": KEY.decode()})
    try:
        line = server.stdout.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", line).group(1))
        prefix, suffix = template(str(today))
        batches = RECORDS // PER_BATCH
        tally, stop = Tally(), threading.Event()
        rss = {"start": rss_kib(server.pid)}
        noise = [threading.Thread(target=slow_client, args=(port, stop, tally)) for _ in range(SLOW)]
        noise += [threading.Thread(target=malformed_client, args=(port, stop, tally, s)) for s in range(MALFORMED)]
        good = [threading.Thread(target=good_client, args=(port, list(range(c, batches, CLIENTS)), prefix, suffix,
                                                           tally)) for c in range(CLIENTS)]
        started = time.monotonic()
        for thread in noise + good:
            thread.start()
        while any(t.is_alive() for t in good):
            time.sleep(1)
            done = tally.statuses.get(202, 0)
            if "middle" not in rss and done >= batches // 2:
                rss["middle"] = rss_kib(server.pid)
        seconds = time.monotonic() - started
        rss["end"] = rss_kib(server.pid)
        stop.set()
        for thread in noise:
            thread.join(30)
    finally:
        server.terminate()
        server.wait(60)
    stored = sum(pq.ParquetFile(f).metadata.num_rows for f in directory.glob("day=*/*.parquet"))
    figures = {"records": RECORDS, "batches": batches, "seconds": round(seconds, 1),
               "batches_per_s": round(batches / seconds, 1), "records_per_s": round(RECORDS / seconds),
               "rss_mib": {k: round(v / 1024, 1) for k, v in rss.items()}, "statuses": tally.statuses,
               "accepted": tally.accepted, "quarantined": tally.quarantined, "stored": stored}
    print(json.dumps(figures))
    if os.environ.get("SOAK_REPORT"):
        Path(os.environ["SOAK_REPORT"]).write_text(json.dumps(figures, indent=2) + "\n")
    assert tally.errors == []  # every request answered, as expected
    assert tally.statuses[202] == batches and tally.accepted == batches * (PER_BATCH - 1)
    assert stored == tally.accepted  # no accepted record lost
    assert tally.statuses.get(408, 0) > 0 and sum(v for k, v in tally.statuses.items() if 400 <= k < 500) > 0
    assert rss["end"] - rss["middle"] < 64 * 1024  # flat: less than 64 MiB growth over the second half
