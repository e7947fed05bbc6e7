"""A soak of `kbchat serve` on loopback: 500 answers to 10 concurrent clients, with memory watched.

    .venv/bin/python bench/soak.py [--answers 500] [--clients 10] [--profile small|quality] [--writer auto|model]

Starts `kbchat serve` on the sample business in its own process and has 10 clients ask it the 165
questions of sample_data/eval_questions.jsonl (curated FAQ questions, rewordings, questions from the
documents, questions the documents do not cover) round and round, each chat with its own session,
until 500 answers came back. Counts the replies that are not answers (the friendly "busy" reply
counts apart, as the only allowed one), and prints the server's resident memory at the start (after
the first 20 answers, with the models loaded) and at the end, with the ratio end / start; and the
answers per second with p50/p95. The baseline is the server's own start: memory must stay flat.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from serve import free_port, percentile, started  # noqa: E402

from kb.bot import BotRecords  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from ui.api import BUSY  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=500)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--profile", choices=("small", "quality"), default="small")
    parser.add_argument("--writer", choices=("auto", "model"), default="auto", help="model: SmolLM2 writes every answer")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "sample_data" / "eval_questions.jsonl").read_text().splitlines() if line.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        kb = Path(tmp) / "kb"
        settings = Settings(model_profile=args.profile, rag_writer=args.writer, rate_limit_per_ip=1_000_000,
                            rate_limit_per_session=1_000_000, answer_timeout_s=600)
        with Store(kb) as store:
            assert not [r for r in ingest(store, [str(ROOT / "sample_data")], settings) if r.failed]
        settings.save(kb)
        with BotRecords(kb) as records:
            records.ensure_keys()
            key = records.public_key()
        port = free_port()
        server = started([str(Path(sys.executable).parent / "kbchat"), "--kb", str(kb), "serve", "--port", str(port)],
                         f"http://127.0.0.1:{port}/health", "kbchat serve")
        proc = psutil.Process(server.pid)
        counts = {"answers": 0, "busy": 0, "errors": 0}
        latencies: list[float] = []
        lock = threading.Lock()
        rss: dict[str, float] = {}
        errors: list[str] = []

        def client(n: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=900) as http:
                i = 0
                while True:
                    with lock:
                        if counts["answers"] >= args.answers:
                            return
                    question = questions[(n * 17 + i) % len(questions)]
                    start = time.perf_counter()
                    try:
                        r = http.post("/api/chat", json={"question": question, "session_id": f"soak-{n:02d}-{i // 5:05d}"},
                                      headers={"X-Bot-Key": key})
                        body = r.json()
                    except (httpx.HTTPError, ValueError) as e:
                        with lock:
                            counts["errors"] += 1
                            errors.append(f"{type(e).__name__}: {e}")
                        i += 1
                        continue
                    with lock:
                        if r.status_code == 200 and body.get("text"):
                            counts["answers"] += 1
                            latencies.append((time.perf_counter() - start) * 1000)
                            if counts["answers"] == 20:
                                rss["start"] = proc.memory_info().rss / 1e6
                        elif BUSY in json.dumps(body):
                            counts["busy"] += 1
                        else:
                            counts["errors"] += 1
                            errors.append(f"{r.status_code}: {r.text[:200]}")
                    i += 1

        try:
            began = time.perf_counter()
            threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - began
            rss["end"] = proc.memory_info().rss / 1e6
        finally:
            server.close()
    print(f"\n== kbchat serve soak, {args.profile} profile (rag_writer {args.writer}), {args.clients} clients ==")
    print(f"answers {counts['answers']}, busy replies {counts['busy']}, errors {counts['errors']} in {seconds:.0f} s "
          f"({counts['answers'] / seconds:.1f} answers/s; p50 {statistics.median(latencies):.0f} ms, "
          f"p95 {percentile(latencies, 95):.0f} ms)")
    print(f"server memory (RSS): {rss['start']:.0f} MB after 20 answers, {rss['end']:.0f} MB at the end; "
          f"ratio {rss['end'] / rss['start']:.2f} (baseline: its own start)")
    for line in errors[:5]:
        print("  error:", line)


if __name__ == "__main__":
    main()
