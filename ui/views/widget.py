"""Widget: put the chatbot on the owner's website. Its look and rules (settings.toml), a live preview
of the real widget (served by `kbchat serve`, run as a background job), and the script tag."""

from __future__ import annotations

import re
import time

import httpx
import streamlit as st

from compare.paths import DESCRIPTIONS, NAMES, availability
from kb import languages
from kb.bot import BotRecords, embed_tag
from kb.errors import KbchatError
from kb.setting_groups import DEFAULT_FALLBACK, TONE_INSTRUCTIONS_MAX, TONES
from kb.settings import Settings
from ui import jobs, servers
from ui.appkit import friendly, job_failed, kb_dir, need_documents, settings, store

SERVE = "serve"  # the job's name, when the app starts the chat server
HELP = {name: text for name, _, text in Settings.describe()}
TONE_NAMES = list(TONES)
TONE_WORDS = {"professional": "Professional (clear and factual)", "friendly": "Friendly (warm, like your best staff)",
              "concise": "Concise (one short sentence)", "custom": "In your own words (below)"}
_ADDRESS = re.compile(r"https?://[^\s\"'<>/]+(/[^\s\"'<>]*)?")

st.session_state.setdefault("widget_preview_n", 0)  # bumped to make the browser reload the preview


def _lines(text: str) -> tuple[str, ...]:
    """One item per line, blanks dropped: "a\\n\\n b \\n" -> ("a", "b")."""
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def _unavailable() -> dict[str, str]:
    """Why an answer path cannot answer visitors yet, in plain words, without loading any model."""
    return {name: why for name, why in availability(store()).items() if why}


def _path_words(name: str, why: dict[str, str]) -> str:
    words = DESCRIPTIONS[name][0].upper() + DESCRIPTIONS[name][1:]
    return f"{words} (not available yet: {why[name]})" if name in why else words


def _health(url: str) -> dict | None:
    """The chat server's /health reply, or None while nothing answers there."""
    try:
        reply = httpx.get(f"{url}/health", timeout=1.0)
        return reply.json() if reply.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _server() -> servers.Server | None:
    """This knowledge base's chat server, wherever it was started (here, a terminal, a service)."""
    found = servers.running(kb_dir())
    return found[0] if found else None


def _flash(where: str, kind: str, text: str) -> None:
    """A message for the next run: buttons act in callbacks, before the page is drawn again."""
    st.session_state[f"widget_flash_{where}"] = (kind, text)


def _show_flash(where: str) -> None:
    if f"widget_flash_{where}" in st.session_state:
        kind, text = st.session_state.pop(f"widget_flash_{where}")
        getattr(st, kind)(text)


# -- callbacks (run before the page is drawn, so it shows their result) ---------------------------
def _stop_server() -> None:
    job = jobs.status(kb_dir(), SERVE)
    if job is not None and job.running:
        jobs.stop(kb_dir(), SERVE)
    for server in servers.running(kb_dir()):
        servers.stop(server)
    for _ in range(100):  # uvicorn stops in well under a second; wait, so the page shows it stopped
        job = jobs.status(kb_dir(), SERVE)
        if (job is None or not job.running) and not servers.running(kb_dir()):
            return
        time.sleep(0.1)
    _flash("preview", "warning", "The chat server is taking long to stop. Check again in a moment.")


def _start_server() -> None:
    port = int(st.session_state["widget_port"])
    if not servers.port_free(port):
        free = servers.free_port_from(port + 1)
        if free is None:
            _flash("preview", "error", f"Port {port} is in use by another program. Choose another port and start again.")
            return
        st.session_state["widget_port"] = free
        _flash("preview", "error", f"Port {port} is in use by another program. Port {free} is free and is now filled "
                                   "in below: press Start the chat server again.")
        return
    try:
        jobs.start(kb_dir(), SERVE, [SERVE, "--port", str(port)])
    except KbchatError as e:
        _flash("preview", "error", str(e))


def _reload_preview() -> None:
    st.session_state["widget_preview_n"] += 1


