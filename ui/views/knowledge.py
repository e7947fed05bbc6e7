"""Knowledge: the owner's documents come in (uploads, web pages), are listed, previewed and removed,
and the search index is kept up to date. The work is the library's (kb.ingest, kb.store,
rag.retrieve, and kb.sources for what the owner does: uploads in, a document out); this page
calls it and says what happened in plain words."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from kb import corrections, readers
from kb.sources import add_uploads, kept_copy, remove
from kb.sync import last as sync_report
from kb.sync import sync
from kb.ingest import IngestResult, ingest
from kb.plain import readable
from kb.records import Source
from kb.web import is_url
from ui import appkit
from ui.appkit import local_time, md
from ui.places import plural, split_uri

EXTENSIONS = sorted(ext.lstrip(".") for ext in readers.READERS)
KIND_WORDS = {"faq": "FAQ (questions and answers)", "pdf": "PDF", "markdown": "Text (Markdown)", "text": "Text",
              "html": "Web page", "docx": "Word document",
              "subtitles": "Video subtitles"}
STATUS_WORDS = {"added": "Added", "updated": "Updated (it had changed)", "unchanged": "Already up to date",
                "failed": "Not added", "skipped": "Skipped"}
PREVIEW_LIMIT = 50  # passages shown at once: a 300-page manual would flood the page


# -- showing results ---------------------------------------------------------------------------
def result_line(result: IngestResult) -> str:
    """'Added — faq.csv: 12 FAQ pairs, 0 text passages' / 'Not added — setup.exe: ...'."""
    name, _ = split_uri(result.target)
    status = STATUS_WORDS.get(result.status, result.status)
    if result.failed or result.status == "skipped":
        return f"{status} — {name}: {result.reason}"
    detail = f"{plural(result.n_faqs, 'FAQ pair')}, {plural(result.n_chunks - result.n_faqs, 'text passage')}"
    return f"{status} — {name}: {detail}"


def show_results(results: list[IngestResult]) -> None:
    for r in results:
        line = md(result_line(r))
        if r.failed:
            st.error(line, icon=":material/error:")
        elif r.status == "skipped":
            st.warning(line)
        else:
            st.success(line, icon=":material/check_circle:")
        for w in r.warnings:
            st.caption(f"⚠ {md(split_uri(r.target)[0])}: {md(w)}")


def _after_ingest(results: list[IngestResult], where: str) -> None:
    """Keep what happened for the part of the page it came from (`where`: "files" or "page")."""
    st.session_state["knowledge_results"] = (where, results)
    if any(r.status in ("added", "updated") for r in results):
        _update_index()


def _what_happened(where: str) -> None:
    """The results of the last upload or web page, right under the button that started it."""
    kept = st.session_state.get("knowledge_results")
    if kept and kept[0] == where and kept[1]:
        st.markdown("**What happened**")
        show_results(kept[1])
        for message in st.session_state.pop("knowledge_index_messages", []):
            st.info(md(message), icon=":material/manage_search:")


def _update_index() -> None:
    with appkit.friendly():
        with st.spinner("Updating the search index (reading new passages for meaning)..."):
            messages = appkit.retriever().sync()
        st.session_state["knowledge_index_messages"] = messages or ["The search index was already up to date."]


def _label(source: Source) -> str:
    name, where = split_uri(source.uri)
    return f"{name} ({where})"


# -- the page ----------------------------------------------------------------------------------
st.title("Knowledge")
st.write("Everything your chatbot knows comes from the documents here: your FAQ, price list, policies, "
         "web pages. Add them, look at what kbchat read from them, or remove them.")
st.caption("kbchat cuts each document into short **passages** and finds the ones that match a question. "
           "An **FAQ pair** is one question with your answer (a row of a spreadsheet): when a customer asks "
           "nearly the same question, the chatbot gives your answer word for word.")

with st.container(border=True):
    st.subheader("Add files")
    limit = ""
    with appkit.friendly():
        limit = f" Up to {appkit.settings().ingest.max_file_mb:g} MB each (setting max_file_mb)."
    uploads = st.file_uploader("Choose one or more files", type=EXTENSIONS, accept_multiple_files=True,
                               key=f"uploader-{st.session_state.get('uploader_round', 0)}",
                               help="Supported: " + ", ".join(f".{e}" for e in EXTENSIONS) + "." + limit)
    if st.button("Add to the knowledge base", type="primary", disabled=not uploads):
        bar = st.progress(0.0, text="Reading your files...")

        def _progress(i: int, n: int, result: IngestResult) -> None:
            bar.progress(i / max(n, 1), text=f"Read {i} of {n} files")

        with appkit.friendly():
            with st.spinner("Reading your files..."):
                results = add_uploads(appkit.store(), appkit.settings(), [(f.name, f.getvalue()) for f in uploads],
                                              _progress)
            bar.empty()
            _after_ingest(results, "files")
        # Empty the box, failed files too (their reasons stay listed below it), and show the results.
        st.session_state["uploader_round"] = st.session_state.get("uploader_round", 0) + 1
        st.rerun()
    _what_happened("files")

with st.container(border=True):
    st.subheader("Add a web page")
    with st.form("add-url"):
        url = st.text_input("Web address", placeholder="https://www.example.com/faq")
        pages = st.number_input("Follow links on the same site, up to this many pages (1: only this page)",
                                min_value=1, max_value=200, value=1, step=1)
        if st.form_submit_button("Add this page"):
            url = url.strip()
            if not is_url(url):
                st.error("Give the full web address, starting with https:// (or http://).")
            else:
                with appkit.friendly():
                    with st.spinner(f"Reading {url} ..."):
                        results = list(ingest(appkit.store(), [url], appkit.settings(), crawl_pages=int(pages)))
                    _after_ingest(results, "page")
    _what_happened("page")

removed = st.session_state.pop("knowledge_removed", None)
if removed:
    st.success(md(removed))
for message in st.session_state.pop("knowledge_index_messages", []):  # after a removal or a rebuild
    st.info(md(message), icon=":material/manage_search:")

st.header("Your documents")
sources = []
with appkit.friendly():
    sources = appkit.store().sources()
if not sources:
    st.info("No documents yet. Add your FAQ spreadsheet, price list or policies above.")
else:
    rows = [{"Name": split_uri(s.uri)[0], "Where": split_uri(s.uri)[1], "Type": KIND_WORDS.get(s.kind, s.kind),
             "Text passages": s.n_chunks - s.n_faqs, "FAQ pairs": s.n_faqs, "Added": local_time(s.ingested_at)}
            for s in sources]
    st.dataframe(rows, hide_index=True, width="stretch")

    by_uri = {s.uri: s for s in sources}
    uri = st.selectbox("Look at or remove a document", list(by_uri), format_func=lambda u: _label(by_uri[u]),
                       key="knowledge_source")
    source = by_uri[uri]
    preview, removal = st.tabs(["What kbchat read", "Remove"])
    with preview:
        chunks = appkit.store().chunks(source=uri)
        if len(chunks) > PREVIEW_LIMIT:
            st.caption(f"Showing the first {PREVIEW_LIMIT} of {len(chunks)} passages.")
        with st.container(height=520):  # a long document scrolls here, not the whole page past the sections below
            for c in chunks[:PREVIEW_LIMIT]:
                st.caption(md(c.location or "passage"))
                if c.faq:
                    st.text(f"Q: {c.faq.question}\nA: {c.faq.answer}")
                else:
                    st.text(readable(c.text, source.kind))
    with removal:
        confirming = st.session_state.get("knowledge_remove") == uri
        if not confirming:
            if st.button("Remove this document", key="remove-ask"):
                st.session_state["knowledge_remove"] = uri
                st.rerun()
        else:
            if Path(uri) == corrections.path(appkit.kb_dir()):
                also = f" The {source.n_faqs} answers you wrote in kbchat (Fix this answer) are deleted with it."
            elif kept_copy(appkit.store(), uri):
                also = " The copy kbchat keeps of the uploaded file is deleted too."
            elif is_url(uri):
                also = " The page on your site is not touched, and syncing your site does not bring it back."
            else:
                also = " Your own file is not touched."
            st.warning(f"Remove **{md(split_uri(uri)[0])}** from the knowledge base? The chatbot stops using "
                       f"its {source.n_chunks} passages at once." + md(also))
            yes, no = st.columns(2)
            if yes.button("Yes, remove it", type="primary", key="remove-yes"):
                st.session_state.pop("knowledge_remove", None)
                with appkit.friendly():
                    n = remove(appkit.store(), uri).passages
                    st.session_state.pop("knowledge_results", None)
                    st.session_state["knowledge_removed"] = f"Removed {split_uri(uri)[0]} ({n} passages)."
                    _update_index()
                    st.rerun()
            if no.button("Cancel", key="remove-no"):
                st.session_state.pop("knowledge_remove", None)
                st.rerun()
st.header("Keep in step with your site")
last_sync = sync_report(appkit.kb_dir())
every = appkit.settings().server.sync_every_hours
st.write("When you change your web pages or files, kbchat can read them all again and keep only what changed. "
         "A page that fails to load keeps what kbchat read before; a page your site removed is removed. A site added "
         "by following its links is followed again, so its new pages are added too (not the ones you removed here).")
if last_sync:
    st.caption(md(f"Last sync: {local_time(last_sync.finished_at)} ({last_sync.seconds:.0f} s). {last_sync.summary()}"))
else:
    st.caption("Not synced yet.")
left, right = st.columns([2, 1], vertical_alignment="bottom")
hours = left.number_input("While the chat server runs, sync by itself every ... hours (0: never)", min_value=0.0,
                          max_value=8760.0, value=float(every), step=1.0, key="sync-hours",
                          help="Read your web pages and files again this often (at least every 0.25 hours), "
                               "keeping only what changed. The setting sync_every_hours.")
if right.button("Save", key="sync-hours-save") and hours != every:
    with appkit.friendly():
        appkit.settings().updated(sync_every_hours=hours).save(appkit.kb_dir())
        st.success(f"Saved: the chat server syncs every {hours:g} hours." if hours else
                   "Saved: the chat server no longer syncs by itself.")
if st.button("Sync now", key="sync-now", disabled=not sources):
    with appkit.friendly():
        with st.spinner("Reading your pages and files again..."):
            report = sync(appkit.store(), appkit.settings())
        if report.changed_anything:
            _update_index()
        st.session_state["knowledge_synced"] = report
        st.rerun()  # the list of documents and the last sync, as they are now
if synced := st.session_state.pop("knowledge_synced", None):
    (st.warning if synced.failed else st.success)(md(synced.summary()))
    for message in st.session_state.pop("knowledge_index_messages", []):
        st.info(md(message), icon=":material/manage_search:")

st.header("Search index")
with appkit.friendly():
    status = appkit.retriever().status()
    a, b = st.columns(2)
    a.metric("Passages in the index", status["passages"], help="Every text passage and every FAQ pair, searched by meaning.")
    b.metric("FAQ questions in the index", status["faqs"],
             help="Your FAQ questions, compared with a customer's question to give your answer word for word.")
    st.caption("Each question is compared with every passage." if status["kind"] == "flat" else
               "With this many passages, each question is compared with the likeliest ones first, so answers stay "
               "fast; now and then a good passage may be missed.")
    if status["up_to_date"]:
        st.success("The search index is up to date with your documents.")
    else:
        why = "; ".join(status["problems"]) or (
            f"your documents have {status['want_passages']} passages and {status['want_faqs']} FAQ questions")
        st.warning(md(f"The search index is not up to date ({why}). The first question will update it, "
                             "or update it now."))
    if st.button("Rebuild / update the index", key="sync-index"):
        _update_index()
        st.rerun()
