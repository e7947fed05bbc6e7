"""Every format through its reader, on tiny real files in tests/data/."""

from __future__ import annotations

import pytest

from kb import readers
from kb.errors import BadInput
from kb.readers.faq import find_columns
from kb.readers.text import decode_text, markdown_sections

PAIR_QUESTIONS = ["What are your opening hours?", "Do you deliver?", "Can I pay by card?"]


def read(data, name):
    return readers.read((data / name).read_bytes(), name)


@pytest.mark.parametrize(
    "name, extra_question, warning",
    [
        ("faq.csv", None, "row 5: the answer is empty; skipped"),
        ("faq_bom_semicolon.csv", "Où est le café ?", None),
        ("faq_cp1252.tsv", "Is the crème brûlée homemade?", None),
        ("faq.xlsx", "How many tables do you have?", "sheet 'Notes' has no question and answer columns; skipped"),
        ("faq.json", None, "item 4: the answer is empty; skipped"),
        ("faq.jsonl", None, "line 4: not valid JSON"),
    ],
)
def test_faq_formats_give_the_same_pairs(data, name, extra_question, warning):
    doc = read(data, name)
    questions = [p.question for p in doc.faqs]
    assert doc.kind == "faq"
    assert questions[:3] == PAIR_QUESTIONS
    assert doc.faqs[1].answer == "Yes, we deliver within 10 km for $5."
    if extra_question:
        assert extra_question in questions
    if warning:
        assert any(w.startswith(warning) for w in doc.warnings), doc.warnings
    assert not doc.sections


def test_faq_rows_keep_spreadsheet_row_numbers(data):
    # The title row is row 1, the header row 2, so the first pair is row 3, as Excel shows it.
    doc = read(data, "faq_bom_semicolon.csv")
    assert doc.faqs[0].location == "row 3"
    assert doc.faqs[3].answer == "Rue de la Paix, près de l'opéra"


def test_xlsx_number_cells_become_text(data):
    doc = read(data, "faq.xlsx")
    assert doc.faqs[-1].answer == "12"


def test_csv_multiline_answers_and_commas(data):
    doc = read(data, "faq_multiline.csv")
    assert doc.faqs[0].answer == "Bread, cakes, and coffee.\nAlso sandwiches at lunch, from 11:30."
    assert doc.faqs[1].location == "row 3"


def test_jsonl_reports_objects_without_qa_keys(data):
    doc = read(data, "faq.jsonl")
    assert "line 5: no question and answer keys (has title); skipped" in doc.warnings


@pytest.mark.parametrize(
    "header, expected",
    [
        (["Question", "Answer"], (0, 1)),
        (["q", "a"], (0, 1)),
        (["FAQ", "RESPONSE"], (0, 1)),
        (["id", "Question?", "Answer:"], (1, 2)),
        (["Customer question", "Our answer"], (0, 1)),
        (["Name", "Price"], None),
        (["Question", "Question"], None),
    ],
)
def test_header_names_owners_use(header, expected):
    assert find_columns(header) == expected


def test_pdf_pages_and_sections(data):
    doc = read(data, "policies.pdf")
    assert doc.kind == "pdf"
    assert doc.title == "Bakery Policies"
    assert [s.location for s in doc.sections] == ["page 1 > Returns", "page 2 > Allergens"]
    assert "returned within 7 days with a receipt" in doc.sections[0].text


def test_sample_pdf_sections_follow_headings():
    from tests.conftest import SAMPLE

    doc = readers.read((SAMPLE / "policies.pdf").read_bytes(), "policies.pdf")
    locations = [s.location for s in doc.sections]
    assert "page 3 > 5. Damaged Pieces" in locations
    # The running header printed on every page is not repeated in every section.
    header = "Copper Kiln Pottery Studio - Studio Policies and Safety Guide"
    assert sum(header in s.text for s in doc.sections) == 0


def test_markdown_heading_paths_and_code_fences(data):
    doc = read(data, "prices.md")
    locations = [s.location for s in doc.sections]
    assert locations == ["Price list", "Price list > Bread", "Price list > Cakes", "Price list > Cakes > Birthday cakes"]
    assert "# not a heading inside code" in doc.sections[-1].text
    assert doc.title == "Price list"


def test_setext_headings():
    sections = markdown_sections("Shop\n====\nIntro.\n\nHours\n-----\nNine to five.")
    assert [(s.location, s.text) for s in sections] == [("Shop", "Intro."), ("Shop > Hours", "Nine to five.")]


def test_plain_text(data):
    doc = read(data, "notes.txt")
    assert doc.kind == "text"
    assert "founded in 1987 by Ana Ruiz" in doc.sections[0].text


