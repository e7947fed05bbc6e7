"""Two businesses' fine-tuned models from one model server: each knowledge base trains a real LoRA
adapter on the packaged SmolLM2 with its own FAQ (the same questions, different answers), one
llama.cpp `llama-server` process (started by `kbchat model-server`) keeps both adapters over one
base model, and each knowledge base's tuned paths answer through it with their own facts and never
the other's. An adapter the server does not have gets a plain message with what to run."""

from __future__ import annotations

import csv
import os
import shutil
import socket
from pathlib import Path

import httpx
import pytest
from conftest import Cli, free_port, kbchat_command, wait_for_http

from kb.process import Process
from kb.errors import ModelMissing
from kb.ingest import ingest
from kb.settings import Settings
from kb.store import Store
from rag.answer import BasePath
from rag.remote import KEY_ENV, ModelServerError
from tuning import adapters, served
from tuning.answer import RagTunedPath, TunedPath
from tuning.train import TuneSettings, train

QUESTION = "Where are you located?"
REWORDED = "Could you give me the street address of your shop?"
# Two businesses asked the same questions; each answer holds a fact only that business has.
BUSINESSES = {
    "bikes": [(QUESTION, "We are at 12 Juniper Lane, next to the harbour."),
              ("What is your phone number?", "Call us at 555-0142."),
              ("When are you open?", "Every day from 8am to 6pm."),
              ("How much is a day rental?", "A day rental of a city bike is $35.")],
    "bakery": [(QUESTION, "We are at 88 Birch Road, across from the library."),
               ("What is your phone number?", "Call us at 555-0199."),
               ("When are you open?", "Tuesday to Sunday from 7am to 3pm."),
               ("How much is a birthday cake?", "A birthday cake for ten people is $48.")],
}
FACT = {"bikes": "Juniper", "bakery": "Birch"}  # the distinctive word of each one's address
# Enough training for each adapter to say its own answers word for word: measured, 5 epochs (15 steps,
# 20-60 s on 2 cores) gave 4 of 4 answers of each FAQ exactly; 3 epochs got the bikes' address wrong.
TUNE = TuneSettings(epochs=5, n_rewordings=3, batch_size=4, patience=10, learning_rate=1e-3)
SERVER_KEY = "test-only-model-server-key"
MODEL = "smollm2-135m-instruct"  # the --alias kbchat model-server gives the packaged SmolLM2


