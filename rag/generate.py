"""The language model shared by every answer path, behind one `Generator` interface with two
engines:

- llama.cpp (rag/llama.py) for GGUF files: the packaged SmolLM2 and Qwen2.5-Coder models and any
  .gguf a setting points at. It runs the quantized weights natively and decodes several times
  faster than transformers on a CPU (bench/generate.py).
- transformers for Hugging Face model folders, and for training (tuning/ loads the float32 copy
  with `load_private`).

Both are greedy by default, apply the model's chat template, stop at the token limit or the end of
the answer, and stop decoding when the caller closes the stream.

    >>> gen = Generator.for_settings(Settings())                       # doctest: +SKIP
    >>> gen.complete([{"role": "user", "content": "Hi"}]).text          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kb.errors import BadInput, ModelMissing
from kb.models import CACHE_ENV, cache_dir, default_device, generator_path, smollm2_path  # noqa: F401

DEFAULT_MAX_NEW_TOKENS = 200


@dataclass
class Completion:
    text: str
    n_tokens: int  # new tokens generated
    seconds: float  # whole generation, prompt included
    first_token_s: float  # time to the first new token

    @property
    def tokens_per_s(self) -> float:
        return self.n_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class LoadedModel:
    model: object  # transformers PreTrainedModel
    tokenizer: object
    device: str
    model_id: str  # e.g. "SmolLM2-135M-Instruct.Q4_1 (fp16 linears)"


_LOADED: dict[tuple, LoadedModel] = {}
_TOKENIZERS: dict[str, object] = {}
_LOAD_LOCK = threading.Lock()


def load_model(path: str = "", device: str | None = None, fast: bool | None = None) -> LoadedModel:
    """The generator model, loaded once per process for each (path, device, fast)."""
    source = generator_path(path)
    device = device or default_device()
    fast = (device == "cpu") if fast is None else fast
    key = (str(source), device, fast)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = _load(source, device, fast)
        return _LOADED[key]


def load_tokenizer(path: str = ""):
    """The generator's tokenizer alone (for counting tokens), without loading the model's weights."""
    from transformers import AutoTokenizer

    source = generator_path(path)
    folder = cached_copy(source) if source.suffix == ".gguf" else source
    with _LOAD_LOCK:
        key = str(folder)
        if key not in _TOKENIZERS:
            try:
                _TOKENIZERS[key] = AutoTokenizer.from_pretrained(folder)
            except (OSError, ValueError) as e:
                raise ModelMissing(f"The language model at {source} could not be loaded ({e}). Fix the 'generator_path' setting.") from None
        return _TOKENIZERS[key]


def load_private(path: str = "", device: str | None = None) -> LoadedModel:
    """A float32 copy of the generator that belongs to the caller alone (not the shared one), for
    training or for merging an adapter into: changing it never changes the other answer paths."""
    return _load(generator_path(path), device or default_device(), fast=False)


def _load(source: Path, device: str, fast: bool) -> LoadedModel:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # "Loading weights" bars are not the owner's business
    folder = cached_copy(source) if source.suffix == ".gguf" else source
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    except (OSError, ValueError) as e:
        raise ModelMissing(f"The language model at {source} could not be loaded ({e}). Fix the 'generator_path' setting.") from None
    model.to(device).eval()
    name = source.stem if source.suffix == ".gguf" else source.name
    if fast:
        half_linears(model)
        name += " (fp16 linears)"
    return LoadedModel(model, tokenizer, device, name)


def cached_copy(gguf: Path) -> Path:
    """A safetensors copy of a GGUF model in the cache folder, made on first use. The folder name
    carries a fingerprint of the file, so a different GGUF never reuses a stale copy."""
    h = hashlib.sha256(f"{gguf.name}:{gguf.stat().st_size}".encode())
    with open(gguf, "rb") as f:
        h.update(f.read(1 << 20))
    target = cache_dir() / "models" / f"{gguf.stem}-{h.hexdigest()[:12]}"
    if (target / "config.json").exists():  # renamed into place whole, so it is complete (one file or shards)
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    # transformers draws a plain tqdm bar ("Converting and de-quantizing GGUF tensors") that no
    # setting turns off; it is not the owner's business.
    with contextlib.redirect_stderr(io.StringIO()):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers refuses to save a model it loaded from GGUF ("quantized with gguf") until the
    # quantizer marker is cleared; the weights are already plain float32 by now.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        os.replace(tmp, target)  # atomic: a crash never leaves a half-written copy in place
    except OSError:  # another process made it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def half_linears(model) -> None:
    """Keep every linear layer's weights in float16 (activations stay float32). The output layer is
    untied from the input embeddings first, so the embeddings keep full precision."""
    import torch

    class HalfLinear(torch.nn.Module):
        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            self.register_buffer("weight", linear.weight.detach().to(torch.float16).contiguous())
            self.bias = linear.bias
            self.in_features, self.out_features = linear.in_features, linear.out_features

        def forward(self, x):
            if x.numel() // x.shape[-1] > 1:
                # Many rows (the prompt): compute-bound, and float32 matmuls are far faster on CPU.
                y = torch.nn.functional.linear(x, self.weight.to(x.dtype))
            else:
                # One row (each decoded token): memory-bound, so reading half the bytes wins.
                y = torch.nn.functional.linear(x.to(torch.float16), self.weight).to(x.dtype)
            return y if self.bias is None else y + self.bias

    head = model.get_output_embeddings()
    if head is not None and head.weight is model.get_input_embeddings().weight:
        untied = torch.nn.Linear(head.in_features, head.out_features, bias=False)
        untied.weight = torch.nn.Parameter(head.weight.detach().clone())
        model.set_output_embeddings(untied)

    def swap(module):
        for name, child in module.named_children():
            if isinstance(child, torch.nn.Linear):
                setattr(module, name, HalfLinear(child))
            else:
                swap(child)

    swap(model)


def llama_file(source: Path) -> Path:
    """The GGUF file llama.cpp runs for a generator file. For the packaged SmolLM2 it is an f16 GGUF
    made once from the float32 copy: llama.cpp on the packaged Q4_1 file changes the greedy text
    (its kernels round the activations to 8 bits), the f16 file gives transformers' text, and reads
    prompts faster (bench/generate.py). Any other GGUF runs as it is."""
    if source != smollm2_path():
        return source
    from rag import convert

    folder = cached_copy(source)
    return convert.hf_to_gguf(folder, folder.with_name(folder.name + "-f16.gguf"), "f16")


def llama_name(source: Path) -> str:
    """The model's name as answers report it: "SmolLM2-135M-Instruct (f16)" for the converted file."""
    return f"{source.stem.split('.')[0]} (f16)" if source == smollm2_path() else source.stem