def test_html_keeps_main_content_only(data):
    doc = read(data, "about.html")
    text = "\n".join(s.text for s in doc.sections)
    assert doc.title == "About Sunrise Bakery"
    assert "founded in 1987 by Ana Ruiz" in text
    assert "Head baker Tomas Berg" in text
    for boilerplate in ("NAVLINK", "COOKIEBANNER", "FOOTERTEXT", "SCRIPTCONTENT", "NAVSTYLE"):
        assert boilerplate not in text
    assert "About Sunrise Bakery > Our team" in [s.location for s in doc.sections]


def test_sample_html_drops_nav_footer_and_cookie_banner():
    from tests.conftest import SAMPLE

    doc = readers.read((SAMPLE / "about.html").read_bytes(), "about.html")
    text = "\n".join(s.text for s in doc.sections).lower()
    assert "14 pottery wheels" in text
    assert "cookie" not in text
    assert "<script" not in text and "function" not in text


def test_docx_headings_and_tables(data):
    doc = read(data, "handbook.docx")
    assert doc.kind == "docx"
    assert doc.title == "Staff Handbook"
    by_location = {s.location: s.text for s in doc.sections}
    assert "opens the shop at 4 am" in by_location["Staff Handbook > Opening"]
    assert "Saturday | 2 pm" in by_location["Staff Handbook > Closing"]


@pytest.mark.parametrize(
    "name, message",
    [
        ("junk.pdf", r"this is not a PDF \(it has no PDF header\); it may be another kind of file renamed to \.pdf"),
        ("corrupt.pdf", r"the PDF is damaged and cannot be read"),
        ("encrypted.pdf", r"the PDF is password-protected; open it, save a copy without the password"),
        ("scanned.pdf", r"no text could be extracted: the PDF looks scanned .* Run it through OCR"),
        ("junk.csv", r"this does not look like a CSV file: it contains binary data"),
        ("junk.docx", r"this is not a readable Word \.docx file"),
        ("junk.xlsx", r"this is not a readable Excel \.xlsx file"),
        ("bad.json", r"this is not valid JSON \(line 1, column \d+"),
        ("no_qa_columns.csv", r"no question and answer columns found .*first row: 'Name', 'Price'.*Name one column 'Question'"),
        ("image.png", r"'\.png' files are not supported\. Supported: .*\.pdf"),
    ],
)
def test_bad_files_get_a_plain_reason(data, name, message):
    with pytest.raises(BadInput, match=message):
        read(data, name)


def test_decode_text_encodings():
    assert decode_text("crème".encode("utf-8")) == "crème"
    assert decode_text(b"\xef\xbb\xbfcr\xc3\xa8me") == "crème"
    assert decode_text("crème – brûlée".encode("cp1252")) == "crème – brûlée"
    assert decode_text("crème\r\nbrûlée".encode("utf-16")) == "crème\nbrûlée"
    with pytest.raises(BadInput, match="binary data"):
        decode_text(b"abc\x00def")


@pytest.mark.parametrize("name", ["welcome_tour.srt", "welcome_tour.vtt"])
def test_subtitles_become_passages_located_by_their_time(data, name):
    doc = read(data, name)
    assert doc.kind == "subtitles" and doc.title == "Welcome tour"
    by_time = {s.location: s.text for s in doc.sections}
    assert list(by_time) == ["00:01", "00:30", "01:05", "03:12"]  # a new passage after each long pause
    # Tags ({\an8}, <i>, <v Marta>) are gone, lines of one cue joined; the YouTube export's rolling
    # repeat of "Out back we have a garden..." is kept once.
    assert by_time["00:01"].startswith("Hi, and welcome to the café! I'm Marta")
    assert by_time["00:30"] == "Out back we have a garden with twelve tables, open from May to September."
    assert "<" not in " ".join(by_time.values()) and "{" not in " ".join(by_time.values())


@pytest.mark.parametrize("data_bytes, name, reason", [
    (b"just some words, no timings", "talk.srt", "no subtitles were found"),
    (b"1\n00:00:01,000 --> garbage\nhi\n", "talk.srt", "no subtitles were found"),
    (b"00:00:01.000 --> 00:00:02.000\nhi\n", "talk.vtt", "does not start with 'WEBVTT'"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "talk.vtt", "binary data"),
])
def test_bad_subtitle_files_are_refused_with_the_reason(data_bytes, name, reason):
    with pytest.raises(BadInput, match=reason):
        readers.read(data_bytes, name)


def test_an_answer_from_a_video_cites_the_time_it_is_said(tmp_path, copy_data, generator):
    from kb.ingest import ingest
    from kb.settings import Settings
    from kb.store import Store
    from rag.answer import RagPath

    folder = copy_data("welcome_tour.vtt", "faq.csv")
    with Store(tmp_path / "kb") as store:
        assert not [r for r in ingest(store, [str(folder)], Settings()) if r.failed]
        answer = RagPath(store, Settings(), generator=generator).answer("Can I bring my dog into the garden?")
    assert not answer.refused, answer
    top = answer.citations[0]
    assert top.source.endswith("welcome_tour.vtt") and top.location == "01:05", answer.citations
    assert "water bowl" in top.snippet
