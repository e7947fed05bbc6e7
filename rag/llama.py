"""The llama.cpp engine (llama-cpp-python): GGUF models with their native quantized kernels, and
fine-tuned adapters as GGUF LoRA files applied when the model is built.

One model object per (file, adapter, threads, context) per process. A llama.cpp context is not
thread-safe, so calls take turns behind a first-come-first-served lock; on 2 cores parallel slots
gave no more throughput and slower first tokens for everyone. The context keeps the tokens it last
read, and a prompt that starts the same way (the chat template, a fixed instruction) is read only
from where it differs.

    >>> engine = load("model.gguf")                                    # doctest: +SKIP
    >>> "".join(p for p, _ in engine.stream_counted([{"role": "user", "content": "Hi"}], 20))  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import contextlib
import io
import threading
import time
import weakref
from collections import OrderedDict, deque
from pathlib import Path
from typing import Iterator

from kb.errors import BadInput, ModelMissing
from rag import cores

# The free cores are looked at again for a prompt that comes after the model was idle this long (a
# new answer: its check and its writing, read back to back, share one look), and at least this often.
IDLE_S, LOOK_EVERY_S = 0.5, 15.0


class FairLock:
    """A lock handed out in the order it was asked for (threading.Lock makes no such promise, and a
    visitor's answer must not wait behind later ones)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def __enter__(self):
        with self._lock:
            if not self._held and not self._waiters:
                self._held = True
                return self
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()
        return self

    def __exit__(self, *exc):
        with self._lock:
            if self._waiters:
                self._waiters.popleft().set()  # ownership passes straight to the next in line
            else:
                self._held = False


def default_threads() -> int:
    """The most threads llama.cpp runs when the `threads` setting is 0: every core this process may
    use (fewer while other work keeps some busy, rag.cores)."""
    return max(1, len(cores.allowed_cpus()))


class LlamaEngine:
    """Greedy chat completion with one GGUF model (and optionally one LoRA adapter)."""

    def __init__(self, model_file: Path, lora_file: Path | None = None, threads: int = 0, context_tokens: int = 4096,
                 name: str = ""):
        from llama_cpp import Llama, llama_supports_gpu_offload

        gpu = llama_supports_gpu_offload()
        self.threads = threads or default_threads()
        # threads 0 (the default): before each prompt, as many as other work leaves cores free
        # (rag.cores); a number fixes it. A GPU does the work itself.
        self.fit_threads = not threads and not gpu
        self._threads_now = self.threads
        self._looked_at = self._used_until = float("-inf")
        # No flash attention: on 2 cores it read SmolLM2's prompts 19% faster but decoded 30% slower
        # (whole answers 2.1-2.6 s -> 2.7-2.9 s); Qwen2.5-Coder-1.5B was the same either way.
        self.context_tokens = context_tokens
        try:
            # llama.cpp reports each adapter tensor it keeps in plain memory ("cannot use buft
            # 'CPU_REPACK', fallback to CPU"), even when not verbose: not the owner's business.
            with contextlib.redirect_stderr(io.StringIO()):
                self.llm = Llama(
                    str(model_file), n_ctx=context_tokens, n_threads=self.threads, n_threads_batch=self.threads,
                    n_gpu_layers=-1 if gpu else 0,
                    lora_path=str(lora_file) if lora_file else None, verbose=False,
                )
        except (ValueError, RuntimeError) as e:
            raise ModelMissing(f"llama.cpp could not load the model {model_file}{' with the adapter ' + str(lora_file) if lora_file else ''} "
                               f"({e}). Check that it is a complete GGUF file, or fix the 'generator_path' setting.") from None
        _OPEN.add(self.llm)
        self.device = "cuda" if gpu else "cpu"
        where = "GPU" if self.device == "cuda" else \
            f"{'up to ' * (self.fit_threads and self.threads > 1)}{self.threads} thread{'s' * (self.threads > 1)}"
        self.model_id = f"{name or model_file.stem} (llama.cpp, {where})"
        self.lock = FairLock()
        self.last: dict = {}  # the last call's prompt_tokens, cached_tokens, first_token_s
        self._formatter = self._chat_formatter(model_file)
        self._eog = self._end_tokens()  # a list to index the logits with, and a set to look tokens up in
        self._ends = frozenset(self._eog)

    def _fit_threads(self) -> None:
        """With the threads setting at 0, run on the cores other work leaves free (rag.cores): looked
        at after the model was idle for IDLE_S, and every LOOK_EVERY_S. Called with the lock held."""
        now = time.monotonic()
        if not self.fit_threads or (now - self._used_until < IDLE_S and now - self._looked_at < LOOK_EVERY_S):
            return
        n = cores.threads_for(self.threads)
        self._looked_at = time.monotonic()
        if n != self._threads_now:
            self.llm._ctx.set_n_threads(n, n)
            self._threads_now = n

    def _chat_formatter(self, model_file: Path):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelMissing(f"The model {model_file} has no chat template, so kbchat cannot ask it questions. "
                               "Use an instruction-tuned (chat) GGUF model.")
        special = lambda token: self.llm.detokenize([token], special=True).decode("utf-8", "replace") if token >= 0 else ""  # noqa: E731
        return Jinja2ChatFormatter(template, eos_token=special(self.llm.token_eos()), bos_token=special(self.llm.token_bos()))

    def _end_tokens(self) -> list[int]:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        return [t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        formatted = self._formatter(messages=messages)
        return self.llm.tokenize(formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True)

    def stream_counted(self, messages: list[dict], max_new_tokens: int, min_new_tokens: int = 0) -> Iterator[tuple[str, int]]:
        """(text piece, tokens so far), greedy. Closing the iterator stops the decoding and frees the
        model for the next caller."""
        import numpy as np

        tokens = self.prompt_tokens(messages)
        room = self.context_tokens - len(tokens)
        if room < 1:
            raise BadInput(f"The question and its passages are {len(tokens):,} tokens, more than the model's context of "
                           f"{self.context_tokens:,}. Raise the 'context_tokens' setting or lower 'top_k' or 'chunk_size'.")
        limit = min(max_new_tokens, room)
        eog, ends = self._eog, self._ends
        out: list[int] = []

        def hold_end(_, scores):  # min_new_tokens: the answer may not end before it has that many
            if len(out) < min_new_tokens:
                scores[eog] = -np.inf
            return scores

        with self.lock:
            self._fit_threads()
            llm = self.llm
            cached = _common_prefix(llm, tokens)
            start = time.perf_counter()
            shown = ""
            decoding = llm.generate(tokens, temp=0.0, top_k=1, top_p=1.0, min_p=0.0, repeat_penalty=1.0,
                                    logits_processor=[hold_end] if min_new_tokens else None)
            try:
                for token in decoding:
                    if not out:
                        self.last = {"prompt_tokens": len(tokens), "cached_tokens": cached,
                                     "first_token_s": time.perf_counter() - start, "threads": self._threads_now}
                    if token in ends:
                        break
                    out.append(token)
                    text = _text(llm, out)
                    if text is not None and len(text) > len(shown):
                        yield text[len(shown):], len(out)
                        shown = text
                    if len(out) >= limit:
                        break
                rest = llm.detokenize(out).decode("utf-8", "replace")[len(shown):]
                if rest:
                    yield rest, len(out)
            finally:
                decoding.close()
                self._used_until = time.monotonic()


    def yes_probability(self, messages: list[dict]) -> float:
        """P(the reply starts with "yes") against "no", read from the logits of the prompt's last
        position: one pass over the prompt and no token decoded. The context keeps what it read, so
        a prompt that shares its start (the writer's, read right after) is read only from where
        they differ. llama-cpp-python gives log-probabilities only with logits_all, which copies the
        whole vocabulary's logits for every prompt token; one position is all this needs."""
        import llama_cpp
        import numpy as np

        tokens = self.prompt_tokens(messages)
        if len(tokens) >= self.context_tokens:
            raise BadInput(f"The question and its passages are {len(tokens):,} tokens, more than the model's context of "
                           f"{self.context_tokens:,}. Raise the 'context_tokens' setting or lower 'top_k' or 'chunk_size'.")
        with self.lock:
            self._fit_threads()
            llm = self.llm
            keep = min(_common_prefix(llm, tokens), len(tokens) - 1)  # the last token is read again for its logits
            if keep > 0 and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
                llm.n_tokens = keep
            else:
                llm.reset()
                keep = 0
            start = time.perf_counter()
            llm.eval(tokens[keep:])
            self.last = {"prompt_tokens": len(tokens), "cached_tokens": keep, "first_token_s": time.perf_counter() - start,
                         "threads": self._threads_now}
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1), shape=(llm.n_vocab(),))
            self._used_until = time.monotonic()
            return _yes_share(logits, self._answer_tokens())

    def _answer_tokens(self) -> tuple[list[int], list[int]]:
        if not hasattr(self, "_yes_no"):
            self._yes_no = answer_tokens(lambda word: self.llm.tokenize(word.encode(), add_bos=False, special=False))
        return self._yes_no


