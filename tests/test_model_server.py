"""Answers from a model server: a real OpenAI-compatible server (llama-cpp-python's
`llama_cpp.server`, on loopback, with the packaged SmolLM2) writes the rag path's answers and an
evaluation's, with the same Answer records as the model in the process; a server that is down or
refuses gets one plain sentence."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import free_port, sample_kb, wait_for_http

from compare.evaluate import evaluate
from compare.paths import build
from rag.questions import load as load_questions
from kb.errors import BadInput
from kb.process import Process
from kb.settings import Settings
from kb.store import Store
from rag.answer import RagPath
from rag.remote import ModelServerError, ServerEngine

QUESTIONS = ["How much is a private lesson for one person?", "How much is a guest pass?"]


@pytest.fixture(scope="module")
def model_server(model_cache):
    """`python -m llama_cpp.server` with the f16 SmolLM2 file the in-process engine runs."""
    from kb.models import smollm2_path
    from rag.generate import llama_file

    gguf = llama_file(smollm2_path())
    port = free_port()
    with Process([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2",
                  "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]) as server:
        wait_for_http(f"http://127.0.0.1:{port}/v1/models", server)
        yield f"http://127.0.0.1:{port}/v1"
        server.stop(grace_s=30)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return sample_kb(tmp_path_factory.mktemp("server"), 4, "price_list.md")


def test_the_rag_path_writes_through_the_model_server_as_it_would_here(kb, model_server, generator):
    served = Settings(model_server_url=model_server, model_server_model="smollm2", max_new_tokens=60)
    assert not served.quotes and served.profile_in_use == "custom"  # a server writes: nothing to quote
    here = Settings(rag_writer="model", max_new_tokens=60)
    with Store(kb) as store:
        remote = RagPath(store, served)
        local = RagPath(store, here, generator=generator)
        for question in QUESTIONS:
            a, b = remote.answer(question), local.answer(question)
            assert a.method == "generated" and a.citations and a.n_tokens > 0, a
            assert "model server" in a.model and a.generation_ms > 0
            assert a.text == b.text  # greedy on the same file: the same answer
        pieces = list(remote.stream(QUESTIONS[0]))
        assert "".join(p for p in pieces[:-1]) == pieces[-1].text


def test_an_evaluation_runs_through_the_model_server(kb, model_server, tmp_path):
    file = tmp_path / "q.jsonl"
    file.write_text("\n".join(json.dumps({"question": q, "expected": e}) for q, e in
                              zip(QUESTIONS, [["$80"], ["$20"]])) + "\n")
    settings = Settings(model_server_url=model_server, model_server_model="smollm2", max_new_tokens=60)
    with Store(kb) as store:
        paths = build(store, settings, ["rag", "base"])
        result = evaluate(load_questions(file), paths, store, settings)
    assert set(result.evaluated()) == {"rag", "base"} and result.profile == "custom"
    assert all("model server" in m for m in result.models.values())
    assert result.paths["rag"].latency_p50_ms > 0


def test_a_server_that_is_down_or_misnamed_gets_a_plain_sentence(model_server):
    down = ServerEngine(f"http://127.0.0.1:{free_port()}/v1", "smollm2", timeout_s=5)
    with pytest.raises(ModelServerError, match="kbchat cannot reach the model server at http://127.0.0.1"):
        list(down.stream_counted([{"role": "user", "content": "Hi"}], 5))
    wrong_place = ServerEngine(model_server.removesuffix("/v1") + "/nothing", "smollm2", timeout_s=5)
    with pytest.raises(ModelServerError, match="has no model 'smollm2' \\(or no chat API at this address\\)"):
        list(wrong_place.stream_counted([{"role": "user", "content": "Hi"}], 5))
    with pytest.raises(BadInput, match="'model_server_model' is empty"):
        Settings(model_server_url=model_server)
    with pytest.raises(BadInput, match="must be a web address"):
        Settings(model_server_url="localhost:8080", model_server_model="x")
