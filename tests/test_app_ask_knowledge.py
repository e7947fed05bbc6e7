"""The app's Ask and Knowledge pages, run with Streamlit's AppTest on small real knowledge bases and
the real packaged models (loaded once per process; appkit caches per knowledge base folder)."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT, sample_kb
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

from ui.appkit import path_words
from kb.settings import Settings
from kb.store import Store

APP = str(ROOT / "ui" / "app.py")
HOURS_Q = "What are your opening hours?"
HOURS_A = "Tuesday to Friday from 10 am to 9 pm"


@pytest.fixture
def kb(tmp_path, model_cache, monkeypatch):
    kb = sample_kb(tmp_path, 4, "price_list.md")
    Settings(max_new_tokens=24).save(kb)
    monkeypatch.setenv("KBCHAT_HOME", str(kb))
    return kb


def run_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    if page:
        at.switch_page(page)
    return at.run()


def plain(text: str) -> str:
    """Markdown as the owner reads it (the pages escape $, _, [ and the like)."""
    return text.replace("\\", "")


def column(at: AppTest, path: str):
    """The answer column headed by this path's words."""
    found = [c for c in at.columns if any(s.value == path_words(path, title=True) for s in c.subheader)]
    assert len(found) == 1, [[s.value for s in c.subheader] for c in at.columns]
    return found[0]


def texts(block) -> str:
    return plain(" ".join(m.value for m in block.markdown))


def button(block, label: str):
    found = [b for b in block.button if b.label == label]
    assert found, [b.label for b in block.button]
    return found[0]


def ask(at: AppTest, question: str) -> AppTest:
    at.text_input(key="ask_box").input(question)
    return button(at, "Ask").click().run()


# -- empty knowledge base --------------------------------------------------------------------------
@pytest.mark.parametrize("page", [None, "views/knowledge.py"])
def test_pages_render_with_an_empty_knowledge_base(tmp_path, monkeypatch, page):
    monkeypatch.setenv("KBCHAT_HOME", str(tmp_path / "fresh"))
    at = run_app(page)
    assert not at.exception
    if page is None:
        assert any("knowledge base is empty" in i.value for i in at.info)
        assert not at.text_input and not at.columns  # nothing to ask with yet
    else:
        assert any("No documents yet" in i.value for i in at.info)
        assert at.file_uploader[0].accept_multiple_files
        assert any("up to date" in s.value for s in at.success)  # an empty index matches an empty KB


# -- Ask and compare -------------------------------------------------------------------------------
def test_ask_page_renders_with_question_box_and_faq_examples(kb):
    at = run_app()
    assert not at.exception
    assert at.title[0].value == "Ask and compare"
    assert at.text_input(key="ask_box").label == "Your question"
    assert plain(at.button(key="example-1").label) == HOURS_Q
    assert set(at.multiselect[0].value) == {"rag", "base"}
    assert any("not trained yet" in c.value and "Fine-tune" in c.value for c in at.caption)


def test_a_question_over_the_limit_gets_the_visitors_sentence_and_no_answer(kb):
    at = run_app()
    assert at.text_input(key="ask_box").proto.max_chars == 1000
    at.session_state["ask_now"] = "How much is a class? " * 100  # a question that came another way than the box
    at.run()
    assert not at.exception and not any(c.subheader for c in at.columns)  # no answer column
    assert not any("Question:" in m.value for m in at.markdown)  # nor the question shown as asked
    assert [w.value for w in at.warning] == [
        "Questions can be up to 1,000 characters, and this one has 2,099. Please shorten it and send it again."]


def test_asking_a_faq_question_answers_on_every_available_path(kb):
    at = run_app()
    at = at.button(key="example-1").click().run()  # the example fills the box and asks
    assert not at.exception
    assert at.text_input(key="ask_box").value == HOURS_Q
    rag = column(at, "rag")
    assert HOURS_A in texts(rag)
    assert "curated FAQ answer" in plain(" ".join(c.value for c in rag.caption))
    assert [plain(e.label) for e in rag.expander][0].startswith("[1] faq.csv, row ")
    assert HOURS_A in rag.expander[0].text[0].value  # the cited passage, as plain text
    base = column(at, "base")
    assert texts(base).strip() and "the model alone" in " ".join(c.value for c in base.caption)
    assert re.search(r"wrote (about \d+ words a second|slowly \(under 2 words a second\))", texts(base))
    assert "tokens" not in texts(base)  # the speed in words an owner reads, not the model's units
    assert all(path_words("tuned", title=True) not in s.value for c in at.columns for s in c.subheader)

    at = at.run()  # a rerun (any widget) keeps the answers on screen without asking again
    assert HOURS_A in texts(column(at, "rag"))


def test_each_answer_says_why_and_a_conversation_follows_on(kb):
    """ "Why this answer?" under each answer; in conversation mode a follow-up is answered in the
    chat's context, and every path reads the same chat."""
    at = run_app()
    at.multiselect[0].set_value(["rag"]).run()
    at.toggle(key="ask_chat_on").set_value(True).run()
    at = ask(at, "Do you offer hand-building classes?")
    why = plain(" ".join(c.value for c in column(at, "rag").caption))
    assert "Why this answer? Quoted from passage [1]: the best passage matches" in why
    assert "$240" in texts(column(at, "rag"))
    at = ask(at, "how much is it?")
    assert not at.exception
    rag = column(at, "rag")
    assert "$240" in texts(rag)  # the hand-building course the chat is about
    assert "A follow-up: searched your documents for" in plain(" ".join(c.value for c in rag.caption))
    at = at.button(key="ask_chat_new").click().run()  # a new conversation forgets the chat
    assert not at.session_state["ask_chat"]


def test_thumbs_log_the_answer_once_and_record_the_rating(kb):
    from kb.bot import BotRecords

    at = ask(run_app(), HOURS_Q)
    at = button(column(at, "rag"), "Helpful").click().run()
    assert "recorded as helpful" in " ".join(c.value for c in column(at, "rag").caption)
    at = button(column(at, "rag"), "Not helpful").click().run()
    assert not at.exception
    with BotRecords(kb) as records:
        exchanges = records.exchanges()
    assert [(e.path, e.session, e.feedback) for e in exchanges] == [("rag", "app", -1)]
    assert HOURS_A in exchanges[0].answer


def test_fixing_an_answer_saves_it_and_rag_then_gives_it(kb):
    from kb import corrections

    question, fixed = "Can I bring my dog to the studio?", "Well-behaved dogs are welcome in the shop, not in the classroom."
    at = ask(run_app(), question)
    rag = column(at, "rag")
    assert fixed not in texts(rag)
    fix = [e for e in rag.expander if e.label == "Fix this answer"][0]
    fix.text_area[0].input(fixed)
    at = button(fix, "Save this answer").click().run()
    assert not at.exception and not at.error
    assert corrections.answers(kb) == [(question, fixed)]
    assert any("use it from now on" in s.value for s in column(at, "rag").success)

    at = ask(at, question)  # the same question again: the FAQ fast path gives the owner's answer
    rag = column(at, "rag")
    assert fixed in texts(rag)
    assert "curated FAQ answer" in plain(" ".join(c.value for c in rag.caption))
    assert any("owner_faq.csv" in plain(e.label) for e in rag.expander)


# -- Knowledge -------------------------------------------------------------------------------------
def test_knowledge_page_lists_sources_and_previews_passages(kb):
    at = run_app("views/knowledge.py")
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["Name"]) == ["faq.csv", "price_list.md"]
    assert dict(zip(table["Name"], table["FAQ pairs"]))["faq.csv"] == 4
    at = at.selectbox(key="knowledge_source").select_index(0).run()
    shown = " ".join(t.value for t in at.text)
    assert "Q: Where is Copper Kiln Pottery Studio located?" in shown
    box = at.selectbox(key="knowledge_source")
    at = box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("price_list.md"))).run()
    shown = "\n".join(t.value for t in at.text)  # the Markdown read as a person reads it, marks left out
    assert "Beginner Hand-Building Course | 6 weekly 2-hour sessions | Wed 6:30 to 8:30 pm | $240" in shown
    assert "|---|" not in shown and "**" not in shown and "\n#" not in shown


