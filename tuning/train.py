"""LoRA fine-tuning of the shared generator on the knowledge base's FAQ pairs.

One run: check the pairs (tuning.data), add reworded questions and hold some out for validation,
train LoRA adapters with the loss on answer tokens only, validate each epoch, stop early when
validation loss stops improving, and save the best epoch as a new versioned adapter
(tuning.adapters). Progress goes to a terminal callback and to `tuning/progress.json` in the
knowledge base, which the app reads while a run goes on in the background. A checkpoint after each
epoch lets an interrupted run (Ctrl-C, a killed process) resume with `resume=True`.

    >>> info = train(store, TuneSettings(epochs=3))                     # doctest: +SKIP
    >>> info.id, info.best_val_loss                                     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from kb.errors import BadInput, NotFound
from kb.files import atomic_write
from kb.records import FaqPair
from kb.settings import Settings
from kb.store import Store, now_iso
from tuning import adapters
from tuning.batches import answer_loss, batches, collate, encode, validation_loss
from kb.reword import TRAINING_REWORDINGS
from tuning.data import DataReport, TrainingSet, check_pairs, split_for_training

@dataclass
class TuneSettings:
    # LoRA shape. r=16 on every linear layer is the usual choice for small models: about 4.9M
    # trainable parameters on SmolLM2-135M (3.6%), enough to store a few hundred short facts.
    rank: int = 16
    alpha: int = 32  # scale alpha/r = 2, the common pairing with r=16
    dropout: float = 0.05  # light regularization; the data set is tiny
    target_modules: str = "all-linear"  # attention and MLP: facts live mostly in the MLPs
    # Optimization, measured on the sample FAQ (bench/tuned.py): 2e-4, the usual LoRA rate for long
    # runs, was still far from converged after 100 steps (validation loss 1.79; facts recalled: 0.11
    # of FAQ questions word for word, 0.13 reworded). 1e-3 reached 0.06, with 0.98 word for word and
    # 0.28 reworded.
    # Linear decay after a short warm-up.
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.06
    weight_decay: float = 0.0
    batch_size: int = 4  # examples per step, grouped by length (little padding). On the sample FAQ, 8 peaked
    # at 4.5 GB RSS (136 tokens/s, 7.4 min); 4 at 2.9 GB (121 tokens/s, 8.4 min) and learned more
    epochs: int = 5  # an upper bound; with the rewordings each fact is seen 15 times by then
    patience: int = 1  # stop at the first epoch that does not improve validation loss
    # Data. Several rewordings per question are what lets a fine-tune learn a fact (Ovadia et al.
    # 2023); one per pair is held out so validation measures unseen wordings.
    n_rewordings: int = TRAINING_REWORDINGS  # 2 trained + 1 held out per pair; keeps the sample FAQ run under 10 min on 2 cores
    n_validation: int = 1
    max_tokens: int = 384  # a pair longer than this (question + answer) is left out, not cut
    seed: int = 0  # the same data and settings give the same adapter
    # The frozen model's weights: "auto" is bfloat16 where the processor computes it natively (a GPU
    # that has it, a CPU with AVX-512 BF16 or AMX), else float32. The LoRA weights, the optimizer and
    # the loss stay float32. On 2 cores with AVX-512 BF16, Qwen2.5-Coder-1.5B trained at 34.5
    # tokens/s against 16.3 in float32, with the same losses to the third decimal; SmolLM2-135M at
    # 250 against 169 (bench/tune.py --profile quality|small).
    precision: str = "auto"  # auto, bfloat16 or float32


@dataclass
class Progress:
    """What the terminal and the app show about a run; saved as tuning/progress.json."""

    run_id: str
    status: str = "starting"  # starting, training, done, stopped (interrupted), failed
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    epochs: int = 0
    train_loss: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    val_loss: list[tuple[int, float]] = field(default_factory=list)  # (epoch, loss)
    tokens_per_s: float = 0.0
    eta_s: float | None = None
    expected_s: float | None = None  # the whole run, from the first steps' speed (an upper bound: it may stop early)
    started_at: str = ""
    message: str = ""

    @staticmethod
    def read(kb_dir: Path) -> "Progress | None":
        path = Path(kb_dir) / "tuning" / "progress.json"
        try:
            return Progress(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, kb_dir: Path) -> None:
        text = json.dumps(dataclasses.asdict(self))
        atomic_write(Path(kb_dir) / "tuning" / "progress.json", lambda f: f.write(text.encode()))


PROBE_STEPS = 3  # timed steps (after the first) before the run says how long it will take
LONG_RUN_S = 20 * 60  # longer than this, the owner is told of faster ways


def expected_time(seconds: float) -> str:
    """The run's expected time in words and, for a long one, what would make it shorter."""
    from kb.models import default_device

    minutes = max(1, round(seconds / 60))
    words = f"about {minutes} min" if minutes < 90 else f"about {minutes / 60:.1f} hours"
    text = f"Expected time: {words} on this machine (less if it stops early)."
    if seconds > LONG_RUN_S:
        faster = "" if default_device() == "cuda" else "; a machine with a GPU trains this model much faster"
        text += (" That is long. The small model profile (setting model_profile = small) trains in minutes, with "
                 f"weaker answers{faster}. You can stop now and resume later.")
    return text