def _business_kb(folder: Path, pairs) -> Path:
    (folder / "docs").mkdir(parents=True)
    with open(folder / "docs" / "faq.csv", "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("Question", "Answer"), *pairs])
    with Store(folder / "kb") as store:
        assert not [r for r in ingest(store, [str(folder / "docs")], Settings()) if r.failed]
    return folder / "kb"


@pytest.fixture(scope="module")
def businesses(tmp_path_factory, model_cache):
    """{name: (knowledge base, its adapter)}, each trained on its own FAQ."""
    made = {}
    for name, pairs in BUSINESSES.items():
        kb = _business_kb(tmp_path_factory.mktemp(name), pairs)
        with Store(kb) as store:
            made[name] = (kb, train(store, TUNE))
    return made


@pytest.fixture(scope="module")
def shared_server(businesses, model_cache):
    """`kbchat model-server --kb BIKES --kb BAKERY` in its own process; its URL once /health says ready."""
    try:
        served.llama_server()
    except ModelMissing as e:  # make test builds it: missing is a failure, not a skip
        pytest.fail(str(e), pytrace=False)
    port = free_port()
    kbs = [str(kb) for kb, _ in businesses.values()]
    with pytest.MonkeyPatch.context() as keyed:
        keyed.setenv(KEY_ENV, SERVER_KEY)  # the server asks every request for it; kbchat sends it
        env = {**os.environ, "KBCHAT_CACHE": str(model_cache)}
        base = f"http://127.0.0.1:{port}"
        with Process([*kbchat_command(), "model-server", "--kb", kbs[0], "--kb", kbs[1], "--port", str(port)],
                     env=env) as server:
            wait_for_http(base + "/health", server)
            yield base + "/v1"
            server.stop(grace_s=30)  # kbchat ends llama-server with it
            if server.killed:
                pytest.fail("kbchat model-server did not end within 30 s of SIGTERM")
        with pytest.raises(httpx.TransportError):  # llama-server went with it
            httpx.get(base + "/health", timeout=2)


def _served(url: str, **kw) -> Settings:
    return Settings(model_server_url=url, model_server_model=MODEL, **kw)


def test_each_business_answers_with_its_own_adapter_from_one_server(businesses, shared_server):
    assert httpx.get(shared_server.removesuffix("/v1") + "/lora-adapters").status_code == 401  # no key, no model
    loras = httpx.get(shared_server.removesuffix("/v1") + "/lora-adapters", headers={"Authorization": f"Bearer {SERVER_KEY}"}).json()
    assert len(loras) == 2 and all(a["scale"] == 0.0 for a in loras)  # none applied unless a request asks
    for name, (kb, info) in businesses.items():
        other = FACT["bakery" if name == "bikes" else "bikes"]
        with Store(kb) as store:
            here = TunedPath(store, Settings(max_new_tokens=30)).answer(QUESTION)
            remote = TunedPath(store, _served(shared_server, max_new_tokens=30)).answer(QUESTION)
            assert FACT[name] in here.text, here.text  # the adapter learned its own address
            assert FACT[name] in remote.text and other not in remote.text, remote.text
            assert remote.text == here.text  # greedy, same f16 base, same GGUF LoRA: the same answer
            assert info.id in remote.model and "model server" in remote.model and remote.n_tokens > 0
            # Not the FAQ's own wording, so the model writes from the sources instead of giving the
            # curated answer; what SmolLM2 writes from them is its own business, but it is the same here
            # and through the server, and never the other business's. The search cut is pinned low: what
            # is measured here is the server, not where a four-row FAQ's calibration puts the cut.
            cut = {"max_new_tokens": 40, "refusal_threshold": 0.1}
            rag_here = RagTunedPath(store, Settings(rag_writer="model", **cut)).answer(REWORDED)
            rag_remote = RagTunedPath(store, _served(shared_server, **cut)).answer(REWORDED)
            assert rag_remote.method == "generated" and info.id in rag_remote.model, rag_remote
            assert rag_remote.text == rag_here.text and other not in rag_remote.text, rag_remote.text
    # The plain model on the same server knows neither address: the adapters apply only when asked for.
    plain = BasePath(_served(shared_server, max_new_tokens=30)).answer(QUESTION)
    assert not any(fact in plain.text for fact in FACT.values()), plain.text


def test_an_adapter_the_server_does_not_have_gets_what_to_run(businesses, shared_server, tmp_path):
    kb, _ = businesses["bikes"]
    shutil.copytree(kb, tmp_path / "copy")  # the same business in another folder: its adapter file is not served
    with Store(tmp_path / "copy") as store, pytest.raises(
            ModelServerError, match=r"does not have .*copy's fine-tuned model \(v1-.*kbchat model-server --kb "):
        TunedPath(store, _served(shared_server))
    owner = Cli(tmp_path / "copy")
    assert owner("settings", "--set", f"model_server_url={shared_server}", "--set", f"model_server_model={MODEL}").exit_code == 0
    result = owner("ask", "--path", "tuned", QUESTION)
    assert result.exit_code == 1 and "--lora-init-without-apply" in result.output and "Traceback" not in result.output


def test_model_server_prints_its_command_and_refuses_a_business_without_a_model(businesses, tmp_path, monkeypatch):
    kbs = [kb for kb, _ in businesses.values()]
    port = free_port()
    result = Cli(kbs[0])("model-server", "--kb", kbs[0], "--kb", kbs[1], "--port", port, "--print")
    assert result.exit_code == 0, result.output
    for kb, info in businesses.values():
        assert f"--lora-scaled {(Path(info.path) / adapters.GGUF).resolve()}:0" in result.output
        assert f"  {kb}: adapter {info.id}" in result.output
        assert (f"kbchat --kb {kb} settings --set model_server_url=http://127.0.0.1:{port}/v1 "
                f"--set model_server_model={MODEL}") in result.output
    assert "--lora-init-without-apply" in result.output and "--host 127.0.0.1" in result.output
    assert f"One llama-server at http://127.0.0.1:{port}/v1 for the fine-tuned models of 2 knowledge bases" in result.output
    assert "Anyone who reaches" not in result.output
    monkeypatch.delenv(KEY_ENV, raising=False)
    # For workers on other machines: every address, named by this machine's name, and a warning without a key.
    result = Cli(kbs[0])("model-server", "--kb", kbs[0], "--host", "0.0.0.0", "--port", port, "--print")
    assert result.exit_code == 0 and "--host 0.0.0.0" in result.output, result.output
    assert f"model_server_url=http://{socket.gethostname()}:{port}/v1" in result.output
    assert "Anyone who reaches" in result.output and "KBCHAT_MODEL_SERVER_KEY" in result.output
    monkeypatch.setenv(KEY_ENV, "owner-secret")
    result = Cli(kbs[0])("model-server", "--kb", kbs[0], "--host", "0.0.0.0", "--port", port, "--print")
    assert "Anyone who reaches" not in result.output and "LLAMA_API_KEY" in result.output
    assert "owner-secret" not in result.output  # the key stays in the environment
    untrained = _business_kb(tmp_path, BUSINESSES["bikes"])
    result = Cli(untrained)("model-server", "--kb", kbs[0], "--kb", untrained)
    assert result.exit_code == 1 and f"{untrained} has no fine-tuned model yet" in result.output and "tune" in result.output


def test_without_llama_server_the_owner_is_told_how_to_build_it(monkeypatch, tmp_path):
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ModelMissing, match=r"llama-server is not installed. Build it with: make llama"):
        served.llama_server()