def answer_tokens(tokenize) -> tuple[list[int], list[int]]:
    """The single-token spellings of "yes" and of "no" in a vocabulary (Yes, yes, " yes", YES...)."""
    out: tuple[list[int], list[int]] = ([], [])
    for ids, word in zip(out, ("yes", "no")):
        for spelling in {word, word.capitalize(), word.upper(), " " + word, " " + word.capitalize()}:
            found = tokenize(spelling)
            if len(found) == 1 and found[0] not in ids:
                ids.append(found[0])
    return out


def _yes_share(logits, yes_no: tuple[list[int], list[int]]) -> float:
    """P(yes) / (P(yes) + P(no)) from one position's logits."""
    import numpy as np

    z = logits.astype(np.float64)
    z = np.exp(z - z.max())
    yes, no = float(z[yes_no[0]].sum()), float(z[yes_no[1]].sum())
    return yes / (yes + no) if yes + no > 0 else 0.5


def _common_prefix(llm, tokens: list[int]) -> int:
    """How many of these prompt tokens the context already holds (llama.cpp reads only the rest)."""
    held = llm.input_ids[: llm.n_tokens]
    n = 0
    for a, b in zip(held, tokens):
        if a != b:
            break
        n += 1
    return n


def _text(llm, tokens: list[int]) -> str | None:
    """The text of the tokens so far, or None while it ends inside a multi-byte character."""
    text = llm.detokenize(tokens).decode("utf-8", "replace")
    return None if text.endswith("\ufffd") else text