def _rotate_public_key() -> None:
    with BotRecords(kb_dir()) as records:
        records.ensure_keys()
        records.rotate_public_key()
    st.session_state["widget_preview_n"] += 1
    _flash("keys", "warning", "New public key made. The old script tag no longer works: copy the new one below to "
                      "every page of your site that has the chat.")


def _rotate_admin_token() -> None:
    with BotRecords(kb_dir()) as records:
        records.ensure_keys()
        st.session_state["widget_admin_token"] = records.rotate_admin_token()
    _flash("keys", "warning", "New admin token made. The old one no longer works.")


def _hide_admin_token() -> None:
    st.session_state.pop("widget_admin_token", None)


# -- the page ---------------------------------------------------------------------------------------
st.title("Widget")
st.write("Put the chatbot on your website with one line: choose how it looks and behaves, try it here, "
         "then copy the line into your web pages.")

try:
    current = settings()
except KbchatError as e:
    st.error(str(e))
    st.stop()
why = _unavailable()

st.subheader("1. Look and rules")
with st.form("widget_settings"):
    left, right = st.columns(2)
    business_name = left.text_input("Your business's name", current.widget.business_name, max_chars=100,
                                    placeholder="Copper Kiln Pottery", help=HELP["business_name"])
    contact = right.text_input("Phone or e-mail for customers", current.widget.contact, max_chars=200,
                               placeholder="0161 555 0199 or hello@example.com", help=HELP["contact"])
    bot_name = st.text_input("Bot name", current.widget.bot_name, help=HELP["bot_name"])
    left, right = st.columns(2)
    bot_color = left.color_picker("Main colour", current.widget.bot_color, help=HELP["bot_color"])
    bot_text_color = right.color_picker("Text colour", current.widget.bot_text_color, help=HELP["bot_text_color"])
    bot_logo_url = st.text_input("Logo web address", current.widget.bot_logo_url, placeholder="https://www.example.com/logo.png",
                                 help=HELP["bot_logo_url"])
    welcome_message = st.text_area("Welcome message", current.widget.welcome_message, help=HELP["welcome_message"])
    suggested = st.text_area("Suggested questions (one per line, at most 6)", "\n".join(current.widget.suggested_questions),
                             placeholder="When are you open?\nHow much is a class?", help=HELP["suggested_questions"])
    visitor_path = st.selectbox("How the chatbot answers visitors", NAMES, index=NAMES.index(current.widget.visitor_path),
                                format_func=lambda name: _path_words(name, why), help=HELP["visitor_path"])
    fallback_message = st.text_area("Fallback message", current.answers.fallback_message, help=HELP["fallback_message"])
    tone = st.selectbox("Tone of written answers", TONE_NAMES, index=TONE_NAMES.index(current.answers.tone),
                        format_func=TONE_WORDS.get, help=HELP["tone"])
    tone_instructions = st.text_area("Your own tone (used when the tone is 'In your own words')",
                                     current.answers.tone_instructions, max_chars=TONE_INSTRUCTIONS_MAX,
                                     placeholder="Speak like a relaxed surf instructor. Call customers mate.",
                                     help=HELP["tone_instructions"])
    origins = st.text_area("Allowed websites (one per line)", "\n".join(current.server.allowed_origins),
                           placeholder="https://www.example.com", help=HELP["allowed_origins"])
    left, right = st.columns(2)
    per_ip = left.number_input("Questions per minute from one visitor's address", min_value=1,
                               value=current.server.rate_limit_per_ip, step=1, help=HELP["rate_limit_per_ip"])
    per_session = right.number_input("Questions per minute in one chat", min_value=1,
                                     value=current.server.rate_limit_per_session, step=1, help=HELP["rate_limit_per_session"])
    webhook = st.text_input("Lead webhook address", current.server.lead_webhook_url, placeholder="https://...",
                            help=HELP["lead_webhook_url"])
    save = st.form_submit_button("Save", type="primary")