def test_index_status_and_update(kb):
    at = run_app("views/knowledge.py")
    assert any("not up to date" in plain(w.value) for w in at.warning)  # sample_kb does not build the index
    at = at.button(key="sync-index").click().run()
    assert not at.exception
    assert any("up to date with your documents" in s.value for s in at.success)
    with Store(kb) as store:
        n_passages, n_faqs = store.count()[1], len(store.faqs())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Passages in the index": str(n_passages), "FAQ questions in the index": str(n_faqs)}
    assert "Each question is compared with every passage." in [c.value for c in at.caption]  # not "Search type: exact"


def test_uploading_good_and_bad_files_reports_each_and_keeps_the_good(kb, data):
    at = run_app("views/knowledge.py")
    at.file_uploader[0].set_value([
        ("notes.txt", (data / "notes.txt").read_bytes(), "text/plain"),
        ("corrupt.pdf", (data / "corrupt.pdf").read_bytes(), "application/pdf"),
        ("empty.md", b"", "text/markdown"),
        ("setup.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200), "application/pdf"),  # a program renamed
        ("../../escape.txt", b"Parking is free behind the studio.", "text/plain"),
    ]).run()
    at = button(at, "Add to the knowledge base").click().run()
    assert not at.exception
    ok, failed = [plain(s.value) for s in at.success], [plain(e.value) for e in at.error]
    assert any(s.startswith("Added — notes.txt") for s in ok) and any(s.startswith("Added — escape.txt") for s in ok)
    assert any(e.startswith("Not added — empty.md: the file is empty") for e in failed)
    for name in ("corrupt.pdf", "setup.pdf"):
        assert any(e.startswith(f"Not added — {name}: ") and len(e) > len(name) + 20 for e in failed), failed
    uploads = kb / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["escape.txt", "notes.txt"]  # basename only; bad files not kept
    with Store(kb) as store:
        assert str(uploads / "notes.txt") in {s.uri for s in store.sources()}
    assert any("up to date with your documents" in s.value for s in at.success)  # the index was updated at once
    assert not at.file_uploader[0].value  # emptied, failed files too: a second press adds nothing twice
    boxes = [b for b in at.main.children.values() if isinstance(b, Block) and b.subheader]
    adding = next(b for b in boxes if b.subheader[0].value == "Add files")  # results under its button, not below the fold
    assert any(m.value == "**What happened**" for m in adding.markdown)
    assert len(adding.error) == 3 and len(at.error) == 3

    box = at.selectbox(key="knowledge_source")  # removing an upload deletes kbchat's copy too
    at = box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("notes.txt"))).run()
    at = at.button(key="remove-ask").click().run()
    assert any("copy kbchat keeps" in plain(w.value) for w in at.warning)
    at = at.button(key="remove-yes").click().run()
    assert sorted(p.name for p in uploads.iterdir()) == ["escape.txt"]


