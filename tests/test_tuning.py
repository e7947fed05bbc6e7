"""LoRA fine-tuning with the real packaged SmolLM2 on a handful of sample FAQ pairs: the loss goes
down, adapters save and load exactly, an interrupted run resumes, stale adapters are flagged, and
the tuned paths answer with the same Answer record as rag."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY_TUNE, sample_kb

from kb.errors import NotFound
from kb.ingest import ingest
from kb.settings import Settings
from kb.store import Store
from rag import llama
from tuning import adapters
from tuning.answer import RagTunedPath, TunedPath
from tuning.train import Progress, TuneSettings, train

TINY = TuneSettings(**TINY_TUNE)


def _tiny_kb(folder: Path, rows: int = 6) -> Path:
    """A knowledge base with the first `rows` pairs of the sample FAQ."""
    return sample_kb(folder, rows)


@pytest.fixture
def trained(tuned_kb):
    return tuned_kb  # the session's adapter (conftest): training once serves every module


def test_training_lowers_the_loss_and_publishes_an_active_adapter(trained):
    kb, info = trained
    per_epoch = len(info.train_loss) // info.epochs_run
    first = sum(loss for _, loss in info.train_loss[:per_epoch]) / per_epoch
    last = sum(loss for _, loss in info.train_loss[-per_epoch:]) / per_epoch
    assert last < first * 0.8, info.train_loss
    assert len(info.val_loss) == 2 and info.best_val_loss == pytest.approx(min(v for _, v in info.val_loss), abs=1e-4)
    assert adapters.active_id(kb) == info.id and info.id.startswith("v1-")
    folder = Path(info.path)
    assert (folder / "adapter_model.safetensors").exists() and (folder / "loss.png").stat().st_size > 1000
    assert (folder / adapters.GGUF).stat().st_size > 1_000_000  # the same adapter for llama.cpp
    meta = json.loads((folder / "adapter.json").read_text())
    assert meta["faq_hash"] == Store(kb).faq_hash() and meta["data_hash"] and meta["train_seconds"] > 0
    assert not set(meta["held_out"]) & set(meta["trained_questions"])
    assert Progress.read(kb).status == "done"
    assert Progress.read(kb).expected_s > 0  # said after the first timed steps
    from safetensors.torch import load_file

    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all(w.dtype == torch.float32 for w in weights.values())  # whatever the frozen model's dtype
    assert not list((kb / "tuning").glob("run-*"))  # the finished run's checkpoints are cleaned up


def test_a_long_run_says_so_and_what_would_be_faster():
    from tuning.train import expected_time

    assert expected_time(5 * 60) == "Expected time: about 5 min on this machine (less if it stops early)."
    long = expected_time(2.5 * 3600)
    assert "about 2.5 hours" in long and "model_profile = small" in long and "GPU" in long


def test_the_frozen_model_trains_in_bfloat16_only_where_the_processor_has_it():
    from kb.errors import BadInput
    from tuning.train import frozen_dtype, native_bf16

    assert frozen_dtype("auto", "cpu") == (torch.bfloat16 if native_bf16("cpu") else torch.float32)
    assert frozen_dtype("float32", "cpu") == torch.float32 and frozen_dtype("bfloat16", "cpu") == torch.bfloat16
    with pytest.raises(BadInput, match="auto, bfloat16 or float32, not 'half'"):
        frozen_dtype("half", "cpu")


def test_an_adapter_of_the_other_profiles_model_is_refused_with_what_to_do(trained):
    from kb.errors import NotFound
    from kb.settings import Settings

    kb, info = trained
    with pytest.raises(NotFound, match="trained on SmolLM2.*now writes answers with qwen2.5-coder.*train again"):
        adapters.load_tuned(info, Settings(model_profile="quality"))


def test_saved_adapter_loads_with_identical_logits(tmp_path, model_cache):
    from peft import LoraConfig, PeftModel, get_peft_model

    from rag.generate import load_private

    loaded = load_private()
    model = get_peft_model(loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM"))
    for name, p in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)  # B starts at zero: make the adapter do something
    ids = loaded.tokenizer("When are you open on Saturday?", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        before = model(ids).logits
    model.save_pretrained(tmp_path / "adapter")
    again = PeftModel.from_pretrained(load_private().model, tmp_path / "adapter")
    with torch.inference_mode():
        after = again(ids).logits
        plain = load_private().model(ids).logits
    assert torch.equal(before, after)
    assert not torch.allclose(before, plain, atol=1e-3)  # the adapter really changed the model


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, model_cache):
    kb = _tiny_kb(tmp_path)

    def interrupt_after_first_epoch(p: Progress):
        if p.epoch == 1:
            raise KeyboardInterrupt

    with Store(kb) as store:
        with pytest.raises(KeyboardInterrupt):
            train(store, TINY, on_step=interrupt_after_first_epoch)
        assert Progress.read(kb).status == "stopped"
        [run] = (kb / "tuning").glob("run-*")
        assert (run / "checkpoint.pt").exists()
        steps_done = torch.load(run / "checkpoint.pt", weights_only=False)["step"]
        seen = []
        info = train(store, resume=True, on_step=lambda p: seen.append(p.step))
    assert seen and min(seen) == steps_done + 1  # went on from the checkpoint, not from step 1
    assert info.epochs_run == 2 and [e for e, _ in info.val_loss] == [1, 2]
    with Store(kb) as store, pytest.raises(NotFound, match="no interrupted training run"):
        train(store, resume=True)


def test_tuned_paths_answer_and_warn_when_the_faq_changed(trained, tmp_path):
    kb, info = trained
    shutil.copytree(kb, tmp_path / "kb")  # this test changes the FAQ: never the session's copy
    with Store(tmp_path / "kb") as store:
        a = TunedPath(store, Settings(max_new_tokens=24)).answer("Where is Copper Kiln Pottery Studio located?")
        assert a.path == "tuned" and a.method == "model" and a.text and a.citations == []
        assert info.id in a.model and a.n_tokens > 0 and a.notes == []
        b = RagTunedPath(store, Settings(max_new_tokens=40)).answer("Is there parking near the studio?")
        assert b.path == "rag+tuned" and (b.citations or b.refused)
        # The owner replaces the FAQ with one where an answer changed: the adapter is now stale.
        source = next(s.uri for s in store.sources() if s.uri.endswith("faq.csv"))
        edited = tmp_path / "faq.csv"
        edited.write_text(Path(source).read_text(encoding="utf-8").replace("214 Alder Street", "9 Birch Road"), encoding="utf-8")
        store.remove_source(source)
        assert not [r for r in ingest(store, [str(edited)], Settings()) if r.failed]
        stale = TunedPath(store, Settings(max_new_tokens=8)).answer("Where are you?")
        assert any("older version of your FAQ" in n for n in stale.notes)


def test_a_running_chat_server_answers_with_the_new_adapter_after_a_tune(trained, tmp_path):
    """`kbchat serve` rebuilt its paths only when the settings changed: after kbchat tune (a new
    adapter, made active) the website went on answering with the old one until restarted."""
    from fastapi.testclient import TestClient

    from kb.bot import BotRecords
    from ui.api import create_app

    kb, info = trained
    kb = Path(shutil.copytree(kb, tmp_path / "kb"))
    Settings(max_new_tokens=8, visitor_path="tuned").save(kb)
    with TestClient(create_app(kb)) as client:
        with BotRecords(kb) as records:
            key = {"X-Bot-Key": records.public_key()}
        assert client.get("/health").json()["fine_tuned_model"] == info.id
        # What kbchat tune leaves behind: a new version, published and made active.
        new_id = "v2-" + info.id.split("-", 1)[1]
        folder = Path(shutil.copytree(info.path, kb / adapters.DIR / new_id))
        meta = json.loads((folder / adapters.META).read_text())
        (folder / adapters.META).write_text(json.dumps({**meta, "id": new_id}))
        adapters.activate(kb, new_id)
        answer = client.post("/api/chat", json={"question": "Where are you?", "session_id": "session-after-tune"},
                             headers=key)
        assert answer.status_code == 200 and answer.json()["path"] == "tuned"
        assert client.get("/health").json()["fine_tuned_model"] == new_id


def test_only_the_last_two_tuned_models_stay_in_memory(trained, tmp_path):
    import dataclasses
    import gc
    import weakref

    kb, info = trained
    copies = []
    for n in (1, 2):  # the same weights in other folders: other adapters to the cache
        shutil.copytree(info.path, tmp_path / f"copy{n}")
        copies.append(dataclasses.replace(info, path=str(tmp_path / f"copy{n}")))
    settings = Settings()
    first = weakref.ref(adapters.load_tuned(copies[0], settings).llm)
    adapters.load_tuned(copies[1], settings)
    adapters.load_tuned(info, settings)
    gc.collect()
    assert first() is None  # the least recently used one was let go
    loaded = adapters.load_tuned(copies[1], settings)  # still there: the same object, not loaded again
    assert loaded is adapters.load_tuned(copies[1], settings) and len(llama._TUNED) == llama.KEEP_TUNED


def test_tuned_path_without_an_adapter_says_how_to_train(tmp_path, kbchat, kb_dir, copy_data):
    assert kbchat("ingest", copy_data("faq.csv")).exit_code == 0
    with Store(kb_dir) as store, pytest.raises(NotFound, match="kbchat tune"):
        TunedPath(store)
    result = kbchat("ask", "--path", "tuned", "When are you open?")
    assert result.exit_code == 1 and "kbchat tune" in result.output
    assert "No fine-tuned model yet" in kbchat("adapters").output


def test_cli_tune_check_reports_the_data(tmp_path, kbchat, copy_data):
    assert kbchat("ingest", copy_data("faq.csv")).exit_code == 0
    result = kbchat("tune", "--check")
    assert result.exit_code == 0, result.output
    assert "Training examples:" in result.output and "held-out rewordings" in result.output


def test_cli_resume_without_a_run_says_so_first(tmp_path, kbchat, copy_data):
    assert kbchat("ingest", copy_data("faq.csv")).exit_code == 0
    result = kbchat("tune", "--resume")
    assert result.exit_code == 1 and "no interrupted training run" in result.output


def test_llama_cpp_with_the_gguf_adapter_answers_as_transformers_with_it_merged(trained):
    """The tuned paths answer on llama.cpp (base f16 GGUF + the adapter as GGUF LoRA); training and
    the reference are transformers with the adapter merged. Measured: the same greedy text on 8 of
    8 trained questions, each unlike the base model's."""
    from peft import PeftModel

    from rag.generate import Generator, LoadedModel, TransformersEngine, load_private
    from tuning.batches import SYSTEM

    kb, info = trained
    on_llama = Generator(engine=adapters.load_tuned(info, Settings()))
    assert isinstance(on_llama.engine, llama.LlamaEngine) and info.id in on_llama.model_id
    base = load_private()
    merged = PeftModel.from_pretrained(base.model, info.path).merge_and_unload().eval()
    reference = Generator(engine=TransformersEngine(LoadedModel(merged, base.tokenizer, "cpu", "merged")))
    plain = Generator()
    same = unlike_base = 0
    questions = info.trained_questions[:4]
    for q in questions:
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
        text = on_llama.complete(messages, max_new_tokens=30).text
        same += text == reference.complete(messages, max_new_tokens=30).text
        unlike_base += text != plain.complete(messages, max_new_tokens=30).text
    assert same >= len(questions) - 1, f"{same} of {len(questions)} the same"
    assert unlike_base >= len(questions) - 1


