"""Ingestion end to end through the CLI: every format, bad files, re-ingest, change, removal."""

from __future__ import annotations

import json
import shutil

import pytest

from kb.store import Store

GOOD = ["faq.csv", "faq_bom_semicolon.csv", "faq_cp1252.tsv", "faq.xlsx", "faq.json", "faq.jsonl",
        "policies.pdf", "prices.md", "notes.txt", "about.html", "handbook.docx"]
BAD = ["junk.pdf", "corrupt.pdf", "encrypted.pdf", "scanned.pdf", "junk.csv", "junk.docx", "junk.xlsx",
       "bad.json", "no_qa_columns.csv", "empty.md"]


def ingest_json(kbchat, *args):
    result = kbchat("ingest", "--json", *args)
    return result, {r["target"].rsplit("/", 1)[-1]: r for r in json.loads(result.stdout)}


def test_every_good_format_is_ingested(kbchat, copy_data, kb_dir):
    folder = copy_data(*GOOD)
    result, by_name = ingest_json(kbchat, folder)
    assert result.exit_code == 0, result.output
    assert {n: r["status"] for n, r in by_name.items()} == {n: "added" for n in GOOD}
    assert by_name["faq.csv"]["n_faqs"] == 3 and by_name["faq.csv"]["kind"] == "faq"
    assert by_name["policies.pdf"]["kind"] == "pdf"
    with Store(kb_dir) as store:
        assert len(store.sources()) == len(GOOD)
        faq_sources = {s.uri.rsplit("/", 1)[-1]: s.n_faqs for s in store.sources() if s.kind == "faq"}
        assert faq_sources == {"faq.csv": 3, "faq_bom_semicolon.csv": 4, "faq_cp1252.tsv": 4, "faq.xlsx": 4,
                               "faq.json": 3, "faq.jsonl": 3}


def test_a_bad_file_in_a_batch_is_reported_and_the_rest_goes_on(kbchat, copy_data, kb_dir):
    folder = copy_data(*(GOOD[:3] + BAD))
    result = kbchat("ingest", folder)
    assert result.exit_code == 1
    out = result.output
    assert "Traceback" not in out
    for name in BAD:
        line = next(ln for ln in out.splitlines() if ln.rstrip().endswith(name) or f"{name}:" in ln)
        assert line.startswith("x failed"), line
    assert "empty.md: the file is empty" in out
    assert "10 files could not be added" in out
    with Store(kb_dir) as store:
        assert len(store.sources()) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["/nonexistent/file.pdf"], "no such file or folder"),
        (["{data}/image.png"], "'.png' files are not supported"),
        (["{data}/old.xls"], "'.xls' files are not supported. Save it as .xlsx or .csv and ingest that."),
    ],
)
def test_bad_arguments_get_one_line(kbchat, data, args, message, tmp_path):
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0 an old Excel file")
    data = tmp_path if "old.xls" in args[0] else data
    result = kbchat("ingest", *[a.format(data=data) for a in args])
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_unsupported_files_in_a_folder_are_skipped_not_failed(kbchat, copy_data):
    folder = copy_data("faq.csv", "image.png")
    result = kbchat("ingest", folder)
    assert result.exit_code == 0
    assert "- skipped" in result.output and "image.png" in result.output


def test_kbchatignore_and_hidden_files(kbchat, copy_data, kb_dir):
    folder = copy_data("faq.csv", "notes.txt", "prices.md")
    (folder / ".kbchatignore").write_text("# not for customers\nnotes.txt\n")
    (folder / ".hidden.md").write_text("# Secret\nhidden")
    result = kbchat("ingest", folder)
    assert result.exit_code == 0
    with Store(kb_dir) as store:
        assert sorted(s.uri.rsplit("/", 1)[-1] for s in store.sources()) == ["faq.csv", "prices.md"]


def test_file_over_the_size_limit(kbchat, copy_data):
    folder = copy_data("policies.pdf")
    assert kbchat("settings", "--set", "max_file_mb=0.001").exit_code == 0
    result = kbchat("ingest", folder / "policies.pdf")
    assert result.exit_code == 1
    assert "over the 0.001 MB limit (setting max_file_mb)" in result.output


def test_reingest_unchanged_changes_nothing(kbchat, copy_data, kb_dir):
    folder = copy_data("faq.csv", "prices.md")
    kbchat("ingest", folder)
    with Store(kb_dir) as store:
        before = (store.revision, [(c.id, c.text) for c in store.chunks()], store.sources())
    result, by_name = ingest_json(kbchat, folder)
    assert {r["status"] for r in by_name.values()} == {"unchanged"}
    with Store(kb_dir) as store:
        assert (store.revision, [(c.id, c.text) for c in store.chunks()], store.sources()) == before
    assert "2 unchanged" in kbchat("ingest", folder).output