class TransformersEngine:
    """Greedy decoding with a transformers model, in the caller's thread."""

    def __init__(self, loaded: LoadedModel):
        import torch

        self.loaded = loaded
        self.model_id, self.device = loaded.model_id, loaded.device
        self.threads = torch.get_num_threads()
        self.last: dict = {}

    def prompt_ids(self, messages: list[dict]):
        tok = self.loaded.tokenizer
        ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
        if not hasattr(ids, "shape"):  # newer transformers return a BatchEncoding
            ids = ids["input_ids"]
        return ids.to(self.loaded.device)

    def stream_counted(self, messages: list[dict], max_new_tokens: int, min_new_tokens: int = 0) -> Iterator[tuple[str, int]]:
        """Why not `generate` with TextIteratorStreamer: that needs `generate` in a worker thread, and on
        2 cores torch ran it there at half the speed of the same call in the calling thread (41
        tokens after a 431-token prompt: 4.4 s against 2.4 s). This loop is greedy `generate`
        written out: same tokens, in the caller's thread."""
        import torch

        loaded = self.loaded
        model, tokenizer = loaded.model, loaded.tokenizer
        eos = model.generation_config.eos_token_id
        eos = {eos} if isinstance(eos, int) else set(eos or [tokenizer.eos_token_id])
        x = self.prompt_ids(messages)
        start = time.perf_counter()
        past, tokens, shown = None, [], ""
        with torch.inference_mode():
            for step in range(max_new_tokens):
                out = model(input_ids=x, past_key_values=past, use_cache=True)
                past, logits = out.past_key_values, out.logits[0, -1]
                if step == 0:
                    self.last = {"prompt_tokens": int(x.shape[1]), "cached_tokens": 0,
                                 "first_token_s": time.perf_counter() - start}
                if step < min_new_tokens:
                    logits[list(eos)] = float("-inf")
                token = int(logits.argmax())
                if token in eos:
                    break
                tokens.append(token)
                text = tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)
                if not text.endswith("\ufffd"):  # not in the middle of a multi-byte character
                    piece, shown = text[len(shown):], text
                    if piece:
                        yield piece, len(tokens)
                x = torch.tensor([[token]], device=loaded.device)
        rest = tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)[len(shown):]
        if rest:
            yield rest, len(tokens)


    def yes_probability(self, messages: list[dict]) -> float:
        """P("yes") against P("no") as the reply's first token (rag.llama.LlamaEngine.yes_probability)."""
        import torch

        from rag.llama import _yes_share, answer_tokens

        tokenizer = self.loaded.tokenizer
        if not hasattr(self, "_yes_no"):
            self._yes_no = answer_tokens(lambda word: tokenizer.encode(word, add_special_tokens=False))
        ids, start = self.prompt_ids(messages), time.perf_counter()
        with torch.inference_mode():
            logits = self.loaded.model(input_ids=ids).logits[0, -1]
        self.last = {"prompt_tokens": int(ids.shape[1]), "cached_tokens": 0, "first_token_s": time.perf_counter() - start}
        return _yes_share(logits.float().cpu().numpy(), self._yes_no)


