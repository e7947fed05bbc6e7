"""Where a knowledge base lives: a folder (SQLite + FAISS, the default) or a PostgreSQL database
shared by several API workers.

`--kb` (or $KBCHAT_HOME) is either a folder or a URL like

    postgresql://kbchat:secret@db.example.com:5432/kbchat?bot=bakery

Several businesses ("bots") share one database, each in its own schema (`kbchat_<bot>`; the bot
defaults to "main"). A database-backed knowledge base still has a local folder, for what each
worker derives or builds from the shared data (the keyword index, calibrated thresholds, fine-tuned
adapters, evaluation reports). That folder holds `database.toml` with the URL, and every part of
kbchat that takes a knowledge base folder finds the database through it.

    >>> folder = resolve("postgresql://localhost/kbchat?bot=bakery")   # doctest: +SKIP
    >>> database_of(folder)                                             # doctest: +SKIP
    ('postgresql://localhost/kbchat', 'bakery')
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kb.errors import BadInput
from kb.files import atomic_write

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

DATABASE_FILE = "database.toml"
FILES_ENV = "KBCHAT_FILES"  # where database-backed knowledge bases keep their local files
SCHEMES = ("postgresql://", "postgres://")
_BOT = re.compile(r"^[a-z0-9_]{1,40}$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def is_database_url(spec: str) -> bool:
    return str(spec).lower().startswith(SCHEMES)


def split_bot(url: str) -> tuple[str, str]:
    """(the URL without kbchat's `bot` parameter, the bot's name)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    bots = [v for k, v in query if k == "bot"]
    bot = (bots[-1] if bots else "main").strip().lower()
    if not _BOT.match(bot):
        raise BadInput(f"The bot name {bot!r} in the database address is not usable: use 1 to 40 lower-case "
                       "letters, digits or _, like ?bot=bakery.")
    rest = urlencode([(k, v) for k, v in query if k != "bot"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), bot


def shown(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def resolve(spec: str | os.PathLike) -> Path:
    """The knowledge base folder for a `--kb` value: the folder itself, or for a database URL the
    local folder that points at the database (made on first use)."""
    if not is_database_url(str(spec)):
        if _URL.match(str(spec)):
            scheme = str(spec).split(":", 1)[0]
            raise BadInput(f"kbchat cannot keep a knowledge base at a {scheme}:// address. Use a folder, or a PostgreSQL "
                           "database like postgresql://user:password@host:5432/dbname?bot=NAME.")
        return Path(spec)
    url, bot = split_bot(str(spec))
    parts = urlsplit(url)
    place = f"{parts.hostname or 'local'}-{parts.port or 5432}-{parts.path.strip('/') or 'postgres'}"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]  # two servers with the same name stay apart
    root = Path(os.environ.get(FILES_ENV) or Path.home() / ".local" / "share" / "kbchat")
    folder = root / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', place)}-{digest}" / bot
    folder.mkdir(parents=True, exist_ok=True)
    text = f'# This knowledge base lives in a PostgreSQL database; this folder keeps its local files.\nurl = "{_escape(url)}"\nbot = "{bot}"\n'
    path = folder / DATABASE_FILE
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        path.chmod(0o600)  # the URL may carry the database password
    return folder


def database_of(kb_dir: str | os.PathLike) -> tuple[str, str] | None:
    """(URL, bot) when this knowledge base folder points at a database, else None."""
    path = Path(kb_dir) / DATABASE_FILE
    if not path.is_file():
        return None
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
        return str(values["url"]), str(values.get("bot", "main"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError) as e:
        raise BadInput(f"{path} is damaged ({e}). Delete it and open the knowledge base again with "
                       "--kb postgresql://...") from None


def describe(kb_dir: str | os.PathLike) -> str:
    """How messages name a knowledge base: its folder, or its database and bot."""
    where = database_of(kb_dir)
    if where is None:
        return str(kb_dir)
    return f"bot '{where[1]}' in {shown(where[0])}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