def test_changed_file_replaces_exactly_its_own_chunks(kbchat, copy_data, kb_dir):
    folder = copy_data("faq.csv", "prices.md")
    kbchat("ingest", folder)
    with Store(kb_dir) as store:
        md_uri = next(s.uri for s in store.sources() if s.uri.endswith("prices.md"))
        other_before = [c for c in store.chunks() if c.source != md_uri]
        md_before = {c.id: c.text for c in store.chunks(md_uri)}
    path = folder / "prices.md"
    path.write_text(path.read_text().replace("$38", "$42"))
    result, by_name = ingest_json(kbchat, folder)
    assert by_name["prices.md"]["status"] == "updated" and by_name["faq.csv"]["status"] == "unchanged"
    with Store(kb_dir) as store:
        assert [c for c in store.chunks() if c.source != md_uri] == other_before
        md_after = {c.id: c.text for c in store.chunks(md_uri)}
    changed = set(md_after) ^ set(md_before)
    assert len(changed) == 2  # one passage out, its edited version in; the others keep their ids
    assert any("$42" in t for t in md_after.values()) and not any("$38" in t for t in md_after.values())


def test_a_file_that_became_bad_keeps_its_previous_version(kbchat, copy_data, kb_dir):
    folder = copy_data("faq.csv")
    kbchat("ingest", folder)
    (folder / "faq.csv").write_bytes(b"\x00\x01\x02 binary junk")
    result = kbchat("ingest", folder)
    assert result.exit_code == 1 and "binary data" in result.output
    with Store(kb_dir) as store:
        assert store.sources()[0].n_faqs == 3


def test_remove_a_source(kbchat, copy_data, kb_dir):
    folder = copy_data("faq.csv", "prices.md")
    kbchat("ingest", folder)
    result = kbchat("remove", "prices.md")
    assert result.exit_code == 0 and "Removed" in result.output and "prices.md" in result.output
    with Store(kb_dir) as store:
        assert [s.uri.rsplit("/", 1)[-1] for s in store.sources()] == ["faq.csv"]
        assert all(c.source.endswith("faq.csv") for c in store.chunks())
    result = kbchat("remove", "prices.md")
    assert result.exit_code == 1
    assert "No source named 'prices.md'" in result.output and "kbchat sources" in result.output


def test_remove_ambiguous_name_asks_for_the_full_path(kbchat, copy_data):
    kbchat("ingest", copy_data("faq.csv", into="a"), copy_data("faq.csv", into="b"))
    result = kbchat("remove", "faq.csv")
    assert result.exit_code == 1 and "matches 2 sources; give the full path" in result.output


def test_sources_lists_type_counts_and_time(kbchat, copy_data):
    kbchat("ingest", copy_data("faq.csv", "policies.pdf"))
    items = json.loads(kbchat("sources", "--json").stdout)
    assert [(i["kind"], i["n_chunks"], i["n_faqs"]) for i in items] == [("faq", 3, 3), ("pdf", 2, 0)]
    assert all(i["ingested_at"].endswith("+00:00") for i in items)
    table = kbchat("sources").output
    assert "faq.csv" in table and "policies.pdf" in table and "FAQ pairs" in table


def test_sources_on_an_empty_knowledge_base(kbchat, kb_dir):
    result = kbchat("sources")
    assert result.exit_code == 0 and "is empty" in result.output and "kbchat ingest" in result.output
    assert not kb_dir.exists()  # looking does not create anything


def test_chunks_preview(kbchat, copy_data):
    kbchat("ingest", copy_data("prices.md"))
    out = kbchat("chunks", "prices.md").output
    assert "Price list > Cakes > Birthday cakes" in out and "$38" in out


def test_the_sample_business_ingests_cleanly(kbchat, kb_dir):
    from tests.conftest import SAMPLE

    result, by_name = ingest_json(kbchat, SAMPLE)
    assert result.exit_code == 0
    assert sorted(by_name) == ["about.html", "faq.csv", "policies.pdf", "price_list.md"]  # eval set ignored
    assert by_name["faq.csv"]["n_faqs"] >= 40
    assert not any(r["warnings"] for r in by_name.values())


def test_settings_validation_messages(kbchat):
    result = kbchat("settings", "--set", "chunk_size=50")
    assert result.exit_code == 1 and "'chunk_size' must be between 100 and 8000 characters, not 50" in result.output
    result = kbchat("settings", "--set", "chunk_size=big")
    assert result.exit_code == 1 and "'chunk_size' must be a whole number, not 'big'" in result.output
    result = kbchat("settings", "--set", "colour=red")
    assert result.exit_code == 1 and "Unknown setting 'colour'" in result.output
    result = kbchat("settings", "--set", "chunk_size=600", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout.split("\n", 1)[1])["chunk_size"] == 600


def test_a_broken_settings_file_is_named(kbchat, kb_dir, data):
    kb_dir.mkdir()
    (kb_dir / "settings.toml").write_text("chunk_size = = 3")
    result = kbchat("ingest", data / "faq.csv")
    assert result.exit_code == 1 and "settings.toml is not valid TOML" in result.output


def test_a_non_database_file_is_refused(kbchat, kb_dir, data):
    kb_dir.mkdir()
    shutil.copy(data / "junk.csv", kb_dir / "kbchat.db")
    result = kbchat("ingest", data / "faq.csv")
    assert result.exit_code == 1 and "is not a readable kbchat knowledge base" in result.output
