"""The shared language model: the cached safetensors copy, the fast fp16-linear variant,
streaming. Real packaged SmolLM2, converted once per test session into a temporary cache."""

from __future__ import annotations

import pytest
import torch

from kb.errors import BadInput
from kb.models import generator_path
from rag import generate

MESSAGES = [
    {"role": "system", "content": "You answer customer questions for a pottery studio using only the sources."},
    {"role": "user", "content": "Sources:\n[1] We are open Tuesday to Friday from 10 am to 9 pm, Saturday 9 am to 6 pm.\n\n"
                                "Question: When are you open on Saturday?"},
]


def _logits(model, tokenizer, messages):
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    ids = ids if hasattr(ids, "shape") else ids["input_ids"]
    with torch.inference_mode():
        return model(ids).logits[0, -1]


def test_cached_copy_gives_the_same_logits_as_the_gguf(model_cache, generator):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = generator_path()
    folder = generate.cached_copy(gguf)
    assert folder.parent == model_cache / "models" and (folder / "model.safetensors").exists()
    assert generate.cached_copy(gguf) == folder  # made once, then reused
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    copy = generate.load_model(device="cpu", fast=False)
    assert torch.allclose(_logits(original, tok, MESSAGES), _logits(copy.model, copy.tokenizer, MESSAGES), atol=1e-5)


def test_fast_variant_keeps_the_prediction(generator):
    exact = generate.load_model(device="cpu", fast=False)
    a = _logits(exact.model, exact.tokenizer, MESSAGES)
    b = _logits(generator.loaded.model, generator.loaded.tokenizer, MESSAGES)
    assert a.argmax() == b.argmax()
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.999
    assert "fp16 linears" in generator.model_id


def test_models_load_once_per_process(generator):
    assert generate.load_model(device="cpu") is generator.loaded


def test_complete_answers_from_the_prompt_and_stops(generator):
    result = generator.complete(MESSAGES, max_new_tokens=64)
    assert "9 am to 6 pm" in result.text
    assert 0 < result.n_tokens < 64  # stopped at end of turn, not at the limit
    assert 0 < result.first_token_s <= result.seconds and result.tokens_per_s > 0


def test_stream_yields_the_same_text_as_the_whole_answer(generator):
    pieces = list(generator.stream(MESSAGES, max_new_tokens=40))
    assert len(pieces) > 3
    assert "".join(pieces).strip() == generator.complete(MESSAGES, max_new_tokens=40).text


def test_token_limit_is_checked(generator):
    with pytest.raises(BadInput, match="max_new_tokens must be at least 1, not 0"):
        generator.complete(MESSAGES, max_new_tokens=0)
    assert generator.complete(MESSAGES, max_new_tokens=3).n_tokens == 3


def test_closing_a_stream_early_stops_the_decoding(generator):
    """Decoding runs in the caller's thread: closing the stream leaves nothing running."""
    import threading
    import time

    before = threading.active_count()
    stream = generator.stream_counted(MESSAGES, max_new_tokens=200, min_new_tokens=200)
    next(stream)
    start = time.perf_counter()
    stream.close()  # joins the decoding thread: it must stop at the next token, not after 200
    assert time.perf_counter() - start < 5
    assert threading.active_count() == before


def test_min_new_tokens_forces_the_length(generator):
    assert generator.complete(MESSAGES, max_new_tokens=20, min_new_tokens=20).n_tokens == 20


def test_streaming_gives_the_same_tokens_as_greedy_generate(generator):
    loaded = generator.loaded
    ids = generator.prompt_ids(MESSAGES)
    with torch.inference_mode():
        out = loaded.model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=40, do_sample=False,
                                    pad_token_id=loaded.tokenizer.eos_token_id)
    expected = loaded.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
    assert generator.complete(MESSAGES, max_new_tokens=40).text == expected
