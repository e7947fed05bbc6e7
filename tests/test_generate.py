"""The shared language model on both engines: llama.cpp for GGUF files (the default), transformers
for model folders. Real packaged SmolLM2 (converted once per test session into a temporary cache)
and the real packaged Qwen2.5-Coder-1.5B."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from kb.errors import BadInput
from kb.models import generator_path
from rag import cores, generate, llama

MESSAGES = [
    {"role": "system", "content": "You answer customer questions for a pottery studio using only the sources."},
    {"role": "user", "content": "Sources:\n[1] We are open Tuesday to Friday from 10 am to 9 pm, Saturday 9 am to 6 pm.\n\n"
                                "Question: When are you open on Saturday?"},
]
LONG = [{"role": "user", "content": "Write a long story about a potter who opens a studio."}]


def _logits(model, tokenizer, messages):
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    ids = ids if hasattr(ids, "shape") else ids["input_ids"]
    with torch.inference_mode():
        return model(ids).logits[0, -1]


@pytest.fixture(scope="module")
def plain(model_cache):
    """SmolLM2 on transformers (float32): the training model, and the reference for llama.cpp."""
    return generate.Generator(device="cpu", backend="transformers", fast=False)


@pytest.fixture(params=["llama.cpp", "transformers"])
def engine_generator(request, generator, plain):
    return generator if request.param == "llama.cpp" else plain


def test_gguf_models_answer_on_llama_cpp(generator):
    assert isinstance(generator.engine, llama.LlamaEngine)
    # the packaged SmolLM2 runs as an f16 GGUF made from the float32 copy (see generate.llama_file)
    assert generator.engine.llm.model_path.endswith("-f16.gguf")
    assert generate.Generator(device="cpu").engine is generator.engine  # loaded once per process


def test_cached_copy_gives_the_same_logits_as_the_gguf(model_cache, plain):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = generator_path()
    folder = generate.cached_copy(gguf)
    assert folder.parent == model_cache / "models" and (folder / "model.safetensors").exists()
    assert generate.cached_copy(gguf) == folder  # made once, then reused
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    copy = plain.engine.loaded
    assert torch.allclose(_logits(original, tok, MESSAGES), _logits(copy.model, copy.tokenizer, MESSAGES), atol=1e-5)


def test_fast_transformers_variant_keeps_the_prediction(plain):
    fast = generate.Generator(device="cpu", backend="transformers", fast=True)
    a = _logits(plain.engine.loaded.model, plain.engine.loaded.tokenizer, MESSAGES)
    b = _logits(fast.engine.loaded.model, fast.engine.loaded.tokenizer, MESSAGES)
    assert a.argmax() == b.argmax()
    assert torch.nn.functional.cosine_similarity(a, b, dim=0) > 0.999
    assert "fp16 linears" in fast.model_id


def test_llama_cpp_reads_the_same_prompt_as_transformers(generator, plain):
    assert generator.engine.prompt_tokens(MESSAGES) == plain.engine.prompt_ids(MESSAGES)[0].tolist()


def test_complete_answers_from_the_prompt_and_stops(engine_generator):
    result = engine_generator.complete(MESSAGES, max_new_tokens=64)
    assert "9 am to 6 pm" in result.text
    assert 0 < result.n_tokens < 64  # stopped at end of turn, not at the limit
    assert 0 < result.first_token_s <= result.seconds and result.tokens_per_s > 0


def test_stream_yields_the_same_text_as_the_whole_answer(engine_generator):
    pieces = list(engine_generator.stream(LONG, max_new_tokens=40))
    assert len(pieces) > 3
    assert "".join(pieces).strip() == engine_generator.complete(LONG, max_new_tokens=40).text


def test_the_check_reads_the_prompt_once_and_says_what_it_read(engine_generator):
    """yes_probability (the answerability check) on either engine: a probability, and the engine's
    `last` figures (what bench/answers.py reports) name the whole prompt it read and how long it took."""
    p = engine_generator.yes_probability(MESSAGES)
    engine = engine_generator.engine
    last = engine.last
    n = len(engine.prompt_tokens(MESSAGES)) if hasattr(engine, "prompt_tokens") else engine.prompt_ids(MESSAGES).shape[1]
    assert 0.0 <= p <= 1.0 and last["prompt_tokens"] == n and last["first_token_s"] > 0
    assert 0 <= last["cached_tokens"] < n  # the last token is always read again, for its logits


def test_token_limit_is_checked(engine_generator):
    with pytest.raises(BadInput, match="max_new_tokens must be at least 1, not 0"):
        engine_generator.complete(MESSAGES, max_new_tokens=0)
    assert engine_generator.complete(MESSAGES, max_new_tokens=3).n_tokens == 3


def test_min_new_tokens_forces_the_length(engine_generator):
    assert engine_generator.complete(MESSAGES, max_new_tokens=20, min_new_tokens=20).n_tokens == 20


def test_closing_a_stream_stops_the_decoding_and_frees_the_model(generator):
    """Decoding runs in the caller's thread: closing the stream leaves nothing running and hands
    the model to the next caller (who would otherwise wait for the lock forever)."""
    before = threading.active_count()
    stream = generator.stream_counted(LONG, max_new_tokens=200, min_new_tokens=200)
    next(stream)
    stream.close()
    assert threading.active_count() == before
    got = []
    other = threading.Thread(target=lambda: got.append(generator.complete(MESSAGES, max_new_tokens=8)))
    other.start()
    other.join(120)
    assert got and got[0].n_tokens > 0


def test_a_prompt_that_starts_the_same_is_read_only_from_where_it_differs(generator):
    generator.complete(MESSAGES, max_new_tokens=2)
    second = [MESSAGES[0], {"role": "user", "content": MESSAGES[1]["content"].replace("Saturday?", "Friday?")}]
    generator.complete(second, max_new_tokens=2)
    last = generator.engine.last
    assert last["cached_tokens"] > 0.8 * last["prompt_tokens"]


def test_callers_take_turns_in_the_order_they_came():
    lock = llama.FairLock()
    order, ready = [], []
    lock.__enter__()

    def caller(n):
        ready.append(n)
        with lock:
            order.append(n)

    threads = []
    for n in range(5):
        t = threading.Thread(target=caller, args=(n,))
        t.start()
        threads.append(t)
        while len(lock._waiters) < n + 1:  # wait until this caller queues before starting the next
            t.join(0.01)
    lock.__exit__(None, None, None)
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4]


def test_a_prompt_longer_than_the_context_is_refused_with_what_to_change(model_cache):
    small = generate.Generator(device="cpu", context_tokens=512)
    with pytest.raises(BadInput, match="more than the model's context of 512. Raise the 'context_tokens' setting"):
        small.complete([{"role": "user", "content": "word " * 600}], max_new_tokens=10)


def test_the_stronger_packaged_writer_answers_on_llama_cpp(model_cache):
    qwen = generate.Generator("qwen2.5-coder-1.5b-instruct", threads=2)
    assert isinstance(qwen.engine, llama.LlamaEngine)
    result = qwen.complete(MESSAGES, max_new_tokens=40)
    assert "9 am to 6 pm" in result.text and result.n_tokens < 40


def _busy_loops(n: int) -> list[subprocess.Popen]:
    """n other programs, each keeping one core busy; returned once every one of them runs."""
    loops = [subprocess.Popen([sys.executable, "-c", "print('busy', flush=True)\nwhile True: pass"], stdout=subprocess.PIPE)
             for _ in range(n)]
    for loop in loops:
        assert loop.stdout.readline().strip() == b"busy"
    return loops


def test_with_threads_at_0_the_model_runs_on_the_cores_other_work_leaves_free(generator):
    most = llama.default_threads()
    if most < 2:
        pytest.skip("one core: there is no thread to leave out")
    model = generator.engine.llm.model_path
    fitted, fixed = llama.LlamaEngine(Path(model), threads=0), llama.LlamaEngine(Path(model), threads=most)
    loops = _busy_loops(most - 1)  # one core is left free, or none if the machine is busy with more
    try:
        assert fitted.yes_probability(MESSAGES) > 0.0 and fitted.last["threads"] == 1
        fixed.yes_probability(MESSAGES)
        assert fixed.last["threads"] == most  # a number in the setting is kept whatever the load
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    answer = "".join(piece for piece, _ in fitted.stream_counted(MESSAGES, 20))
    assert "9" in answer and 1 <= fitted.last["threads"] <= most


def test_busy_cores_are_read_from_the_kernels_counters():
    # /proc/stat as Linux writes it: user nice system idle iowait irq softirq steal guest guest_nice
    before = "cpu  300 0 100 900 0 0 0 0 0 0\ncpu0 100 0 50 400 0 0 0 0 0 0\ncpu1 200 0 50 500 0 0 0 0 0 0\nintr 1 2\n"
    after = "cpu  500 0 100 1000 0 0 0 0 0 0\ncpu0 100 0 50 500 0 0 0 0 0 0\ncpu1 300 0 50 500 0 0 0 100 90 0\nintr 1 2\n"
    tick = os.sysconf("SC_CLK_TCK")
    a, b = cores.snapshot({0, 1}, before), cores.snapshot({0, 1}, after)
    assert round((b[1] - a[1]) * tick) == 200  # cpu1's user time and the time stolen by another machine; guest is in user
    assert cores.snapshot({0}, after)[1] == cores.snapshot({0}, before)[1]  # cpu0 was idle; other CPUs are not counted
    assert cores.busy_elsewhere((0.0, 5.0, 1.0), (1.0, 6.5, 1.5)) == 1.0  # 1.5 s busy, 0.5 s of it this process's
