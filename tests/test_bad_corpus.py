"""A malformed corpus: about 200 generated bad files (truncated, renamed, wrongly encoded, zip bombs,
deeply nested HTML and JSON, empty, huge) ingested in one batch with good files. No traceback and
no exception: each bad file fails alone with its reason, the good files in the same batch are
ingested, and the store stays consistent."""

from __future__ import annotations

import io
import json
import random
import shutil
import sqlite3
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from kb.ingest import ingest
from kb.settings import Settings
from kb.store import Store

DATA = ROOT / "tests" / "data"
SAMPLE = ROOT / "sample_data"


def _bomb(inner: str) -> bytes:
    """A valid zip whose one entry unpacks to 200 MB of zeros (about 200 KB packed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        with z.open(inner, "w", force_zip64=True) as f:
            block = bytes(1 << 20)
            for _ in range(200):
                f.write(block)
    return out.getvalue()


def make_corpus(folder: Path) -> dict[str, str]:
    """Write the bad files; returns {file name: what is wrong with it}."""
    rng = random.Random(0)
    files: dict[str, tuple[bytes, str]] = {}
    for src, n in (("policies.pdf", 20), ("faq.xlsx", 20), ("handbook.docx", 20), ("faq.json", 10), ("faq.jsonl", 10)):
        whole = (DATA / src).read_bytes()
        for i, cut in enumerate(sorted(rng.sample(range(1, len(whole) - 1), n))):
            files[f"truncated-{i:02d}-{src}"] = (whole[:cut], "truncated")
    for src in ("policies.pdf", "faq.xlsx", "handbook.docx"):  # a real file of another kind, renamed
        for ext in (".pdf", ".xlsx", ".docx", ".md", ".csv", ".json", ".jsonl", ".html", ".txt", ".tsv"):
            if not src.endswith(ext):
                files[f"{src.replace('.', '-')}-renamed{ext}"] = ((DATA / src).read_bytes(), "another kind renamed")
    junk = bytes(rng.getrandbits(8) for _ in range(5000))
    png = (DATA / "image.png").read_bytes()
    for ext in (".pdf", ".xlsx", ".docx", ".md", ".csv", ".json", ".jsonl", ".html", ".txt", ".tsv"):
        files[f"random-bytes{ext}"] = (junk, "random bytes renamed")
        files[f"picture{ext}"] = (png, "an image renamed")
        files[f"empty{ext}"] = (b"", "empty")
        files[f"nul-bytes{ext}"] = (b"\x00" * 3000, "only NUL bytes")
    faq = "Question,Answer\nWhen are you open?,From 9 to 5 on weekdays.\nDo you ship abroad?,Yes, to the EU.\n"
    files["utf16-no-bom.csv"] = (faq.encode("utf-16-le"), "UTF-16 without a byte-order mark")
    files["utf32.csv"] = (faq.encode("utf-32"), "UTF-32")
    files["shift-jis.md"] = ("# 営業時間\n\n平日の9時から5時まで営業しています。".encode("shift_jis"), "Shift-JIS")
    files["latin1.csv"] = ("Question,Answer\nCafé open?,Oui, à 8h.\n".encode("latin-1"), "Latin-1")
    files["broken-utf8.md"] = (b"# Prices\n\nA mug costs \xff\xfe\xfd $12.\n" * 50, "invalid UTF-8")
    files["mixed-nul.csv"] = (faq.encode().replace(b",", b",\x00"), "NUL bytes inside")
    for i in range(5):
        files[f"bomb-{i}.xlsx"] = (_bomb("xl/worksheets/sheet1.xml"), "zip bomb")
        files[f"bomb-{i}.docx"] = (_bomb("word/document.xml"), "zip bomb")
    depth = 100_000
    files["nested-divs.html"] = (("<html><body>" + "<div>" * depth + "deep" + "</div>" * depth + "</body></html>").encode(), "deeply nested HTML")
    files["nested-unclosed.html"] = (("<html><body>" + "<b><i>" * depth + "x").encode(), "deeply nested, never closed")
    files["nested.json"] = (("[" * depth + "]" * depth).encode(), "deeply nested JSON")
    files["nested-objects.json"] = (('{"a":' * depth + "1" + "}" * depth).encode(), "deeply nested JSON objects")
    files["nested.jsonl"] = (("[" * depth + "]" * depth + "\n").encode(), "deeply nested JSON line")
    for i, text in enumerate(['{"faqs": 5}', "42", '"just a string"', "[1, 2, 3]", '[{"question": 1, "answer": []}]',
                              '{"question": "Hi"', "null", "[{}]", '{"faqs": [{"q": null, "a": null}]}', "\ufeff[]"]):
        files[f"wrong-shape-{i}.json"] = (text.encode(), "JSON of the wrong shape")
        files[f"wrong-shape-{i}.jsonl"] = ((text + "\n" + text).encode(), "JSON lines of the wrong shape")
    for i, text in enumerate(["Question,Answer\n", "a,b,c\n1,2,3\n", '"unclosed,quote\n' * 100, ";;;;\n;;;;\n",
                              "Question\tAnswer\n\t\n\t\n", "Q,A\n" + "x," * 50000 + "\n", "\n\n\n", "Question,Answer\n,\n,\n"]):
        files[f"bad-table-{i}.csv"] = (text.encode(), "a table without usable pairs")
    files["one-long-line.md"] = (b"word " * 2_000_000, "10 MB on one line")
    files["only-whitespace.txt"] = (b" \n\t\r\n" * 1000, "only whitespace")
    files["script-only.html"] = (b"<html><head><script>var a = 1;</script></head><body><script>x()</script></body></html>", "no text")
    files["encrypted-copy.pdf"] = ((DATA / "encrypted.pdf").read_bytes(), "password-protected")
    files["scanned-copy.pdf"] = ((DATA / "scanned.pdf").read_bytes(), "image only")
    files["pdf-header-only.pdf"] = (b"%PDF-1.7\n%%EOF\n", "a PDF header and nothing else")
    files["zip-renamed.docx"] = (_zip({"hello.txt": b"not a document"}), "a zip that is no Word file")
    files["zip-renamed.xlsx"] = (_zip({"hello.txt": b"not a workbook"}), "a zip that is no workbook")
    folder.mkdir(parents=True)
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    return {name: why for name, (_, why) in files.items()}


def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return out.getvalue()


def test_two_hundred_bad_files_fail_alone_with_their_reasons_and_the_good_ones_go_in(tmp_path):
    bad = make_corpus(tmp_path / "docs" / "bad")
    good = tmp_path / "docs" / "good"
    good.mkdir()
    for name in ("faq.csv", "price_list.md", "policies.pdf", "about.html"):
        shutil.copy(SAMPLE / name, good / name)
    big = tmp_path / "docs" / "big-log.txt"  # a 49 MB text file, under the 50 MB limit
    with open(big, "wb") as f:
        line = b"2026-11-02 10:00:01 GET /index.html 200 - the studio opens at 9 am\n"
        f.write(line * (49_000_000 // len(line)))
    assert len(bad) >= 200
    with Store(tmp_path / "kb") as store:
        results = list(ingest(store, [str(tmp_path / "docs")], Settings()))
        by_name = {Path(r.target).name: r for r in results}
        assert set(by_name) == set(bad) | {"faq.csv", "price_list.md", "policies.pdf", "about.html", "big-log.txt"}
        for name in ("faq.csv", "price_list.md", "policies.pdf", "about.html"):
            assert by_name[name].status == "added", (name, by_name[name].reason)
        assert by_name["big-log.txt"].status == "added"
        for name, why in bad.items():
            r = by_name[name]
            if r.failed:
                assert r.reason and "Traceback" not in r.reason and len(r.reason) < 600, (name, why, r.reason)
        refused = {n for n, r in by_name.items() if r.failed}
        # What cannot be read is refused with its reason; what is readable (another encoding, a long
        # line, a truncated PDF whose first pages survive) may go in, but never half of a file.
        must_fail = {n for n, why in bad.items() if why in ("zip bomb", "empty", "random bytes renamed", "an image renamed",
                                                           "password-protected", "deeply nested JSON",
                                                           "deeply nested JSON objects", "JSON of the wrong shape",
                                                           "a zip that is no Word file", "a zip that is no workbook")}
        assert must_fail <= refused, sorted(must_fail - refused)
        assert all("zip bomb" in by_name[n].reason for n in bad if n.startswith("bomb-"))
        assert "nested thousands of levels deep" in by_name["nested.json"].reason
        sources = {Path(s.uri).name: s for s in store.sources()}
        assert not set(sources) & refused  # nothing of a refused file is stored
        for name, source in sources.items():
            assert source.n_chunks == len(store.chunks(source=source.uri)) > 0, name
    with sqlite3.connect(tmp_path / "kb" / "kbchat.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"\n{len(bad)} bad files: {len(refused)} refused with a reason, {len(bad) - len(refused)} read; "
          f"{len(sources)} sources stored")