_show_flash("saved")
if save:
    changes = dict(
        business_name=business_name.strip(), contact=contact.strip(), bot_name=bot_name.strip(), bot_color=bot_color,
        bot_text_color=bot_text_color, bot_logo_url=bot_logo_url.strip(),
        welcome_message=welcome_message.strip(), suggested_questions=_lines(suggested), visitor_path=visitor_path,
        fallback_message=fallback_message.strip(), allowed_origins=_lines(origins), rate_limit_per_ip=int(per_ip),
        rate_limit_per_session=int(per_session), lead_webhook_url=webhook.strip(), tone=tone,
        tone_instructions=tone_instructions.strip(),
    )
    if changes["fallback_message"] == current.answers.fallback_message:
        del changes["fallback_message"]  # untouched: a new contact fills in the default message
    try:  # read again: a change made elsewhere meanwhile (another page, the API) is kept
        settings().updated(**changes).save(kb_dir())
    except KbchatError as e:
        st.error(f"Not saved: {e}")
    else:  # draw the form again from what was saved (a new contact may have filled in the fallback message)
        st.session_state["widget_preview_n"] += 1
        _flash("saved", "success", "Saved. A running chat server uses the new settings at once; the preview below "
                                   "reloads to show them.")
        st.rerun()
if not settings().widget.contact and settings().answers.fallback_message == DEFAULT_FALLBACK:
    st.warning("A customer the chatbot cannot help is told to contact you, but not how. Add your phone or e-mail "
               "above (Phone or e-mail for customers) and the fallback message gives it.")
if settings().quotes:
    st.caption("The tone shapes answers the model writes. With the small model profile, answers quote your documents "
               "word for word, so the tone does not change them; choose the quality profile (Settings) to hear it.")
if (visitors_get := current.widget.visitor_path) in why:
    st.warning(f"Visitors get no answers until the chosen way of answering is available. {why[visitors_get]} "
               "Or choose another one.")

with st.expander("Visitors who write in another language"):
    st.write("A visitor who writes in Spanish, French, German, Portuguese or Italian gets answers in their language; "
             "the chat's buttons and labels follow their browser's language. Write your own fallback and welcome "
             "message for a language here; left empty, kbchat says its own (your contact included) or translates "
             "yours.")
    others = [c for c in languages.SUPPORTED if c != languages.ENGLISH]
    language = st.selectbox("Language", others, format_func=languages.NAMES.get, key="widget_language")
    own = languages.load(kb_dir()).get(language, {})
    with st.form(f"widget_language_{language}"):
        said_fallback = languages.fallback(language, current.answers.fallback_message, current.widget.contact) or ""
        own_fallback = st.text_area(f"Fallback message in {languages.NAMES[language]}", own.get("fallback_message", ""),
                                    placeholder=said_fallback or "(your fallback message, translated)")
        own_welcome = st.text_area(f"Welcome message in {languages.NAMES[language]}", own.get("welcome_message", ""),
                                   placeholder=languages.welcome(language, current.widget.welcome_message))
        if st.form_submit_button("Save these"):
            with friendly():
                languages.save(kb_dir(), language, {"fallback_message": own_fallback, "welcome_message": own_welcome})
                st.success(f"Saved: visitors who write in {languages.NAMES[language]} get these.")

st.subheader("2. Try it")
st.write("The preview shows the real chat window, answered by the chat server on this computer. Saved settings "
         "show in it once it reloads: it reloads by itself after Save, or press Reload the preview.")


@st.fragment(run_every=2)
def _wait_for_server() -> None:
    """While the server starts, look again every 2 seconds; draw the whole page once it answers."""
    server, job = _server(), jobs.status(kb_dir(), SERVE)
    if (server is not None and _health(server.url) is not None) or (server is None and (job is None or not job.running)):
        st.rerun()
    st.caption(f"Still loading... (looked at {time.strftime('%H:%M:%S')})")


