"""Real conversations as fine-tuning data: a transcript export (CSV, JSON or JSONL of chat turns, as
help desks and chat tools export them) becomes question/answer pairs, each customer's message with
the team's reply to it. Real chats carry what an FAQ misses: the wordings customers really use and
the answers staff really give ("200 chats where staff quoted the right fee").

Accepted shapes, with tolerant column and key names (any case; spaces, dashes and underscores alike):
- CSV/TSV, one row per turn: a conversation column (conversation, chat, thread, ticket, session ...),
  a role column (role, sender, speaker, author, from ...) and a text column (message, text, content,
  body ...); optionally a time column to order the turns. Rows of one conversation may be apart.
- JSON: a list of conversations (or {"conversations": [...]}), each a list of turns or an object with
  "messages" (or turns, dialog, transcript, conversation_parts); or a flat list of turn objects with a
  conversation key, like the CSV rows.
- JSONL: one conversation (or one turn) per line, as OpenAI-style {"messages": [{"role", "content"}]}.

Roles are read from the usual words (customer, user, visitor, client ... / agent, staff, assistant,
support, operator ...). Where a chat's roles are names instead, the first to write is taken as the
customer and everyone else as the team, and the check says so.

Consecutive messages from one side are joined (people write in bursts). A customer's message that
is only a greeting or thanks, one the team never answered, and a reply that is only a greeting, a
sign-off or a short question back are left out, each counted in plain words.

    >>> t = read_transcript(b"chat,role,message\\n1,customer,How much is a lesson?\\n1,agent,$40 an hour.\\n", "chats.csv")
    >>> [(p.question, p.answer, p.location) for p in t.pairs]
    [('How much is a lesson?', '$40 an hour.', 'chats.csv chat 1')]
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from kb.errors import BadInput
from kb.readers.text import decode_text
from kb.records import FaqPair

CONVERSATION_KEYS = ("conversation", "conversation id", "conversationid", "chat", "chat id", "chatid", "thread",
                     "thread id", "ticket", "ticket id", "session", "session id", "dialog", "dialogue", "dialog id",
                     "case", "case id", "room")
ROLE_KEYS = ("role", "sender", "speaker", "author", "author type", "from", "who", "sender type", "user type", "type",
             "direction", "party")
TEXT_KEYS = ("message", "text", "content", "body", "utterance", "msg", "message text", "message body", "value")
TIME_KEYS = ("time", "timestamp", "created at", "createdat", "date", "sent at", "sentat", "datetime", "created")
TURN_LISTS = ("messages", "turns", "dialog", "dialogue", "transcript", "conversation parts", "conversationparts",
              "parts", "utterances", "thread")
CUSTOMER = {"customer", "user", "visitor", "client", "guest", "contact", "lead", "buyer", "caller", "end user",
            "enduser", "human", "inbound", "in", "patient", "member", "shopper", "requester", "prospect"}
TEAM = {"agent", "staff", "assistant", "support", "operator", "admin", "owner", "team", "teammate", "employee", "rep",
        "representative", "outbound", "out", "business", "bot", "host", "advisor", "adviser", "seller", "shop",
        "store", "company", "gpt", "model", "service", "helpdesk", "help desk"}
SKIP_ROLES = {"system", "note", "internal", "private", "tool", "function", "event"}

_SMALL_TALK = re.compile(
    r"^(hi|hello|hey|hiya|good (morning|afternoon|evening)|thanks?( you)?( so much| very much| a lot)?|thank you|"
    r"thx|ty|ok(ay)?|cool|great|perfect|awesome|bye|goodbye|cheers|yes|no|yep|nope|sure|got it|will do|"
    r"you'?re welcome|no problem|my pleasure|anytime|have a (nice|great|good) (day|one|evening|weekend)|"
    r"how can i help( you)?( today)?|how may i help( you)?( today)?|is there anything else( i can help with)?)"
    r"[\s!.,:;)(?-]*$", re.I)


@dataclass
class Transcript:
    """What a transcript export gave: the pairs, and what was left out and why, for the data check."""

    pairs: list[FaqPair]
    conversations: int
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> count
    notes: list[str] = field(default_factory=list)

    def describe(self, name: str) -> list[str]:
        lines = [f"{name}: {len(self.pairs)} question/answer pairs taken from {self.conversations} conversations."]
        if self.left_out:
            lines.append(f"{name}: left out " + "; ".join(f"{n} {why}" for why, n in self.left_out.items()) + ".")
        return lines + [f"{name}: {note}" for note in self.notes]


def _key(name) -> str:
    return " ".join(re.sub(r"[-_./]+", " ", str(name)).casefold().split())


def _find(keys, wanted: tuple[str, ...]):
    by_key = {_key(k): k for k in keys}
    for w in wanted:
        if w in by_key:
            return by_key[w]
    return None


def looks_like_transcript(data: bytes, name: str) -> bool:
    """Whether a file is a transcript export (turns with roles) rather than an FAQ (question and answer columns)."""
    ext = PurePath(name).suffix.lower()
    try:
        text = decode_text(data[:200_000], "file")
    except BadInput:
        return False
    if ext in (".csv", ".tsv"):
        header = text.split("\n", 1)[0]
        cells = next(csv.reader([header], delimiter="\t" if ext == ".tsv" or "\t" in header else
                                (";" if header.count(";") > header.count(",") else ",")), [])
        return _find(cells, ROLE_KEYS) is not None and _find(cells, TEXT_KEYS) is not None
    if ext in (".json", ".jsonl"):
        try:
            if ext == ".json":
                value = json.loads(decode_text(data, "file"))
            else:
                value = json.loads(next(line for line in text.split("\n") if line.strip()))
        except (ValueError, StopIteration, BadInput):
            return False
        if isinstance(value, dict):
            list_k = _find(value, ("conversations", "chats", "threads", "tickets", "sessions", "dialogs"))
            value = value[list_k] if list_k else [value]
        first = value[0] if isinstance(value, list) and value else None
        if isinstance(first, list):  # a conversation given as a bare list of turns
            first = first[0] if first else None
        if not isinstance(first, dict):
            return False
        if _find(first, TURN_LISTS) is not None and isinstance(first[_find(first, TURN_LISTS)], list):
            return True
        return _turn(first) is not None and _find(first, ("question", "q", "answer", "a")) is None
    return False


def read_transcript(data: bytes, name: str) -> Transcript:
    ext = PurePath(name).suffix.lower()
    text = decode_text(data, "transcript file")
    if ext in (".csv", ".tsv"):
        conversations = _from_rows(_csv_rows(text, ext), name)
    elif ext == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as e:
            raise BadInput(f"{name} is not valid JSON (line {e.lineno}: {e.msg}). Export the transcripts again.") from None
        conversations = _from_json(value, name)
    elif ext == ".jsonl":
        items = []
        for n, line in enumerate(text.split("\n"), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError:
                    raise BadInput(f"{name} line {n} is not valid JSON. Export the transcripts again.") from None
        conversations = _from_json(items, name)
    else:
        raise BadInput(f"{name}: transcripts must be a .csv, .tsv, .json or .jsonl export of chat turns.")
    return _pairs(conversations, name)


# -- reading the shapes ---------------------------------------------------------------------------
Turn = tuple[str, str]  # (role as written, text)


def _csv_rows(text: str, ext: str) -> list[dict]:
    header = text.split("\n", 1)[0]
    delimiter = "\t" if ext == ".tsv" or "\t" in header else (";" if header.count(";") > header.count(",") else ",")
    return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))


def _from_rows(rows: list[dict], name: str) -> dict[str, list[Turn]]:
    if not rows:
        raise BadInput(f"{name} has no rows under its header. Export the transcripts again.")
    keys = list(rows[0])
    role_k, text_k = _find(keys, ROLE_KEYS), _find(keys, TEXT_KEYS)
    if role_k is None or text_k is None:
        raise BadInput(f"{name} needs a column saying who wrote each message (like 'role' or 'sender') and one with "
                       f"the message (like 'message' or 'text'). Its columns are: {', '.join(map(str, keys))}.")
    conv_k, time_k = _find(keys, CONVERSATION_KEYS), _find(keys, TIME_KEYS)
    chats: dict[str, list[tuple[str, int, Turn]]] = {}
    for n, row in enumerate(rows):
        if not isinstance(row, dict):
            continue
        chat = str(row.get(conv_k) or "1") if conv_k else "1"
        when = str(row.get(time_k) or "") if time_k else ""
        chats.setdefault(chat, []).append((when, n, (str(row.get(role_k) or ""), str(row.get(text_k) or ""))))
    # In the file's order unless every turn has a time (ISO times sort as text).
    return {chat: [t for _, _, t in (sorted(turns) if time_k and all(w for w, _, _ in turns) else turns)]
            for chat, turns in chats.items()}


def _turn(item) -> Turn | None:
    if not isinstance(item, dict):
        return None
    role_k, text_k = _find(item, ROLE_KEYS), _find(item, TEXT_KEYS)
    if role_k is None or text_k is None:
        return None
    role, text = item[role_k], item[text_k]
    if isinstance(role, dict):  # {"author": {"type": "admin", "name": ...}}
        role = role.get(_find(role, ("type", "role", "kind")) or "", "") or ""
    if isinstance(text, list):  # content parts: [{"type": "text", "text": "..."}]
        text = " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in text)
    if not isinstance(text, (str, int, float)):
        return None
    return str(role or ""), _plain(str(text))


def _plain(text: str) -> str:
    """Help desks export HTML bodies: '<p>Pay by <b>card</b>?</p>' -> 'Pay by card?'."""
    if "<" not in text and "&" not in text:
        return text
    from html import unescape

    text = re.sub(r"(?i)<\s*(br|/?p|/?div|/?li|/?tr)\b[^>]*>", " ", text)
    return unescape(re.sub(r"<[^>]+>", "", text))


def _turns(conversation) -> list[Turn] | None:
    if isinstance(conversation, dict):
        list_k = _find(conversation, TURN_LISTS)
        if list_k is None or not isinstance(conversation[list_k], list):
            return None
        conversation = conversation[list_k]
    if not isinstance(conversation, list):
        return None
    turns = [t for t in map(_turn, conversation) if t is not None]
    return turns or None


def _from_json(value, name: str) -> dict[str, list[Turn]]:
    if isinstance(value, dict):
        list_k = _find(value, ("conversations", "chats", "threads", "tickets", "sessions", "dialogs", "data", "items"))
        if list_k is not None:
            value = value[list_k]
        else:
            value = [value]  # one conversation
    if not isinstance(value, list):
        raise BadInput(f"{name} holds no list of conversations or turns. Export the transcripts again.")
    chats: dict[str, list[Turn]] = {}
    flat = [v for v in value if isinstance(v, dict) and _turn(v) is not None and _find(v, TURN_LISTS) is None]
    if flat and len(flat) == len(value):  # a flat list of turns: group them by their conversation key
        return _from_rows(value, name)
    for n, item in enumerate(value, start=1):
        turns = _turns(item)
        if turns:
            key = str(item.get(_find(item, CONVERSATION_KEYS + ("id",)) or "", "") or n) if isinstance(item, dict) else str(n)
            chats[key if key not in chats else f"{key}-{n}"] = turns
    if not chats:
        raise BadInput(f"No conversations were found in {name}: each needs messages with a role (like 'role' or "
                       "'sender') and a text (like 'content' or 'message').")
    return chats


# -- pairing ----------------------------------------------------------------------------------------
def _side(role: str) -> str | None:
    key = _key(role)
    if key in CUSTOMER:
        return "customer"
    if key in TEAM:
        return "team"
    if key in SKIP_ROLES:
        return "skip"
    return None


def _pairs(conversations: dict[str, list[Turn]], name: str) -> Transcript:
    pairs: list[FaqPair] = []
    left: dict[str, int] = {}
    guessed = 0

    def leave(why: str) -> None:
        left[why] = left.get(why, 0) + 1

    file = PurePath(name).name
    for chat, turns in conversations.items():
        sides = [_side(role) for role, _ in turns]
        if any(s is None for s in sides):
            first = next((r for r, _ in turns if _key(r) and _side(r) is None), None)
            named = {r: ("customer" if r == first else "team") for r, _ in turns if _side(r) is None}
            sides = [s if s is not None else named[r] for s, (r, _) in zip(sides, turns)]
            guessed += 1
        blocks: list[list[str]] = []  # [side, text] runs of one side
        for side, (_, text) in zip(sides, turns):
            text = " ".join(text.split())
            if side == "skip" or not text:
                continue
            if blocks and blocks[-1][0] == side:
                blocks[-1][1] += " " + text
            else:
                blocks.append([side, text])
        for i, (side, text) in enumerate(blocks):
            if side != "customer":
                continue
            reply = blocks[i + 1][1] if i + 1 < len(blocks) else None
            if _SMALL_TALK.match(text) or len(text.split()) < 2:
                leave("greetings or thanks (not questions)")
            elif reply is None:
                leave("customer messages the team never answered")
            elif _SMALL_TALK.match(reply):
                leave("replies that were only a greeting or sign-off")
            elif reply.endswith("?") and len(reply.split()) < 15:
                leave("replies that asked back instead of answering")
            else:
                pairs.append(FaqPair(text, reply, f"{file} chat {chat}" + (f" turn {i + 1}" if i else "")))
    notes = []
    if guessed:
        notes.append(f"in {guessed} conversation{'s' if guessed != 1 else ''} the roles were names, so the first to "
                     "write was taken as the customer and everyone else as your team")
    if not pairs:
        raise BadInput(f"No question and answer could be taken from {name}: no customer message had a reply from your "
                       "team" + (f" ({'; '.join(f'{n} {why}' for why, n in left.items())})" if left else "") + ".")
    return Transcript(pairs, len(conversations), left, notes)
