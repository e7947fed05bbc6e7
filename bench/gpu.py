"""kbchat on a GPU, checked against the same machine's CPU on the same data: fine-tuning (a LoRA
adapter on the generator, from the sample FAQ), the fine-tuned path's answers on transformers, and
the search model's vectors. Each side runs in its own process (the CPU one with CUDA hidden), then
this prints what ran where, the speeds and their ratio, and how far the GPU's results are from the
CPU's: the loss at every training step, the answers word for word, the vectors' cosines.

    .venv/bin/python bench/gpu.py                                   # the settings' models
    .venv/bin/python bench/gpu.py --generator DIR --embedder DIR    # other local models

Needs a machine with CUDA; elsewhere it says so and stops. The generator must be a model folder or
a GGUF file transformers can read (fine-tuned answers then run on transformers when it is a folder,
on llama.cpp when it is a GGUF file)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one_side(args) -> dict:
    """Train, answer and embed on whatever device this process sees; the figures as a dict."""
    import torch

    from compare.metrics import percentile
    from kb.ingest import ingest
    from kb.models import default_device
    from kb.settings import Settings
    from kb.store import Store
    from rag.embed import Embedder
    from tuning.answer import TunedPath
    from tuning.train import TuneSettings, frozen_dtype, train

    device = default_device()
    settings = Settings(**{k: v for k, v in (("generator_path", args.generator), ("embedder_path", args.embedder)) if v},
                        max_new_tokens=args.tokens)
    out: dict = {"device": device, "name": torch.cuda.get_device_name(0) if device == "cuda" else "CPU",
                 "frozen_dtype": str(frozen_dtype("auto", device)).removeprefix("torch.")}
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "kb") as store:
        assert not [r for r in ingest(store, [str(ROOT / "sample_data" / "faq.csv")], settings) if r.failed]
        start = time.perf_counter()
        info = train(store, TuneSettings(epochs=args.epochs, patience=args.epochs), kb_settings=settings)
        out["train_s"] = time.perf_counter() - start
        out.update(tokens_per_s=info.tokens_per_s, train_loss=[loss for _, loss in info.train_loss],
                   val_loss=[loss for _, loss in info.val_loss])
        questions = [p.question for p in store.faq_pairs()][: args.questions]
        path = TunedPath(store, settings)
        path.answer(questions[0])  # the model's load is not an answer's time
        answers, seconds = [], []
        for q in questions:
            start = time.perf_counter()
            answers.append(path.answer(q))
            seconds.append(time.perf_counter() - start)
        out.update(answers=[a.text for a in answers], answer_s=percentile(seconds, 50), answer_model=answers[0].model)
        embedder = Embedder(settings)
        texts = [p.question + " " + p.answer for p in store.faq_pairs()]
        embedder.embed(texts[:2])
        start = time.perf_counter()
        vectors = embedder.embed(texts * 10)[: len(texts)]
        out.update(embed_s=time.perf_counter() - start, embed_texts=len(texts) * 10, vectors=vectors.tolist(),
                   embed_bf16=embedder.bf16)
    return out


def side(device: str, args) -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        command = [sys.executable, __file__, "--one", f.name, "--epochs", str(args.epochs),
                   "--questions", str(args.questions), "--tokens", str(args.tokens)]
        for flag in ("generator", "embedder"):
            if getattr(args, flag):
                command += [f"--{flag}", getattr(args, flag)]
        if subprocess.run(command, env=env).returncode != 0:
            raise SystemExit(f"The {device.upper()} side stopped (its message is above).")
        return json.loads(Path(f.name).read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="", help="a model folder or GGUF file (default: the settings' generator)")
    parser.add_argument("--embedder", default="", help="a sentence-transformers folder (default: the settings' search model)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--questions", type=int, default=8, help="trained questions answered by the fine-tuned path")
    parser.add_argument("--tokens", type=int, default=40, help="the most tokens an answer writes")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one side, write its figures here
    args = parser.parse_args()
    if args.one:
        from kb.errors import KbchatError

        try:
            Path(args.one).write_text(json.dumps(one_side(args)))
        except KbchatError as e:  # a model path that is not a model, a missing package: said plainly
            print(e, file=sys.stderr)
            return 2
        return 0
    import numpy as np
    import torch

    if not torch.cuda.is_available():
        print("No GPU here (torch.cuda.is_available() is False): this check needs a machine with CUDA.")
        return 2
    gpu, cpu = side("cuda", args), side("cpu", args)
    for s in (gpu, cpu):
        print(f"{s['device']:>4} ({s['name']}): frozen weights {s['frozen_dtype']}; training {s['train_s']:.1f} s, "
              f"{s['tokens_per_s']:.0f} tokens/s; answer p50 {s['answer_s']:.2f} s ({s['answer_model']}); "
              f"{s['embed_texts']} passages embedded in {s['embed_s']:.2f} s{' (bfloat16)' if s['embed_bf16'] else ''}")
    steps = min(len(gpu["train_loss"]), len(cpu["train_loss"]))
    diffs = [abs(a - b) / max(abs(b), 1e-6) for a, b in zip(gpu["train_loss"], cpu["train_loss"])]
    print(f"training loss, GPU against CPU: {steps} steps, largest relative difference {max(diffs):.3f} "
          f"(first step {diffs[0]:.4f}); last {gpu['train_loss'][-1]:.3f} against {cpu['train_loss'][-1]:.3f}; "
          f"validation {gpu['val_loss']} against {cpu['val_loss']}")
    same = sum(a == b for a, b in zip(gpu["answers"], cpu["answers"]))
    print(f"fine-tuned answers word for word the CPU's: {same} of {len(cpu['answers'])}")
    for a, b in zip(gpu["answers"], cpu["answers"]):
        if a != b:
            print(f"  GPU: {a[:100]!r}\n  CPU: {b[:100]!r}")
    cos = (np.asarray(gpu["vectors"]) * np.asarray(cpu["vectors"])).sum(axis=1)
    print(f"search vectors, GPU against CPU: lowest cosine {cos.min():.5f} over {len(cos)} passages")
    print(f"ratio GPU/CPU: training {cpu['train_s'] / gpu['train_s']:.2f}x faster, answers "
          f"{cpu['answer_s'] / gpu['answer_s']:.2f}x, embedding {cpu['embed_s'] / gpu['embed_s']:.2f}x")
    ok = max(diffs) < 0.1 and cos.min() > 0.99
    print("GPU and CPU agree" if ok else "GPU and CPU DISAGREE beyond the tolerances (loss 10%, cosine 0.99)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
