"""The chunker: sizes, overlap, structure, tables, FAQ pairs, stable ids."""

from __future__ import annotations

import pytest

from kb.chunk import chunk_document, split_text
from kb.records import Document, FaqPair, Section, chunk_id

PROSE = " ".join(f"Sentence number {i} says something about pottery classes." for i in range(60))


@pytest.mark.parametrize("size, overlap", [(200, 0), (400, 60), (800, 120), (1500, 300)])
def test_pieces_respect_the_size(size, overlap):
    pieces = split_text(PROSE, size, overlap)
    assert all(len(p) <= size for p in pieces)
    # Nothing is lost: every sentence appears in some piece.
    for i in range(60):
        assert any(f"Sentence number {i} says" in p for p in pieces)


def _first_sentence(piece: str) -> str:
    return piece.split(". ")[0] + "."


def test_overlap_repeats_the_end_of_the_previous_piece():
    pieces = split_text(PROSE, 400, 120)
    for before, after in zip(pieces, pieces[1:]):
        shared = after[: after.index(_first_sentence(after)) + 1]
        assert before.endswith(after[: len(before) - before.index(_first_sentence(after))])
        assert _first_sentence(after) in before
        assert len(before) - before.index(_first_sentence(after)) <= 120 and shared


def test_no_overlap_when_it_is_zero():
    pieces = split_text(PROSE, 400, 0)
    for before, after in zip(pieces, pieces[1:]):
        assert _first_sentence(after) not in before


def test_paragraphs_are_kept_whole_when_they_fit():
    text = "First paragraph is short.\n\nSecond paragraph is short too.\n\nThird."
    assert split_text(text, 800, 100) == [text]


def test_a_long_word_is_hard_wrapped():
    pieces = split_text("x" * 1000, 300, 0)
    assert [len(p) for p in pieces] == [300, 300, 300, 100]


def test_empty_text_gives_no_pieces():
    assert split_text("", 800, 100) == []
    assert split_text("   \n\n  ", 800, 100) == []


def test_split_table_repeats_its_header():
    rows = "\n".join(f"| Class {i} | ${i * 10} |" for i in range(60))
    text = f"| Class | Price |\n|---|---|\n{rows}"
    pieces = split_text(text, 300, 50)
    assert len(pieces) > 3
    for piece in pieces:
        assert piece.startswith("| Class | Price |\n|---|---|\n| Class")
        assert len(piece) <= 300
    assert sum(p.count("| Class ") for p in pieces) == 60 + len(pieces)  # each row once, header per piece


def test_list_items_break_between_items():
    items = "\n".join(f"- Item {i}: a member benefit described in one full sentence." for i in range(30))
    pieces = split_text(items, 300, 0)
    for piece in pieces:
        assert piece.startswith("- Item")
        assert all(line.startswith("- Item") for line in piece.split("\n"))


def test_faq_pairs_are_one_chunk_each_and_never_split():
    long_answer = "A very long answer. " * 100
    doc = Document("faq", faqs=[FaqPair("Hours?", "9 to 5.", "row 2"), FaqPair("Long?", long_answer, "row 3")])
    chunks = chunk_document(doc, "/x/faq.csv", 300, 50)
    assert len(chunks) == 2
    assert chunks[1].text == f"Q: Long?\nA: {long_answer}"
    assert chunks[0].faq == FaqPair("Hours?", "9 to 5.", "row 2") and chunks[0].location == "row 2"


def test_sections_never_share_a_chunk_and_keep_locations():
    doc = Document("pdf", sections=[Section("Page one text.", "page 1"), Section("Page two text.", "page 2")])
    chunks = chunk_document(doc, "/x/a.pdf", 800, 100)
    assert [(c.location, c.text) for c in chunks] == [("page 1", "Page one text."), ("page 2", "Page two text.")]


def test_chunk_ids_are_stable_and_unique():
    doc = Document("text", sections=[Section("Same text."), Section("Same text."), Section("Other.")])
    first = chunk_document(doc, "/x/a.txt", 800, 0)
    second = chunk_document(doc, "/x/a.txt", 800, 0)
    assert [c.id for c in first] == [c.id for c in second]
    assert len({c.id for c in first}) == 3
    assert first[0].id == chunk_id("/x/a.txt", "Same text.")
    # The same text in another source is another chunk.
    assert chunk_document(doc, "/y/b.txt", 800, 0)[0].id != first[0].id


def test_overlap_never_cuts_a_table_row():
    # A table just under the size, then prose: the prose piece must not open with half a row.
    rows = "\n".join(f"| Private lesson for {i} people | by appointment | ${i * 40} per hour |" for i in range(1, 9))
    text = f"| Lesson | When | Price |\n|---|---|---|\n{rows}\n\n" + "Clay and firing are included in every class. " * 6
    pieces = split_text(text, 800, 120)
    assert len(pieces) >= 2
    for piece in pieces:
        for line in piece.split("\n"):
            if "|" in line:
                assert line.startswith("|") and line.endswith("|"), line
