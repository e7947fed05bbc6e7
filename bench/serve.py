"""Throughput and latency of `kbchat serve` on loopback, under a bounded load.

    .venv/bin/python bench/serve.py            # FAQ fast path and generated answers (~2 min on 2 cores)

Starts `kbchat serve` on the sample business in a separate process, then:
  * FAQ fast path: 200 chats of curated FAQ questions, 8 at a time;
  * generated answers: 12 chats of questions answered from the documents, 3 at a time (they queue:
    one answer is written at a time).
Prints requests/s and p50/p95 latency for each, and the ratio to the baseline measured in the same
run: the same questions answered one after another in this process by the library (no HTTP): the
server writes one answer at a time, so that rate is its ceiling. p50/p95 include queueing.
"""

from __future__ import annotations

import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kb.bot import BotRecords  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.process import NotReady, Process  # noqa: E402
from kb.store import Store  # noqa: E402

FAQ = ["What are your opening hours?", "Where is Copper Kiln Pottery Studio located?", "How can I contact the studio?",
       "Are you open on holidays?", "Do you sell gift cards?"]
GENERATED = ["What is the largest piece your kilns can fire?", "How long is lost property kept?",
             "What is the shelf repair fee?", "How much is the canvas studio apron?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def started(command: list[str], health: str, what: str, env: dict | None = None, timeout: float = 300) -> Process:
    """A server this bench starts (kb.process), once `health` answers 200 (models load first);
    exit with its output if it ended or never got there. Stop it with .close()."""
    server = Process(command, env=env)
    try:
        server.require_healthy(health, timeout, what=what)
    except NotReady as e:
        server.close()
        raise SystemExit(str(e)) from None
    return server


def load(client: httpx.Client, key: str, questions: list[str], n: int, concurrency: int) -> tuple[float, list[float]]:
    def one(i: int) -> float:
        start = time.perf_counter()
        r = client.post("/api/chat", json={"question": questions[i % len(questions)], "session_id": f"bench-{i:05d}"},
                        headers={"X-Bot-Key": key}, timeout=300)
        r.raise_for_status()
        return (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, range(n)))
    return n / (time.perf_counter() - start), latencies


def baseline(kb: Path, questions: list[str], n: int) -> list[float]:
    from compare.paths import build

    with Store(kb) as store:
        path = build(store, Settings.load(kb), ["rag"]).available[0]
        path.answer(questions[0])
        out = []
        for i in range(n):
            start = time.perf_counter()
            path.answer(questions[i % len(questions)])
            out.append((time.perf_counter() - start) * 1000)
    return out


def report(name: str, rps: float, latencies: list[float], base: list[float]) -> None:
    """Answers are written one at a time, so the server's ceiling is the library's own rate: the
    ratio of the two says what HTTP, logging and the queue cost (1.00 = nothing)."""
    p50, p95 = statistics.median(latencies), percentile(latencies, 95)
    base_rate = 1000 / statistics.mean(base)
    print(f"{name:18} {rps:6.1f} req/s  p50 {p50:7.0f} ms  p95 {p95:7.0f} ms  |  in-process {base_rate:6.1f} answers/s "
          f"(p50 {statistics.median(base):6.0f} ms)  ratio {rps / base_rate:4.2f}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "kb"
        with Store(kb) as store:
            assert not [r for r in ingest(store, [str(ROOT / "sample_data")], Settings()) if r.failed]
        Settings(rate_limit_per_ip=100_000, rate_limit_per_session=100_000).save(kb)
        with BotRecords(kb) as records:
            records.ensure_keys()
            key = records.public_key()
        port = free_port()
        exe = Path(sys.executable).parent / "kbchat"
        server = started([str(exe), "--kb", str(kb), "serve", "--port", str(port)],
                         f"http://127.0.0.1:{port}/health", "kbchat serve")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
                load(client, key, FAQ, 8, 2)  # warm up
                load(client, key, GENERATED[:1], 1, 1)
                faq_rps, faq_ms = load(client, key, FAQ, 200, 8)
                gen_rps, gen_ms = load(client, key, GENERATED, 12, 3)
        finally:
            server.close()
        faq_base = baseline(kb, FAQ, 50)
        gen_base = baseline(kb, GENERATED, 4)
    print("\n== kbchat serve on loopback, sample_data ==")
    report("FAQ fast path", faq_rps, faq_ms, faq_base)
    report("generated answers", gen_rps, gen_ms, gen_base)
    print("(generated answers queue: one is written at a time, so p50 includes waiting for the others)")


if __name__ == "__main__":
    main()


def machine() -> str:
    cpu = platform.processor() or ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def bot_url(postgres_url: str, bot: str) -> str:
    return postgres_url + ("&" if "?" in postgres_url else "?") + f"bot={bot}"
