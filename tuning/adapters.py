"""Versioned LoRA adapters in the knowledge base folder, and loading one onto the generator.

    adapters/
      v1-20261123-140212/   adapter weights (peft), adapter.json (settings, data and FAQ hashes,
                            loss curves, training time), loss.png
      active                the id of the adapter the tuned paths use

An adapter is never changed after it is published; training again makes a new version.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import NotFound
from kb.files import atomic_write
from kb.store import now_iso

DIR = "adapters"
META = "adapter.json"
GGUF = "adapter.gguf"  # the same adapter as a GGUF LoRA, which llama.cpp applies over the base GGUF


@dataclass
class AdapterInfo:
    id: str
    created_at: str
    base_model: str
    settings: dict
    data_hash: str  # of the training examples (tuning.data.TrainingSet.data_hash)
    faq_hash: str  # of the knowledge base's FAQ content when training started (Store.faq_hash)
    n_train: int
    n_validation: int
    epochs_run: int
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    train_seconds: float
    tokens_per_s: float
    train_loss: list = field(default_factory=list)  # (step, loss)
    val_loss: list = field(default_factory=list)  # (epoch, loss)
    held_out: list = field(default_factory=list)  # validation questions, never trained on
    trained_questions: list = field(default_factory=list)
    report: list = field(default_factory=list)  # the data check, in words
    path: str = ""

    def fit(self) -> tuple[float, float, str] | None:
        """Training loss at the best epoch, its validation loss, and what the gap between them means,
        in plain words with what to do (None when the run has no loss history)."""
        if not self.train_loss or not self.val_loss or not self.epochs_run:
            return None
        per_epoch = max(step for step, _ in self.train_loss) / self.epochs_run
        best = max(1, self.best_epoch)
        in_best = [loss for step, loss in self.train_loss if (best - 1) * per_epoch < step <= best * per_epoch]
        train = sum(in_best) / len(in_best) if in_best else self.train_loss[-1][1]
        val = self.best_val_loss
        return train, val, fit_words(train, val)

    def summary(self) -> dict:
        """The fields worth listing (no loss history or question lists)."""
        skip = {"train_loss", "val_loss", "held_out", "trained_questions", "report", "settings"}
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in skip}


# How far (in loss) held-out rewordings may trail the trained questions before it is called memorizing.
# The loss is the model's average surprise per answer token (natural log): a gap of 0.3 means it is
# about 1.35 times less sure of each word of your answers when the question is worded differently.
GAP_SMALL = 0.15
GAP_LARGE = 0.5


def fit_words(train: float, val: float) -> str:
    """The gap between training and validation loss, for the owner: learning, or memorizing."""
    gap = val - train
    said = f"(training loss {train:.3f}, held-out rewordings {val:.3f})"
    if gap <= GAP_SMALL:
        return (f"The model answers reworded questions it never trained on about as well as the trained ones {said}: "
                "it learned your answers rather than memorizing exact wordings. The held-out questions are rewordings "
                "of your own, so check it on real questions on the Evaluate page.")
    if gap <= GAP_LARGE:
        return (f"The model does clearly worse on reworded questions it never trained on than on the trained ones "
                f"{said}: it partly memorized your exact wordings. Adding more varied questions helps most: real "
                "customer chats (a transcript export, or answers visitors rated helpful), or more FAQ rows that ask "
                "the same thing in other words.")
    return (f"The model memorized rather than learned {said}: it repeats your answers to the exact trained questions "
            "but is much less sure of them when a question is worded differently, as customers do. Train with fewer "
            "epochs or a lower learning rate, and add more varied questions (real customer chats, or FAQ rows asking "
            "the same thing in other words). For answers that must be right, RAG does not have this problem.")


def folder(kb_dir) -> Path:
    return Path(kb_dir) / DIR


def publish(kb_dir, weights: Path, run_name: str, gguf_base: Path | None = None, **meta) -> AdapterInfo:
    """Copy a finished run's best weights in as the next version, with its record and loss plot,
    and make it active. With `gguf_base` (the Hugging Face folder of a GGUF generator) the adapter
    is also written as a GGUF LoRA for llama.cpp. The copy is renamed into place only when all of it
    is written, so a crash never leaves half an adapter."""
    root = folder(kb_dir)
    root.mkdir(parents=True, exist_ok=True)
    number = 1 + max((_version(p.name) for p in root.iterdir() if p.is_dir()), default=0)
    adapter_id = f"v{number}-{run_name.removeprefix('run-')}"
    tmp = root / f".{adapter_id}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(weights, tmp)
    if gguf_base is not None:
        from rag import convert

        convert.lora_to_gguf(tmp, gguf_base, tmp / GGUF)
    info = AdapterInfo(id=adapter_id, created_at=now_iso(), **meta)
    (tmp / META).write_text(json.dumps(dataclasses.asdict(info), indent=1))
    plot_losses(info, tmp / "loss.png")
    os.replace(tmp, root / adapter_id)
    activate(kb_dir, adapter_id)
    info.path = str(root / adapter_id)
    return info


def plot_losses(info: AdapterInfo, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if info.train_loss:
        steps, losses = zip(*info.train_loss)
        ax.plot(steps, losses, label="training", alpha=0.7)
    if info.val_loss:
        per_epoch = max(1, len(info.train_loss) // max(info.epochs_run, 1))
        epochs, losses = zip(*info.val_loss)
        ax.plot([e * per_epoch for e in epochs], losses, "o-", label="validation (reworded questions)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"Adapter {info.id}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def list_adapters(kb_dir) -> list[AdapterInfo]:
    root = folder(kb_dir)
    found = []
    for p in sorted(root.iterdir()) if root.exists() else []:
        if p.is_dir() and not p.name.startswith(".") and (p / META).exists():
            info = AdapterInfo(**{**json.loads((p / META).read_text()), "path": str(p)})
            found.append(info)
    return sorted(found, key=lambda a: _version(a.id))


def _version(name: str) -> int:
    """3 for 'v3-20261123-140212'; 0 for anything else."""
    head = name.split("-")[0]
    return int(head[1:]) if head[:1] == "v" and head[1:].isdigit() else 0


def active_id(kb_dir) -> str | None:
    path = folder(kb_dir) / "active"
    name = path.read_text().strip() if path.exists() else ""
    return name if name and (folder(kb_dir) / name / META).exists() else None


def activate(kb_dir, adapter_id: str) -> None:
    if not (folder(kb_dir) / adapter_id / META).exists():
        known = ", ".join(a.id for a in list_adapters(kb_dir)) or "none yet"
        raise NotFound(f"There is no adapter '{adapter_id}'. Adapters: {known}.")
    atomic_write(folder(kb_dir) / "active", lambda f: f.write(adapter_id.encode()))


def get(kb_dir, adapter_id: str | None = None) -> AdapterInfo:
    """The named adapter, or the active one; a clear message when there is none."""
    adapter_id = adapter_id or active_id(kb_dir)
    if adapter_id is None:
        raise NotFound("There is no fine-tuned model yet. Train one on your FAQ with kbchat tune, or on the Fine-tune page (about 5-10 minutes on a laptop).")
    for info in list_adapters(kb_dir):
        if info.id == adapter_id:
            return info
    raise NotFound(f"There is no adapter '{adapter_id}'. See the list with: kbchat adapters")


def gguf_lora(info: AdapterInfo, source: Path) -> Path:
    """The adapter as a GGUF LoRA over the GGUF generator `source`; written now for an adapter
    trained before kbchat ran on llama.cpp."""
    from rag import convert
    from rag.generate import cached_copy

    out = Path(info.path) / GGUF
    # the base folder (for the converter) is made only when needed: for a large model it takes minutes
    return out if out.is_file() else convert.lora_to_gguf(Path(info.path), cached_copy(source), out)


def check_trained_on(info: AdapterInfo, source: Path) -> None:
    """Refuse an adapter trained on another model than the generator `source` (a profile switch)."""
    base = source.stem if source.suffix == ".gguf" else source.name
    trained_on = info.base_model.removesuffix(" (fp16 linears)")
    if not (base.startswith(trained_on) or trained_on.startswith(base)):
        raise NotFound(
            f"The fine-tuned model {info.id} was trained on {info.base_model}, but this knowledge base now writes "
            f"answers with {base} (the model_profile or generator_path setting changed). A comparison needs both on one "
            "model: train again (kbchat tune, or the Fine-tune page), or switch the setting back.")


# Merged transformers models kept in memory, most recently used last. Each is a whole copy of the
# generator, and the app and the server live for days while the owner trains new adapters: only the
# last two used are kept, so switching back to the previous adapter is still instant. (llama.cpp
# models are kept the same way in rag.llama.)
KEEP_LOADED = 2
_LOADED: OrderedDict[tuple, object] = OrderedDict()
_LOCK = threading.Lock()


def load_tuned(info: AdapterInfo, settings, device: str | None = None):
    """An engine (rag.generate) for the generator with this adapter, loaded once per process: on
    llama.cpp, the base GGUF with the adapter's GGUF LoRA; for a model folder, the transformers
    model with the adapter merged in (as fast as the plain model, with the same fp16 speed-up)."""
    from kb.models import default_device, generator_path
    from rag.generate import LoadedModel, TransformersEngine, half_linears, llama_file, llama_name, load_private

    source = generator_path(settings.models.generator)
    check_trained_on(info, source)
    if source.suffix == ".gguf":
        from rag import llama

        return llama.load(llama_file(source), gguf_lora(info, source), settings.models.threads, settings.models.context_tokens,
                          f"{llama_name(source)} + adapter {info.id}")
    from peft import PeftModel

    device = device or default_device()
    key = (info.path, settings.models.generator, device)
    with _LOCK:
        if key in _LOADED:
            _LOADED.move_to_end(key)
        else:
            while len(_LOADED) >= KEEP_LOADED:
                _LOADED.popitem(last=False)  # answer paths still holding it keep it until they go
            base = load_private(settings.models.generator, device)
            model = PeftModel.from_pretrained(base.model, info.path).merge_and_unload()
            model.eval()
            name = f"{base.model_id} + adapter {info.id}"
            if device == "cpu":
                half_linears(model)
                name += " (fp16 linears)"
            _LOADED[key] = TransformersEngine(LoadedModel(model, base.tokenizer, device, name))
        return _LOADED[key]