def test_adding_a_web_page_needs_a_full_address(kb):
    at = run_app("views/knowledge.py")
    at.text_input[0].input("www.example.com")
    at = button(at, "Add this page").click().run()
    assert any("starting with https://" in e.value for e in at.error)


def test_adding_a_web_page_reads_it_into_the_knowledge_base(kb, site):
    """A page on this computer (allowed as an intranet address, as an owner would for an intranet
    site): the form reads it and reports it added."""
    Settings.load(kb).updated(intranet_addresses="127.0.0.1").save(kb)
    url = f"{site}/hours.html"
    at = run_app("views/knowledge.py")
    at.text_input[0].input(url)
    at = button(at, "Add this page").click().run()
    assert not at.exception
    assert any(plain(s.value).startswith("Added — ") for s in at.success), [s.value for s in at.success]
    with Store(kb) as store:
        assert url in {s.uri for s in store.sources()}
        assert any("We open at 9 am" in c.text for c in store.chunks(source=url))


def test_removing_a_source_asks_first_then_removes_it(kb):
    at = run_app("views/knowledge.py")
    box = at.selectbox(key="knowledge_source")
    at = box.select_index(next(i for i, o in enumerate(box.options) if o.startswith("price_list.md"))).run()
    at = at.button(key="remove-ask").click().run()
    assert any("Remove **price_list.md** from the knowledge base?" in plain(w.value) for w in at.warning)
    with Store(kb) as store:
        assert len(store.sources()) == 2  # nothing removed before the owner confirms
    at = at.button(key="remove-yes").click().run()
    assert not at.exception
    with Store(kb) as store:
        assert [s.uri.rsplit("/", 1)[-1] for s in store.sources()] == ["faq.csv"]
    assert any("Removed price_list.md" in plain(s.value) for s in at.success)
    assert list(at.dataframe[0].value["Name"]) == ["faq.csv"]


def test_fixing_a_curated_answer_wins_and_says_the_faq_file_still_answers_it(kb):
    from kb import corrections

    at = run_app()
    at = ask(at.multiselect[0].set_value(["rag"]).run(), HOURS_Q)
    assert [s.value for c in at.columns for s in c.subheader] == [path_words("rag", title=True)]  # only the chosen path
    fix = [e for e in column(at, "rag").expander if e.label == "Fix this answer"][0]
    assert HOURS_A in fix.text_area[0].value  # prefilled with the answer
    fix.text_area[0].input("Open every day from 8 am to 8 pm.")
    at = button(fix, "Save this answer").click().run()
    assert corrections.answers(kb) == [(HOURS_Q, "Open every day from 8 am to 8 pm.")]
    info = " ".join(plain(w.value) for w in column(at, "rag").info)
    assert "also answers this exact question in faq.csv, row " in info
    again = ask(at, HOURS_Q)  # the owner's answer wins over the FAQ file's, word for word
    assert "Open every day from 8 am to 8 pm." in " ".join(plain(m.value) for m in column(again, "rag").markdown)


def test_a_file_that_crashes_its_reader_fails_alone(kb, monkeypatch):
    from kb import readers

    real = readers.READERS[".txt"]

    def fragile(data: bytes, name: str):
        if name == "boom.txt":
            raise RuntimeError("reader bug")
        return real(data, name)

    monkeypatch.setitem(readers.READERS, ".txt", fragile)
    at = run_app("views/knowledge.py")
    at.file_uploader[0].set_value([("boom.txt", b"Some text here.", "text/plain"),
                                   ("after.txt", b"Gift cards are sold at the front desk.", "text/plain")]).run()
    at = button(at, "Add to the knowledge base").click().run()
    assert not at.exception
    assert [plain(e.value) for e in at.error] == ["Not added — boom.txt: the file could not be read; it may be damaged (RuntimeError: reader bug)"]
    assert any(plain(s.value).startswith("Added — after.txt") for s in at.success)
    assert sorted(p.name for p in (kb / "uploads").iterdir()) == ["after.txt"]