BACKENDS = ("auto", "llama.cpp", "transformers")


class Generator:
    """Greedy chat completion with the shared model. Cheap to build; the model loads on first use.

    backend "auto" runs GGUF files on llama.cpp and model folders on transformers; `engine` is an
    engine the caller built (a fine-tuned model)."""

    def __init__(self, path: str = "", device: str | None = None, fast: bool | None = None,
                 engine=None, backend: str = "auto", threads: int = 0, context_tokens: int = 4096):
        if backend not in BACKENDS:
            raise BadInput(f"Unknown engine {backend!r}. Choose from: {', '.join(BACKENDS)}.")
        self.path, self.device, self.fast = path, device, fast
        self.backend, self.threads, self.context_tokens = backend, threads, context_tokens
        self._engine = engine

    @classmethod
    def for_settings(cls, settings, **kw) -> "Generator":
        """The answer writer the settings name: a model server (model_server_url), else the model here."""
        if settings.models.model_server_url and "engine" not in kw:
            from rag.remote import ServerEngine

            kw["engine"] = ServerEngine(settings.models.model_server_url, settings.models.model_server_model,
                                        timeout_s=settings.models.model_server_timeout_s)
        return cls(settings.models.generator, threads=settings.models.threads, context_tokens=settings.models.context_tokens, **kw)

    @property
    def engine(self):
        if self._engine is None:
            source = generator_path(self.path)
            if self.backend == "llama.cpp" or (self.backend == "auto" and source.suffix == ".gguf"):
                from rag import llama

                if source.suffix != ".gguf":
                    raise BadInput(f"llama.cpp runs .gguf files; {source} is a model folder. Use the transformers engine for it.")
                self._engine = llama.load(llama_file(source), None, self.threads, self.context_tokens, llama_name(source))
            else:
                self._engine = TransformersEngine(load_model(self.path, self.device, self.fast))
        return self._engine

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    def stream(self, messages: list[dict], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> Iterator[str]:
        """Text pieces as they are generated. Joined, they equal `complete(...).text`."""
        for piece, _ in self.stream_counted(messages, max_new_tokens):
            if piece:
                yield piece

    def complete(self, messages: list[dict], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, min_new_tokens: int = 0) -> Completion:
        start = time.perf_counter()
        first = None
        pieces: list[str] = []
        n_tokens = 0
        for piece, n_tokens in self.stream_counted(messages, max_new_tokens, min_new_tokens):
            if first is None:
                first = time.perf_counter() - start
            pieces.append(piece)
        seconds = time.perf_counter() - start
        return Completion("".join(pieces).strip(), n_tokens, seconds, first or seconds)

    def yes_probability(self, messages: list[dict]) -> float | None:
        """How likely the model's reply to these messages starts with "yes" rather than "no" (0..1),
        without writing the reply; None when the engine cannot tell (a model server that gives no
        log-probabilities)."""
        ask = getattr(self.engine, "yes_probability", None)
        return ask(messages) if ask is not None else None

    def stream_counted(self, messages: list[dict], max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                       min_new_tokens: int = 0) -> Iterator[tuple[str, int]]:
        """(text piece, tokens so far), greedy. A caller that stops reading early (closes the
        iterator) stops the decoding with it."""
        if max_new_tokens < 1:
            raise BadInput(f"max_new_tokens must be at least 1, not {max_new_tokens}.")
        return self.engine.stream_counted(messages, max_new_tokens, min_new_tokens)