# Models kept in memory, most recently used last: the shared base model of each file, and the last
# two fine-tuned ones (each a whole model: the app and the server live while the owner trains).
KEEP_TUNED = 2
_ENGINES: dict[tuple, LlamaEngine] = {}
_TUNED: OrderedDict[tuple, LlamaEngine] = OrderedDict()
_LOCK = threading.Lock()
_OPEN: "weakref.WeakSet" = weakref.WeakSet()  # every llama.cpp model this process built


@atexit.register
def _close_all() -> None:
    """Free the models while Python still runs: left to the interpreter's last clean-up,
    llama-cpp-python's own __del__ finds its library half torn down and prints a traceback per model."""
    for llm in list(_OPEN):
        with contextlib.suppress(Exception):
            llm.close()


def load(model_file: Path, lora_file: Path | None = None, threads: int = 0, context_tokens: int = 4096,
         name: str = "") -> LlamaEngine:
    """The engine for this model (and adapter), built once per process."""
    key = (str(model_file), str(lora_file or ""), threads, context_tokens)  # 0 (fitted to the load) is not a fixed count
    with _LOCK:
        if lora_file is None:
            if key not in _ENGINES:
                _ENGINES[key] = LlamaEngine(model_file, None, threads, context_tokens, name)
            return _ENGINES[key]
        if key in _TUNED:
            _TUNED.move_to_end(key)
        else:
            while len(_TUNED) >= KEEP_TUNED:
                _TUNED.popitem(last=False)  # answer paths still holding it keep it until they go
            _TUNED[key] = LlamaEngine(model_file, lora_file, threads, context_tokens, name)
        return _TUNED[key]