def frozen_dtype(precision: str, device: str):
    """The dtype of the frozen model during training (TuneSettings.precision)."""
    import torch

    if precision not in ("auto", "bfloat16", "float32"):
        raise BadInput(f"Fine-tuning precision must be auto, bfloat16 or float32, not {precision!r}.")
    if precision == "auto":
        precision = "bfloat16" if native_bf16(device) else "float32"
    return torch.bfloat16 if precision == "bfloat16" else torch.float32


def native_bf16(device: str) -> bool:
    """Whether the processor multiplies bfloat16 natively (elsewhere it is emulated, and slower
    than float32)."""
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())  # AVX-512 BF16 or AMX; no public API
    except (AttributeError, RuntimeError):
        return False


def prepare(store: Store, settings: TuneSettings, extra: list[FaqPair] | None = None, tokenizer=None) -> tuple[DataReport, TrainingSet]:
    """The checked pairs and the training/validation split a run would use."""
    pairs = store.faq_pairs() + list(extra or [])
    if not pairs:
        raise BadInput("The knowledge base has no FAQ pairs to learn from. Ingest an FAQ spreadsheet first (kbchat ingest faq.csv).")
    count = (lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"])) if tokenizer else None
    report = check_pairs(pairs, tokenizer_len=count, max_tokens=settings.max_tokens)
    if not report.pairs:
        raise BadInput("None of the FAQ pairs can be used for training; the data check above says why.")
    return report, split_for_training(report.pairs, settings.n_rewordings, settings.n_validation, settings.seed)


def train(
    store: Store,
    settings: TuneSettings | None = None,
    extra: list[FaqPair] | None = None,
    resume: bool = False,
    on_step: Callable[[Progress], None] | None = None,
    kb_settings: Settings | None = None,
    on_report: Callable[[DataReport, TrainingSet], None] | None = None,
) -> adapters.AdapterInfo:
    """Train a new adapter (or finish the interrupted run with resume=True) and return it. It is
    made the active adapter when it is done. `on_report` gets the data check and the split before
    training starts."""
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from peft.utils import get_peft_model_state_dict

    from rag.generate import load_private, load_tokenizer

    kb = Path(store.dir)
    kb_settings = kb_settings or Settings.load(kb)
    work = kb / "tuning"
    run_dir = _run_dir(work, resume)
    state_path = run_dir / "checkpoint.pt"
    run_meta = json.loads((run_dir / "run.json").read_text()) if resume else None
    if run_meta:
        settings = TuneSettings(**run_meta["settings"])
        extra = [FaqPair(**p) for p in run_meta["extra"]]
    settings = settings or TuneSettings()
    torch.manual_seed(settings.seed)  # LoRA initialization and dropout
    # The data is checked before the model loads, so a bad FAQ file is reported at once.
    report, data = prepare(store, settings, extra, load_tokenizer(kb_settings.models.generator))
    if on_report:
        on_report(report, data)
    if run_meta and run_meta["data_hash"] != data.data_hash():
        raise BadInput("The FAQ pairs changed since the interrupted run, so it cannot be resumed. Start a new run: kbchat tune")
    loaded = load_private(kb_settings.models.generator)
    model, tokenizer, device = loaded.model, loaded.tokenizer, loaded.device
    model.to(frozen_dtype(settings.precision, device))
    if not run_meta:
        run_dir.mkdir(parents=True)
        run_meta = {"settings": dataclasses.asdict(settings), "extra": [dataclasses.asdict(p) for p in extra or []],
                    "data_hash": data.data_hash(), "faq_hash": store.faq_hash(), "started_at": now_iso(), "report": report.describe()}
        text = json.dumps(run_meta, indent=1)
        atomic_write(run_dir / "run.json", lambda f: f.write(text.encode()))  # a kill -9 never leaves half of it

    model = get_peft_model(model, LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
        target_modules=settings.target_modules, task_type="CAUSAL_LM",
    ))
    for p in model.parameters():
        if p.requires_grad:
            p.data = p.data.float()  # the adapter trains and is saved in float32 whatever the base is
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_set = [encode(tokenizer, e) for e in data.train]
    val_set = [encode(tokenizer, e) for e in data.validation]
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    total = steps_per_epoch * settings.epochs
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=settings.learning_rate, weight_decay=settings.weight_decay)
    warmup = max(1, int(total * settings.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))

    progress = Progress(run_dir.name, "training", total_steps=total, epochs=settings.epochs, started_at=run_meta["started_at"])
    best = {"loss": float("inf"), "epoch": 0, "bad_epochs": 0}
    start_epoch, seconds_before = 0, 0.0
    if resume and state_path.exists():
        state = torch.load(state_path, weights_only=False)
        set_peft_model_state_dict(model, state["adapter"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, seconds_before = state["epoch"], state["best"], state["seconds"]
        progress.train_loss, progress.val_loss, progress.step = state["train_loss"], state["val_loss"], state["step"]
        progress.epoch = start_epoch

    model.train()
    t0 = time.perf_counter()
    tokens_seen, stopped_early, warm = 0, False, 0.0
    try:
        for epoch in range(start_epoch, settings.epochs):
            rng = random.Random(f"{settings.seed}-{epoch}")
            for idx in batches(train_set, settings.batch_size, rng):
                ids, mask, labels = collate(train_set, idx, pad_id, device)
                loss, _ = answer_loss(model, ids, mask, labels)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                tokens_seen += int(mask.sum())
                progress.step += 1
                progress.train_loss.append((progress.step, round(loss.item(), 4)))
                elapsed = time.perf_counter() - t0
                progress.tokens_per_s = tokens_seen / elapsed
                done_here = progress.step - start_epoch * steps_per_epoch
                progress.eta_s = elapsed / max(done_here, 1) * (total - progress.step)
                if done_here == 1:
                    warm = elapsed  # the first step also allocates: the probe times the steps after it
                if done_here == PROBE_STEPS + 1 and progress.expected_s is None:
                    per_step = (elapsed - warm) / PROBE_STEPS
                    progress.expected_s = seconds_before + warm + per_step * (total - start_epoch * steps_per_epoch - 1)
                    progress.message = expected_time(progress.expected_s)
                    progress.save(kb)
                if on_step:
                    on_step(progress)
                if progress.step % 5 == 0:
                    progress.save(kb)
            progress.epoch = epoch + 1
            val = validation_loss(model, val_set, pad_id, device)
            progress.val_loss.append((epoch + 1, round(val, 4)))
            if val < best["loss"] - 1e-4 or math.isnan(val):
                best = {"loss": val, "epoch": epoch + 1, "bad_epochs": 0}
                model.save_pretrained(run_dir / f"best-{epoch + 1}")  # a new folder: the checkpoint still names the last whole one
            else:
                best["bad_epochs"] += 1
            torch.save({
                "adapter": get_peft_model_state_dict(model), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best": best, "step": progress.step,
                "train_loss": progress.train_loss, "val_loss": progress.val_loss,
                "seconds": seconds_before + time.perf_counter() - t0,
            }, state_path.with_suffix(".tmp"))
            state_path.with_suffix(".tmp").replace(state_path)
            for older in run_dir.glob("best-*"):  # the checkpoint names only the best one from now on
                if older != _best_dir(run_dir, best):
                    shutil.rmtree(older, ignore_errors=True)
            progress.save(kb)
            if on_step:
                on_step(progress)
            if best["bad_epochs"] >= settings.patience:
                stopped_early = True
                break
    except KeyboardInterrupt:
        progress.status, progress.message = "stopped", "Interrupted. Resume with: kbchat tune --resume"
        progress.save(kb)
        raise
    except Exception as e:
        progress.status, progress.message = "failed", f"Training failed: {e}"
        progress.save(kb)
        raise

    seconds = seconds_before + time.perf_counter() - t0
    info = adapters.publish(
        kb, _best_dir(run_dir, best), run_dir.name,
        settings=dataclasses.asdict(settings), data_hash=data.data_hash(), faq_hash=run_meta["faq_hash"],
        n_train=len(data.train), n_validation=len(data.validation), held_out=sorted(data.held_out_questions()),
        trained_questions=sorted({e.question for e in data.train}),
        epochs_run=progress.epoch, best_epoch=best["epoch"], best_val_loss=best["loss"], stopped_early=stopped_early,
        train_loss=progress.train_loss, val_loss=progress.val_loss, train_seconds=seconds,
        tokens_per_s=progress.tokens_per_s, base_model=loaded.model_id, report=run_meta["report"],
        gguf_base=gguf_base(kb_settings),
    )
    progress.status, progress.message, progress.eta_s = "done", f"Adapter {info.id} is ready and active.", 0.0
    progress.save(kb)
    shutil.rmtree(run_dir, ignore_errors=True)
    return info


def _best_dir(run_dir: Path, best: dict) -> Path:
    """The saved weights of the best epoch so far. Each improving epoch saves a new folder before
    the checkpoint names it, so a run killed while saving resumes from the last complete one."""
    return run_dir / f"best-{best['epoch']}"


def gguf_base(kb_settings: Settings) -> Path | None:
    """For a GGUF generator (answering on llama.cpp), the model folder the adapter was trained on,
    which the LoRA converter reads; None for a model folder (answering on transformers)."""
    from kb.models import generator_path
    from rag.generate import cached_copy

    source = generator_path(kb_settings.models.generator)
    return cached_copy(source) if source.suffix == ".gguf" else None


def interrupted_runs(kb_dir) -> list[Path]:
    """Unfinished runs that `train(resume=True)` can go on with, oldest first."""
    work = Path(kb_dir) / "tuning"
    return sorted(p for p in work.glob("run-*") if (p / "run.json").exists()) if work.exists() else []


def _run_dir(work: Path, resume: bool) -> Path:
    """The folder of the run: the newest unfinished one to resume, or a new one."""
    runs = interrupted_runs(work.parent)
    if resume:
        if not runs:
            raise NotFound("There is no interrupted training run to resume. Start one with: kbchat tune")
        return runs[-1]
    return work / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
