"""The model-server engine: answers written by any OpenAI-compatible server (llama.cpp's server,
llama-cpp-python's `llama_cpp.server`, Ollama, vLLM, a hosted API) instead of a model in this
process, so several kbchat workers can share one model server. It speaks the chat completions API
through the `openai` client: greedy (temperature 0), streamed, with the same (piece, tokens so far)
stream as the in-process engines, and every failure turned into one plain sentence.

    >>> engine = ServerEngine("http://127.0.0.1:8080/v1", "smollm2")      # doctest: +SKIP
    >>> "".join(p for p, _ in engine.stream_counted([{"role": "user", "content": "Hi"}], 20))  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from typing import Iterator

from kb.errors import KbchatError

KEY_ENV = "KBCHAT_MODEL_SERVER_KEY"  # the server's API key, kept out of settings.toml


class ModelServerError(KbchatError):
    """The model server could not be reached, refused, or failed."""


class ServerEngine:
    """Chat completions from an OpenAI-compatible server. `extra` is sent with every request (a
    server's own options, like llama.cpp's per-request LoRA adapter)."""

    device = "server"
    threads = 0

    def __init__(self, url: str, model: str, key: str = "", timeout_s: float = 60.0, extra: dict | None = None,
                 name: str = ""):
        from openai import OpenAI

        self.url, self.model = url.rstrip("/"), model
        self.extra = extra or {}
        # max_retries 0: a visitor waits for one try; the answer timeout and the busy reply do the rest.
        self.client = OpenAI(base_url=self.url, api_key=key or os.environ.get(KEY_ENV) or "not-needed",
                             timeout=timeout_s, max_retries=0)
        self.model_id = f"{name or model} (model server {self.url})"
        self.last: dict = {}

    def stream_counted(self, messages: list[dict], max_new_tokens: int, min_new_tokens: int = 0) -> Iterator[tuple[str, int]]:
        """(text piece, tokens so far). The server counts tokens in its final usage report where it
        sends one; until then each streamed piece counts as one token (servers send one token a piece).
        `min_new_tokens` is not part of the API and is ignored."""
        import openai

        extra = self.request_extra()
        start = time.perf_counter()
        try:
            stream = self.client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=max_new_tokens, temperature=0.0, stream=True,
                stream_options={"include_usage": True}, extra_body=extra or None)
        except openai.OpenAIError as e:
            raise ModelServerError(self._words(e)) from None
        n, first = 0, None
        try:
            for chunk in stream:
                usage = getattr(chunk, "usage", None)
                for choice in chunk.choices or []:
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        n += 1
                        if first is None:
                            first = time.perf_counter() - start
                            self.last = {"prompt_tokens": None, "cached_tokens": None, "first_token_s": first}
                        yield piece, n
                if usage is not None and usage.completion_tokens:
                    n = usage.completion_tokens
                    self.last["prompt_tokens"] = usage.prompt_tokens
        except openai.OpenAIError as e:
            raise ModelServerError(self._words(e)) from None
        finally:
            stream.close()  # a caller that stops reading stops the server's decoding too

    def yes_probability(self, messages: list[dict]) -> float | None:
        """P("yes") against P("no") as the reply's first token, from the server's log-probabilities
        of its 20 likeliest first tokens (llama.cpp's server, vLLM and OpenAI give them); None when
        the server gives none, or neither word is among them."""
        import math

        import openai

        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=messages, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20,
                extra_body=self.request_extra() or None)
        except openai.OpenAIError as e:
            raise ModelServerError(self._words(e)) from None
        content = (reply.choices[0].logprobs.content or []) if reply.choices and reply.choices[0].logprobs else []
        if not content:
            return None
        yes = no = 0.0
        for top in content[0].top_logprobs or []:
            word = top.token.strip().lower()
            if word in ("yes", "no"):
                p = math.exp(top.logprob)
                yes, no = (yes + p, no) if word == "yes" else (yes, no + p)
        return yes / (yes + no) if yes + no > 0 else None

    def request_extra(self) -> dict:
        """The server's own options for the next request (a subclass may look them up each time)."""
        return self.extra

    def _words(self, e: Exception) -> str:
        """What went wrong, for the owner: where, why, and which setting to look at."""
        import openai

        where = f"the model server at {self.url}"
        if isinstance(e, openai.APITimeoutError):
            return (f"{where} did not answer in time. It may be busy or loading the model; try again, or raise "
                    "the 'model_server_timeout_s' setting.")
        if isinstance(e, openai.APIConnectionError):
            return (f"kbchat cannot reach {where}. Check that the server runs and that the 'model_server_url' "
                    "setting is its address (usually ending in /v1).")
        if isinstance(e, openai.AuthenticationError | openai.PermissionDeniedError):
            return f"{where} refused kbchat's key. Set the right key in ${KEY_ENV}."
        if isinstance(e, openai.NotFoundError):
            return (f"{where} has no model {self.model!r} (or no chat API at this address). Set 'model_server_model' "
                    "to a model the server lists.")
        if isinstance(e, openai.RateLimitError):
            return f"{where} says too many requests; try again in a moment."
        if isinstance(e, openai.APIStatusError):
            detail = str(getattr(e, "message", "") or "")[:200]
            return f"{where} answered with an error (HTTP {e.status_code}): {detail}"
        return f"{where} failed: {type(e).__name__}: {str(e)[:200]}"