_show_flash("preview")
st.session_state.setdefault("widget_port", servers.DEFAULT_PORT)
server, job = _server(), jobs.status(kb_dir(), SERVE)
ours = job is not None and job.running
if server is not None or ours:
    where = f" on port {server.port}" if server else ""
    if server is None or _health(server.url) is None:
        st.info(f"The chat server is starting{where}: it loads the models (up to a minute or two the first time).")
        _wait_for_server()
        st.button("Stop the chat server", on_click=_stop_server)
    else:
        started = "" if ours and job.pid == server.pid else " (started outside this app)"
        st.success(f"The chat server is running at {server.url}{started}")
        left, right = st.columns(2)
        left.button("Reload the preview", on_click=_reload_preview)
        right.button("Stop the chat server", on_click=_stop_server)
        st.iframe(f"{server.url}/preview?v={st.session_state['widget_preview_n']}", height=640,
                  alt="Preview of the chat window on a web page")
elif need_documents():
    if job is not None and job.failed:
        job_failed(job, "The chat server stopped with a problem. Its last words are below; fix what they say and "
                        "start it again.", "the chat server")
    else:
        st.info("The chat server is not running. Start it to see the preview.")
    left, _ = st.columns([1, 3])
    left.number_input("Port", min_value=1024, max_value=65535, step=1, key="widget_port",
                      help="The chat server listens on this port of this computer. Change it if another program "
                           "already uses it.")
    st.button("Start the chat server", type="primary", on_click=_start_server)

st.subheader("3. Put it on your website")
with friendly():
    with BotRecords(kb_dir()) as records:
        token = records.ensure_keys()  # only on the first visit: the admin token is made with the keys
        public_key = records.public_key()
    if token:
        st.session_state["widget_admin_token"] = token

    _show_flash("keys")

    here = server.url if server is not None else f"http://127.0.0.1:{st.session_state['widget_port']}"
    base = st.text_input("Your chat server's web address", here,
                         help="Where your visitors' browsers reach the chat server (kbchat serve). On this computer "
                              "it is http://127.0.0.1 and the port; for your real site, the address of the server "
                              "where you run it, like https://chat.example.com.").strip().rstrip("/")
    if not _ADDRESS.fullmatch(base):
        st.warning("The address should start with https:// (or http://), like https://chat.example.com.")
    elif re.match(r"https?://(127\.0\.0\.1|localhost)\b", base):
        st.caption("This address only works on this computer. For your real site, run the chat server where the "
                   "internet can reach it and put its address here.")
    st.write("Paste this line into every page where the chat should appear, just before `</body>` "
             "(copy it with the button at the right of the box):")
    st.code(embed_tag(base, public_key), language="html", wrap_lines=True)
    st.caption(f"The public key in it (`{public_key}`) is meant to be seen by anyone: it only lets web pages use "
               "the chat, and only from your allowed websites.")
    st.write("Or share the chat as a page of its own: a link for e-mails and social media, or for a **Help** button "
             "on your site. It is the same chat, with the same answers, keys and limits.")
    st.code(f"{base}/chat", language=None)
    st.caption("Only your allowed websites may show this page inside one of theirs (in a frame).")

    if st.session_state.get("widget_admin_token"):
        with st.container(border=True):
            st.warning("Your admin token, shown only now: copy it somewhere safe and keep it secret. It opens your "
                       "chatbot's settings, conversations and leads through the chat server (for a developer or "
                       "another tool); you do not need it in this app.")
            st.code(st.session_state["widget_admin_token"], language=None)
            st.button("I have saved it: hide it", on_click=_hide_admin_token)

    left, right = st.columns(2)
    with left.popover("Make a new public key"):
        st.write("Do this if the chat is being used from a website that is not yours. The old script tag stops "
                 "working at once: you must paste the new one into your site.")
        st.button("Yes, make a new public key", on_click=_rotate_public_key)
    with right.popover("Make a new admin token"):
        st.write("Do this if the admin token was lost or seen by someone else. The old token stops working at once.")
        st.button("Yes, make a new admin token", on_click=_rotate_admin_token)

allowed = ", ".join(f"`{origin}`" for origin in settings().server.allowed_origins) or "none"  # as saved just now
st.info(f"Tip: add your website's address, like `https://www.example.com`, to **Allowed websites** above, or the chat "
        f"will refuse to answer there. Allowed now: {allowed}.")