def test_an_adapter_a_server_lists_by_name_is_asked_for_by_name():
    """vLLM lists each adapter it was started with (--lora-modules NAME=FOLDER) as a model: id NAME,
    root FOLDER (the listing below is the shape vLLM's docs show; vLLM needs a GPU, so it is not run
    here). llama-server lists its adapters at /lora-adapters instead."""
    info = adapters.AdapterInfo(id="v2-20260101-000000", created_at="", base_model="", settings={}, data_hash="",
                                faq_hash="", n_train=0, n_validation=0, epochs_run=0, best_epoch=0, best_val_loss=0.0,
                                stopped_early=False, train_seconds=0.0, tokens_per_s=0.0,
                                path="/srv/pottery/adapters/v2-20260101-000000")
    vllm = [{"id": "SmolLM2-135M-Instruct", "root": "/models/smollm2", "parent": None},
            {"id": "other-v1-20250101-000000", "root": "/srv/other/adapters/v1-20250101-000000"},
            {"id": "pottery-v2-20260101-000000", "root": "/elsewhere/v2-20260101-000000/", "parent": "SmolLM2"}]
    assert served.served_name(info) == "pottery-v2-20260101-000000"
    assert served.named_model(vllm, info) == "pottery-v2-20260101-000000"
    assert served.named_model([{"id": "mine", "root": "/mnt/kb/adapters/v2-20260101-000000"}], info) == "mine"
    assert served.named_model(vllm[:2], info) is None
    llama = [{"id": 0, "path": "/srv/other/adapters/v1-20250101-000000/adapter.gguf", "scale": 0.0},
             {"id": 1, "path": "pottery/adapters/v2-20260101-000000/adapter.gguf", "scale": 0.0}]
    assert served.lora_id(llama, info) == 1 and served.lora_id(llama[:1], info) is None
