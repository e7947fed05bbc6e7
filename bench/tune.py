"""Fine-tuning speed and memory: the plain training loop against kbchat's, in the same run.

    .venv/bin/python bench/tune.py [--steps 12] [--profile small|quality]

Both loops train the same LoRA (TuneSettings defaults) on the sample FAQ's training examples
(questions and rewordings) for the same number of steps of TuneSettings.batch_size examples, from the same start:
  * plain: batches in random order padded to their longest example, `model(..., labels=...)`,
    which runs the output layer on every position (the loop shared/MODELS.md measured, ~100 tokens/s);
  * kbchat: length-grouped batches (tuning.batches.batches) and the loss on answer positions only
    (tuning.batches.answer_loss), with the frozen model in float32 and then in the dtype kbchat
    trains it in here (TuneSettings.precision: bfloat16 where the CPU has AVX-512 BF16).
Prints real (non-padding) tokens/s, padding share, the time one epoch over 100 pairs would take,
peak RAM of the process, and the ratio kbchat / plain. The whole default run's time is printed by
`kbchat tune` itself.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import torch  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from retrieval import sample_store  # noqa: E402

from rag.generate import load_private, load_tokenizer  # noqa: E402
from kb.setting_groups import PROFILES  # noqa: E402
from kb.settings import Settings  # noqa: E402
from tuning.batches import answer_loss, batches, collate, encode  # noqa: E402
from tuning.train import TuneSettings, frozen_dtype, prepare  # noqa: E402


def run(label: str, encoded, steps: int, grouped: bool, settings: TuneSettings, per_pair: float, generator: str,
        dtype=torch.float32) -> float:
    torch.manual_seed(0)
    loaded = load_private(generator)
    loaded.model.to(dtype)
    model = get_peft_model(loaded.model, LoraConfig(r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                                    target_modules=settings.target_modules, task_type="CAUSAL_LM"))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate)
    pad = loaded.tokenizer.eos_token_id
    rng = random.Random(0)
    if grouped:
        order = batches(encoded, settings.batch_size, rng)
    else:
        idx = list(range(len(encoded)))
        rng.shuffle(idx)
        order = [idx[i:i + settings.batch_size] for i in range(0, len(idx), settings.batch_size)]
    order = (order * (steps // max(len(order), 1) + 1))[:steps]
    real = padded = 0
    start = time.perf_counter()
    for batch in order:
        ids, mask, labels = collate(encoded, batch, pad, "cpu")
        loss = answer_loss(model, ids, mask, labels)[0] if grouped else model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        real += int(mask.sum())
        padded += mask.numel()
    seconds = time.perf_counter() - start
    rate = real / seconds
    per_100_pairs = per_pair * 100 / rate
    print(f"{label:<16} {rate:6.1f} tokens/s   padding {1 - real / padded:5.1%}   one epoch per 100 pairs {per_100_pairs / 60:4.1f} min")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small", help="whose model trains (default small)")
    args = parser.parse_args()
    settings = TuneSettings()
    generator = Settings(model_profile=args.profile).models.generator
    with tempfile.TemporaryDirectory() as tmp:
        store = sample_store(Path(tmp))
        tokenizer = load_tokenizer(generator)
        report, data = prepare(store, settings, tokenizer=tokenizer)
    encoded = [encode(tokenizer, e) for e in data.train]
    tokens_per_pair = sum(len(x) for x, _ in encoded) / len(report.pairs)  # per FAQ pair, rewordings included
    print(f"{len(report.pairs)} pairs -> {len(encoded)} training examples, {tokens_per_pair:.0f} tokens per pair per epoch; {args.steps} steps of {settings.batch_size}")
    plain = run("plain", encoded, args.steps, False, settings, tokens_per_pair, generator)
    ours32 = run("kbchat float32", encoded, args.steps, True, settings, tokens_per_pair, generator)
    dtype = frozen_dtype(settings.precision, "cpu")
    ours = run(f"kbchat {str(dtype).split('.')[-1]}", encoded, args.steps, True, settings, tokens_per_pair, generator, dtype) \
        if dtype != torch.float32 else ours32
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"ratio kbchat / plain: {ours / plain:.2f}x tokens/s (float32 alone {ours32 / plain:.2f}x);  "
          f"peak RAM of this process {peak_mb:,.0f} MB")


if __name__ == "__main__":
    main()
