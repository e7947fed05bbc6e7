"""The chat HTTP API and the website widget: `kbchat serve`.

Public endpoints (the widget on the owner's site) need the bot's public key in `X-Bot-Key` and a
page origin the owner allowed; admin endpoints need the admin token as `Authorization: Bearer ...`.

    GET  /health                 is the server up, how many documents, which paths, which fine-tuned model
    GET  /widget.js              the widget; embed with <script src=".../widget.js" data-bot="KEY" async>
    GET  /preview                a page with the widget on it (the app's live preview)
    GET  /chat                   the assistant as a full page: a link to share or put behind a Help button
    GET  /api/config             the widget's look: name, colours, logo, welcome, suggested questions
    POST /api/chat               {"question", "session_id", "path"?} -> the Answer record (+ exchange_id); the
                                 session's earlier messages (within chat_idle_minutes) give a follow-up its context
    POST /api/chat/stream        the same as server-sent events: step... (what it is doing), piece..., then
                                 answer (or error)
    POST /api/feedback           {"exchange_id", "session_id", "rating": "up" | "down"}
    POST /api/lead               {"session_id", "name", "email", "message", "consent"}
    POST /api/handoff            {"session_id", "question"?}: ask for a person (the bot goes quiet in this chat)
    GET  /api/handoff?session_id=...&after=N   the chat's state and the team's messages after id N (polled)
    POST /api/handoff/back       {"session_id"}: back to the assistant
    While a chat is with a person, /api/chat(/stream) passes the visitor's message to the team
    instead of answering it ({"handoff": ...}, or the stream's handoff event).
    GET/PUT /api/admin/settings  GET /api/admin/sources  /api/admin/conversations  /api/admin/leads
    GET  /api/admin/insights
    GET/DELETE /api/admin/visitor?session_id=...|email=...   (a visitor's data: export, erase)
    GET  /api/admin/handoffs     the inbox: chats waiting for a person, then live ones
    GET  /api/admin/handoffs/chat?session_id=...   one chat, oldest first
    POST /api/admin/handoffs/reply   {"session_id", "text", "save_as_faq"?: question}: the team answers
    POST /api/admin/handoffs/release {"session_id"}: the bot answers this chat again

Models load once when the server starts and are shared. One answer is computed at a time (the model
is not made for parallel calls on a small CPU); a question waits for its turn at most
`answer_timeout_s`, then gets a friendly "busy" reply (503) instead of piling up.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import re
import threading
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Iterator, Literal

from fastapi import BackgroundTasks, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.middleware.gzip import GZipMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from kb import languages
from kb.bot import BotRecords
from kb.errors import KbchatError, NotFound, ServiceUnavailable
from kb.location import describe
from kb.records import Answer, Step
from kb.settings import Settings
from kb.store import Store
from kb.sync import Background
from rag.prompts import too_long
from ui.ratelimit import RateLimits

log = logging.getLogger("kbchat.api")
WIDGET = Path(__file__).parent / "widget" / "widget.js"
WIDGET_TEXTS = WIDGET.with_name("texts.json")
PUBLIC_PREFIXES = ("/api/chat", "/api/config", "/api/feedback", "/api/lead", "/api/handoff")
# The server's fixed messages, in English, are the widget's own words (texts.json), so the widget
# can show each in the visitor's language by its code ("busy", "too_fast", ...).
_ENGLISH = json.loads(WIDGET_TEXTS.read_text(encoding="utf-8"))["en"]
BUSY, TOO_FAST, SERVER_ERROR = _ENGLISH["busy"], _ENGLISH["too_fast"], _ENGLISH["server_error"]
LEAD_THANKS, SENT_TO_TEAM, WAITING = _ENGLISH["lead_thanks"], _ENGLISH["sent_to_team"], _ENGLISH["waiting_long"]
QUESTION_CAP = 20_000  # characters: the most max_question_chars allows; a longer body is no question
MAX_BODY_BYTES = 4 * QUESTION_CAP + 4096  # the longest question in UTF-8, and the rest of a request
POLLS_PER_MINUTE = 120  # a widget waiting for a person asks every few seconds


class ApiError(Exception):
    """A refusal with a plain message; `code` names a message the widget also has in the visitor's
    language (ui/widget/texts.json)."""

    def __init__(self, status: int, message: str, headers: dict | None = None, code: str = ""):
        super().__init__(message)
        self.status, self.message, self.headers, self.code = status, message, headers or {}, code


# -- request bodies -------------------------------------------------------------------------------
class ChatIn(BaseModel):
    question: str = Field(max_length=QUESTION_CAP)  # the max_question_chars setting says it in words first
    session_id: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    path: str | None = None


class FeedbackIn(BaseModel):
    exchange_id: int
    session_id: str = Field(min_length=8, max_length=100)
    rating: Literal["up", "down"]


class HandoffIn(BaseModel):
    session_id: str = Field(min_length=8, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")
    question: str = Field(default="", max_length=QUESTION_CAP)


class SessionIn(BaseModel):
    session_id: str = Field(min_length=1, max_length=100)


class ReplyIn(BaseModel):
    session_id: str = Field(min_length=1, max_length=100)
    text: str = Field(max_length=4000)
    save_as_faq: str | None = Field(default=None, max_length=1000)


class LeadIn(BaseModel):
    session_id: str = Field(min_length=8, max_length=100)
    name: str = Field(max_length=200)
    email: str = Field(max_length=320)
    message: str = Field(max_length=4000)
    consent: bool


# -- the bot: store, paths, locks, limits ---------------------------------------------------------
class Bot:
    """Everything the endpoints share, made once at start-up. The answer paths are live
    (compare.live): they follow settings.toml and the active fine-tuned model without a restart."""

    def __init__(self, kb_dir: Path):
        from compare.live import LivePaths

        self.kb_dir = kb_dir
        self.store = Store(kb_dir, create=False)
        self.records = BotRecords(kb_dir)
        self.records.ensure_keys()  # kbchat serve made them already and showed the admin token
        self.live = LivePaths(self.store)
        # Rate limits in this worker, or in Redis (the redis_url setting) for all workers of this bot.
        self.limiter = RateLimits(hashlib.sha256(describe(kb_dir).encode()).hexdigest()[:12])
        self.records.keep_for(self.settings.server.retention_days)  # the retention setting, at start and then hourly
        self.live.paths()
        # sync_every_hours: pages and files read again in a thread; the index follows in the same thread
        self.syncer = Background(self.store, lambda: self.live.settings, lambda _: self.live.retriever().sync()).start()

    @property
    def settings(self) -> Settings:
        """The settings as saved now (kbchat settings, the app); the limiter follows them too."""
        settings = self.live.settings
        self.limiter.use(settings.server.redis_url)
        return settings

    @property
    def paths(self):
        """The answer paths for the settings and adapter as they are now; a change waits for the
        answer being written (never waiting here: the event loop calls this)."""
        return self.live.paths(wait=False)

    def close(self) -> None:
        self.syncer.stop()
        self.records.close()
        self.store.close()

    def path(self, name: str | None):
        name = name or self.settings.widget.visitor_path
        paths = self.paths
        for p in paths:
            if p.name == name:
                return p
        reason = paths.unavailable.get(name, f"there is no answer path called {name!r}")
        raise ApiError(400 if name not in paths.unavailable else 503, f"That answer path cannot answer now: {reason}")

    def update_settings(self, changes: dict) -> Settings:
        settings = self.live.update_settings(changes)
        self.limiter.use(settings.server.redis_url)
        return settings

    def team_reply(self, session: str, text: str, save_as_faq: str | None) -> dict:
        """The team answers a visitor (kb.inbox), the reply kept as the FAQ answer when asked."""
        from kb.inbox import team_reply

        # Saved as an FAQ answer, the store changes (the paths follow its revision): not while one is
        # written. A plain reply never waits for the model.
        with self.live.lock if save_as_faq else nullcontext():
            reply = team_reply(self.records, self.store, self.settings, session, text, save_as_faq)
        saved = {"question": reply.faq_question, "status": reply.saved.status} if reply.saved else None
        return {"message": dataclasses.asdict(reply.message), "saved_as_faq": saved}

    def check_rate(self, ip: str, session: str) -> None:
        from limits import RateLimitItemPerMinute

        s = self.settings
        for per_minute, key in ((s.server.rate_limit_per_ip, f"ip:{ip}"), (s.server.rate_limit_per_session, f"session:{session}")):
            item = RateLimitItemPerMinute(per_minute)
            if not self.limiter.hit(item, key):
                wait = max(1, int(self.limiter.reset_in(item, key)) + 1)
                raise ApiError(429, TOO_FAST, {"Retry-After": str(wait)}, "too_fast")

    def check_polls(self, ip: str) -> None:
        from limits import RateLimitItemPerMinute

        if not self.limiter.hit(RateLimitItemPerMinute(POLLS_PER_MINUTE), f"poll:{ip}"):
            raise ApiError(429, TOO_FAST, {"Retry-After": "5"}, "too_fast")

    def turn(self) -> "_Turn":
        """Wait for the model (at most answer_timeout_s, else 503 busy) and hold it."""
        return _Turn(self.live.lock, self.settings.server.answer_timeout_s)


class _Turn:
    """The model, held by one answer. `release()` may be called more than once (the stream's end and
    the response's clean-up both call it, so a visitor who leaves early never keeps it)."""

    def __init__(self, lock: threading.Lock, timeout: float):
        if not lock.acquire(timeout=timeout):
            raise ApiError(503, BUSY, {"Retry-After": "5"}, "busy")
        self._lock, self._released, self._guard = lock, False, threading.Lock()

    def release(self) -> None:
        with self._guard:
            if not self._released:
                self._released = True
                self._lock.release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Exact scheme://host[:port]; ":*" allows any port of that host; "*" allows every site."""
    origin = origin.rstrip("/").lower()
    for rule in allowed:
        rule = rule.lower()
        if rule == "*" or rule == origin:
            return True
        if rule.endswith(":*") and re.fullmatch(re.escape(rule[:-2]) + r"(:\d+)?", origin):
            return True
    return False


# -- the app --------------------------------------------------------------------------------------
def create_app(kb_dir: str | Path) -> FastAPI:
    kb_dir = Path(kb_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.bot = Bot(kb_dir)
        try:
            yield
        finally:
            app.state.bot.close()

    app = FastAPI(title="kbchat", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(GZipMiddleware, minimum_size=1024)  # the widget: 30 KB, 10 KB compressed; never the event stream

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Body size, then the page origin for public endpoints (CORS, preflight included)."""
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return _error(413, f"The request is too large (the limit is {MAX_BODY_BYTES // 1024} KB).")
        origin = request.headers.get("origin")
        public = request.url.path.startswith(PUBLIC_PREFIXES)
        if origin is None:
            return await call_next(request)  # not a browser page: nothing to check
        bot: Bot | None = getattr(request.app.state, "bot", None)
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"  # the preview page: same origin
        allowed = bot is not None and public and (origin.rstrip("/").lower() == own.lower()
                                                   or origin_allowed(origin, bot.settings.server.allowed_origins))
        if not allowed:
            return _error(403, "This website is not allowed to use this chat. The owner can add it to the allowed "
                               "websites (setting allowed_origins).")
        cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={
                **cors, "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, X-Bot-Key", "Access-Control-Max-Age": "600"})
        response = await call_next(request)
        response.headers.update({**cors, "Access-Control-Expose-Headers": "Retry-After"})
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return _error(e.status, e.message, e.headers, e.code)

    @app.exception_handler(KbchatError)
    async def kbchat_error(request: Request, e: KbchatError):
        return _error(404 if isinstance(e, NotFound) else 503 if isinstance(e, ServiceUnavailable) else 400, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return _error(422, _validation_message(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException):
        return _error(e.status_code, "There is nothing here." if e.status_code == 404 else str(e.detail))

    @app.exception_handler(Exception)
    async def crashed(request: Request, e: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, SERVER_ERROR, code="server_error")

    def bot(request: Request) -> Bot:
        return request.app.state.bot

    def public(request: Request, b: Bot = Depends(bot)) -> Bot:
        if not b.records.is_public_key(request.headers.get("x-bot-key")):
            raise ApiError(401, "This chat's key is missing or wrong. Copy the script tag again from kbchat.")
        return b

    def admin(request: Request, b: Bot = Depends(bot)) -> Bot:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-bot-key")
        if b.records.is_public_key(token):
            raise ApiError(403, "The public key cannot open admin pages; use the admin token.")
        if not b.records.is_admin_token(token):
            raise ApiError(401, "The admin token is missing or wrong. Make a new one with: kbchat keys --rotate admin")
        return b

    # -- public ---------------------------------------------------------------------------------
    @app.get("/health")
    def health(b: Bot = Depends(bot)):
        paths = b.paths
        adapter = paths.adapter()
        return {"status": "ok", "documents": len(b.store.sources()), "paths": paths.names,
                "fine_tuned_model": adapter.id if adapter else None}

    @app.get("/widget.js")
    def widget():
        return FileResponse(WIDGET, media_type="application/javascript; charset=utf-8",
                            headers={"Cache-Control": "public, max-age=300"})

    @app.get("/preview", response_class=HTMLResponse)
    def preview(b: Bot = Depends(bot)):
        """A plain page with the widget on it, as on the owner's site (the app shows it in a frame)."""
        key = b.records.public_key()
        return ("<!doctype html><html><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
                "content=\"width=device-width, initial-scale=1\"><title>Widget preview</title></head>"
                "<body style=\"font-family: sans-serif; color: #555; margin: 2rem\"><p>This is how the chat looks "
                "on your website. Click the bubble to try it.</p>"
                f"<script src=\"widget.js\" data-bot=\"{key}\" async></script></body></html>")

    @app.get("/chat", response_class=HTMLResponse)
    def chat_page(b: Bot = Depends(bot)):
        """The assistant as a whole page, built from the widget (same key, limits and answers). It may
        be framed only by the owner's allowed websites."""
        return HTMLResponse(chat_page_html(b.settings.widget.bot_name, b.records.public_key() or ""),
                            headers={"Content-Security-Policy": frame_ancestors(b.settings.server.allowed_origins),
                                     "Cache-Control": "no-cache"})

    @app.get("/api/config")
    def config(lang: str = "", b: Bot = Depends(public)):
        """The widget's look and words; `lang` (the visitor's browser language, like "es-MX") picks
        the widget's labels and, when the owner kept kbchat's, the welcome message in it."""
        s = b.settings
        language = lang[:2].lower() if lang[:2].lower() in languages.SUPPORTED else languages.ENGLISH
        own = languages.load(b.kb_dir).get(language)
        return {"name": s.widget.bot_name, "business_name": s.widget.business_name, "color": s.widget.bot_color,
                "text_color": s.widget.bot_text_color, "logo_url": s.widget.bot_logo_url,
                "welcome_message": languages.welcome(language, s.widget.welcome_message, own),
                "suggested_questions": list(s.widget.suggested_questions),
                "max_question_chars": s.answers.max_question_chars, "language": language,
                "texts": _widget_texts(language)}

    @app.post("/api/chat")
    def chat(body: ChatIn, request: Request, b: Bot = Depends(public)):
        path = _ready(b, body, request)
        if b.records.with_person(body.session_id):
            return _to_team(b, body)
        with b.turn():
            answer = path.answer(body.question, b.records.history(body.session_id, b.settings.answers.chat_idle_minutes))
        logged = b.records.log(body.session_id, answer)
        b.records.keep_for(b.settings.server.retention_days)
        return _answer_json(answer, logged, b.store.sources())

    @app.post("/api/chat/stream")
    def chat_stream(body: ChatIn, request: Request, b: Bot = Depends(public)):
        path = _ready(b, body, request)
        if b.records.with_person(body.session_id):
            return StreamingResponse(iter([_sse("handoff", _to_team(b, body)["handoff"])]),
                                     media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        turn = b.turn()  # wait here, so a busy server answers 503 rather than an empty stream
        return StreamingResponse(_events(b, path, body, turn), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                                 background=BackgroundTask(turn.release))

    @app.post("/api/feedback")
    def feedback(body: FeedbackIn, b: Bot = Depends(public)):
        b.records.feedback(body.exchange_id, body.session_id, body.rating == "up")
        return {"ok": True}

    @app.post("/api/lead")
    def lead(body: LeadIn, request: Request, tasks: BackgroundTasks, b: Bot = Depends(public)):
        b.check_rate(_ip(request), body.session_id)
        saved = b.records.add_lead(body.session_id, body.name, body.email, body.message, body.consent)
        if b.settings.server.lead_webhook_url:
            tasks.add_task(_post_lead, b, b.settings.server.lead_webhook_url, saved)
        return {"ok": True, "message": LEAD_THANKS, "code": "lead_thanks"}

    @app.post("/api/handoff")
    def ask_for_person(body: HandoffIn, request: Request, tasks: BackgroundTasks, b: Bot = Depends(public)):
        b.check_rate(_ip(request), body.session_id)
        handoff, new = b.records.ask_for_person(body.session_id, body.question)
        if new and b.settings.server.lead_webhook_url:
            payload = {"type": "handoff", "session_id": handoff.session, "question": handoff.question,
                       "asked_at": handoff.asked_at}
            tasks.add_task(_post_webhook, b.settings.server.lead_webhook_url, payload,
                           lambda status: b.records.set_handoff_webhook(handoff.session, status))
        return {"state": handoff.state, "message": WAITING, "code": "waiting_long"}

    @app.get("/api/handoff")
    def handoff_news(session_id: str, request: Request, after: int = 0, b: Bot = Depends(public)):
        b.check_polls(_ip(request))
        handoff = b.records.handoff(session_id)
        team = [m for m in b.records.messages(session_id, max(after, 0)) if m.sender == "team"] if handoff else []
        return {"state": handoff.state if handoff else "bot",
                "messages": [{"id": m.id, "at": m.at, "text": m.text} for m in team]}

    @app.post("/api/handoff/back")
    def back_to_bot(body: SessionIn, b: Bot = Depends(public)):
        if b.records.with_person(body.session_id):
            b.records.hand_back(body.session_id)
        return {"state": "bot"}

    # -- admin ----------------------------------------------------------------------------------
    @app.get("/api/admin/settings")
    def get_settings(b: Bot = Depends(admin)):
        return _settings_json(b.settings)

    @app.put("/api/admin/settings")
    async def put_settings(request: Request, b: Bot = Depends(admin)):
        try:
            changes = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ApiError(400, "Send the settings to change as a JSON object, like {\"bot_name\": \"Ask us\"}.") from None
        if not isinstance(changes, dict):
            raise ApiError(400, "Send the settings to change as a JSON object, like {\"bot_name\": \"Ask us\"}.")
        import anyio

        settings = await anyio.to_thread.run_sync(b.update_settings, changes)
        return _settings_json(settings)

    @app.get("/api/admin/sources")
    def sources(b: Bot = Depends(admin)):
        return [dataclasses.asdict(s) for s in b.store.sources()]

    @app.get("/api/admin/conversations")
    def conversations(limit: int = 200, session: str | None = None, b: Bot = Depends(admin)):
        return [dataclasses.asdict(e) for e in b.records.exchanges(min(max(limit, 1), 5000), session)]

    @app.get("/api/admin/leads")
    def leads(b: Bot = Depends(admin)):
        return [dataclasses.asdict(lead) for lead in b.records.leads()]

    @app.get("/api/admin/visitor")
    def visitor_export(session_id: str | None = None, email: str | None = None, b: Bot = Depends(admin)):
        """Everything stored about one visitor (by chat session id or lead e-mail), as JSON."""
        return b.records.visitor_data(session_id, email)

    @app.delete("/api/admin/visitor")
    def visitor_erase(session_id: str | None = None, email: str | None = None, b: Bot = Depends(admin)):
        """Erase everything stored about one visitor; says how much was deleted."""
        return {"erased": b.records.erase_visitor(session_id, email)}

    @app.get("/api/admin/handoffs")
    def inbox(b: Bot = Depends(admin)):
        return [dataclasses.asdict(h) for h in b.records.handoffs()]

    @app.get("/api/admin/handoffs/chat")
    def handoff_chat(session_id: str, b: Bot = Depends(admin)):
        handoff = b.records.handoff(session_id)
        items = b.records.conversation(session_id)
        if handoff is None and not items:
            raise NotFound(f"There is no chat {session_id!r}. The inbox (GET /api/admin/handoffs) lists them.")
        return {"handoff": dataclasses.asdict(handoff) if handoff else None, "conversation": items}

    @app.post("/api/admin/handoffs/reply")
    async def reply(body: ReplyIn, b: Bot = Depends(admin)):
        import anyio

        return await anyio.to_thread.run_sync(b.team_reply, body.session_id, body.text, body.save_as_faq)

    @app.post("/api/admin/handoffs/release")
    def release(body: SessionIn, b: Bot = Depends(admin)):
        return dataclasses.asdict(b.records.hand_back(body.session_id))

    @app.get("/api/admin/insights")
    def insights(days: int = 30, b: Bot = Depends(admin)):
        days = min(max(days, 1), 3650)
        return {**b.records.insights(days), "usage": b.records.usage(days, b.store.sources(), b.store.faqs()),
                "lead_signals": b.records.lead_signals(days)}

    return app


# -- helpers --------------------------------------------------------------------------------------
def chat_page_html(name: str, key: str) -> str:
    from html import escape

    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" "
            "content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(name)}</title><style>html,body{{margin:0;height:100%;background:#f6f8fa}}</style></head>"
            "<body><noscript><p style=\"font-family:sans-serif;padding:2rem\">This chat needs JavaScript. Turn it on "
            "in your browser and reload the page.</p></noscript>"
            f"<script src=\"widget.js\" data-bot=\"{escape(key)}\" data-mode=\"page\"></script></body></html>")


def frame_ancestors(allowed: tuple[str, ...]) -> str:
    """The CSP that lets only the owner's allowed websites show /chat in a frame (the same rule as
    for the widget's requests); '*' allows any site."""
    if "*" in allowed:
        return "frame-ancestors *"
    return "frame-ancestors " + " ".join(["'self'", *allowed])


def _error(status: int, message: str, headers: dict | None = None, code: str = "") -> JSONResponse:
    return JSONResponse({"detail": message, **({"code": code} if code else {})}, status_code=status, headers=headers)


def _validation_message(e: RequestValidationError) -> str:
    parts = []
    for err in e.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "the request"
        if err.get("type") == "json_invalid":
            return "The request body is not valid JSON."
        parts.append(f"{where}: {err.get('msg', 'is not valid')}")
    return "The request is not valid. " + "; ".join(parts) + "."


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _ready(b: Bot, body: ChatIn, request: Request):
    """The path to answer with, after the question, the rate limits and the path are checked."""
    if not body.question.strip():
        raise ApiError(422, "The question is empty. Type a question and send it again.")
    if problem := too_long(body.question, b.settings):
        raise ApiError(422, problem)
    b.check_rate(_ip(request), body.session_id)
    return b.path(body.path)


@functools.lru_cache(maxsize=None)
def _widget_texts(language: str) -> dict[str, str]:
    """The widget's own labels and messages in `language` (ui/widget/texts.json), English for any missing."""
    texts = json.loads(WIDGET_TEXTS.read_text(encoding="utf-8"))
    return {**texts[languages.ENGLISH], **texts.get(language, {})}


def _label(source, citation: dict) -> str:
    """A cited passage as visitors read it: 'Our FAQ' or the document's title and section."""
    from ui.places import visitor_place

    kind, title = (source.kind, source.title) if source else ("", "")
    return visitor_place(kind, title, citation["source"], citation["location"])


def _answer_json(answer: Answer, exchange_id: int, sources: list) -> dict:
    """The Answer as visitors may see it: no notes, reasons or held-back sentences (they are written
    for the owner, and a held-back sentence is one the business must not say) and no file paths of
    the owner's computer; a web page source keeps its address, which is public anyway."""
    d = answer.to_dict()
    for key in ("notes", "model", "question", "why", "held_back", "searched"):
        d.pop(key, None)
    by_uri = {s.uri: s for s in sources}
    d["citations"] = [
        {"n": c["n"], "label": _label(by_uri.get(c["source"]), c), "snippet": c["snippet"], "score": c["score"],
         "url": c["source"] if c["source"].startswith(("http://", "https://")) else None}
        for c in d["citations"]
    ]
    return {"exchange_id": exchange_id, **d}


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _events(b: Bot, path, body: ChatIn, turn: _Turn) -> Iterator[str]:
    """step events while the answer is prepared (searching, checking, writing), piece events as it
    is written, then the answer event; an error event on failure.
    The model is released when the answer ends or the visitor goes away."""
    with turn:
        try:
            history = b.records.history(body.session_id, b.settings.answers.chat_idle_minutes)
            language = languages.chat_language([t.question for t in history] + [body.question])
            for item in path.stream(body.question, history, steps=True):
                if isinstance(item, Answer):
                    yield _sse("answer", _answer_json(item, b.records.log(body.session_id, item), b.store.sources()))
                    b.records.keep_for(b.settings.server.retention_days)
                elif isinstance(item, Step):
                    yield _sse("step", {"step": item.name, "text": languages.step_words(item.name, language)})
                else:
                    yield _sse("piece", {"text": item})
        except KbchatError as e:
            yield _sse("error", {"message": str(e)})
        except Exception:  # noqa: BLE001 - the visitor gets a message, the log gets the traceback
            log.exception("answer failed")
            yield _sse("error", {"message": SERVER_ERROR, "code": "server_error"})


def _to_team(b: Bot, body: ChatIn) -> dict:
    """A visitor's message in a chat that is with a person: kept for the team, not answered by the bot."""
    message = b.records.add_message(body.session_id, "visitor", body.question)
    handoff = b.records.handoff(body.session_id)
    return {"handoff": {"state": handoff.state, "message_id": message.id,
                        "message": SENT_TO_TEAM, "code": "sent_to_team"}}


WEBHOOK_TRIES = 4  # a webhook that is down for a moment (a deploy, a 503) still gets the lead


def _post_lead(b: Bot, url: str, lead) -> None:
    _post_webhook(url, {"type": "lead", **dataclasses.asdict(lead)},
                  lambda status: b.records.set_webhook_status(lead.id, status))


def _post_webhook(url: str, payload: dict, done) -> None:
    """Send a lead or a handoff to the owner's webhook, trying again after 0, 1 and 2 seconds when it
    cannot be reached or answers 429/5xx. The record is stored either way; `done(status)` keeps what
    came of it."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=WEBHOOK_TRIES - 1, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=None, raise_on_status=False)
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        try:
            r = session.post(url, json=payload, timeout=10)
            status = "sent" if r.ok else f"the webhook answered HTTP {r.status_code}"
        except requests.RequestException as e:
            status = f"could not reach the webhook ({type(e).__name__})"
    done(status)


def _settings_json(settings: Settings) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.to_dict().items()}