def test_kill_9_during_training_lists_nothing_half_made_and_resume_finishes(tmp_path, model_cache, kbchat_exe):
    import os
    import sqlite3
    import subprocess
    import time

    kb = _tiny_kb(tmp_path)
    env = {**os.environ, "KBCHAT_CACHE": str(model_cache)}
    proc = subprocess.Popen([*kbchat_exe, "--kb", str(kb), "tune", "--epochs", "3"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while not list((kb / "tuning").glob("run-*/checkpoint.pt")):  # the first epoch is saved: kill it in the second
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read().decode()[-2000:]
        time.sleep(0.1)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    assert adapters.list_adapters(kb) == [] and adapters.active_id(kb) is None
    # A publish killed half-way leaves only a hidden temporary folder: never listed, never active.
    (adapters.folder(kb) / ".v1-20260101-000000.tmp").mkdir(parents=True)
    assert adapters.list_adapters(kb) == [] and adapters.active_id(kb) is None
    with sqlite3.connect(kb / "kbchat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    done = subprocess.run([*kbchat_exe, "--kb", str(kb), "tune", "--resume"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    [info] = adapters.list_adapters(kb)
    assert adapters.active_id(kb) == info.id and info.id.startswith("v1-")
    assert [e for e, _ in info.val_loss] == list(range(1, info.epochs_run + 1))  # epoch 1 from the killed run
    assert not list((kb / "tuning").glob("run-*"))
    with sqlite3.connect(kb / "kbchat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
