"""One settings object for kbchat, read from `settings.toml` in the knowledge base directory (or,
for a knowledge base in PostgreSQL, the same TOML text kept in its database, so every API worker
reads the same settings).

Every field has a default and a one-line help text (shown by `kbchat settings` and the app).
Values are validated where the object is built, with messages that name the field.

    >>> Settings(chunk_size=600).chunk_size
    600
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import BadInput
from kb.files import atomic_write
from kb.records import PATH_NAMES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SETTINGS_FILE = "settings.toml"
AUTO_NUMBERS = ("faq_threshold", "refusal_threshold", "answerable_threshold")  # "auto" or a number
WRITERS = ("auto", "model", "quote")  # the rag_writer setting
# The tone setting: what each preset asks of the model that writes answers (the rag and base paths).
# "professional" adds nothing: it is the prompt every answer-quality figure was measured with.
TONES = {
    "professional": "",
    "friendly": ("Write warmly, as a friendly member of staff talking to a customer they like: start with a short "
                 "friendly phrase (like \"Great question!\") and end by offering more help (like \"Anything else I can "
                 "help with?\"). The facts stay exactly as the documents give them."),
    "concise": "Be as brief as you can: one short sentence with the facts, no greeting and no extra words.",
    "custom": "",  # the owner's own tone_instructions
}
TONE_INSTRUCTIONS_MAX = 600  # characters: a few sentences; a long text would crowd out the documents
PROFILE_ENV = "KBCHAT_MODEL_PROFILE"  # the default profile where settings.toml names none
# What each profile runs: (search model, answer writer), as the model settings take them ("" is
# the packaged MiniLM / SmolLM2).
PROFILES = {
    "quality": ("all-mpnet-base-v2", "qwen2.5-coder-1.5b-instruct"),
    "small": ("", ""),
}


def _opt(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class Settings:
    # Chunking. ~800 characters is ~200 tokens: inside MiniLM's 256-token window, and small enough
    # that a cited passage is one idea.
    chunk_size: int = _opt(800, "Target length of a passage, in characters.")
    chunk_overlap: int = _opt(120, "Characters repeated between neighbouring passages, so a fact cut at a boundary is still found.")
    # Ingestion
    max_file_mb: float = _opt(50.0, "Files bigger than this (in MB) are refused instead of being read slowly.")
    fetch_timeout_s: float = _opt(15.0, "Seconds to wait for one web page before giving up on it.")
    user_agent: str = _opt("kbchat/0.1 (knowledge-base builder)", "How kbchat names itself to websites it reads.")
    intranet_addresses: tuple = _opt((), "Private addresses or networks kbchat may read web pages from, for an intranet "
                                         "(a list, like 192.168.1.0/24|10.0.0.5, or all); empty: public addresses only.")
    # Models. A profile picks the search model and the answer writer together; the two paths below
    # override either one (empty: the profile's).
    model_profile: str = _opt(
        os.environ.get(PROFILE_ENV, "quality"),
        "quality: better answers, slower (all-mpnet-base-v2 search, Qwen2.5-Coder-1.5B writer). "
        "small: fast and light, weaker answers (all-MiniLM-L6-v2, SmolLM2-135M).",
    )
    embedder_path: str = _opt("", "A local sentence-transformers model folder (or packaged model name); empty uses the profile's.")
    generator_path: str = _opt("", "A local Hugging Face model folder or .gguf file (or packaged model name); empty uses the profile's.")
    # A model server shared by several kbchat workers (any OpenAI-compatible chat API) writes the
    # answers instead of a model in this process; its key comes from $KBCHAT_MODEL_SERVER_KEY.
    model_server_url: str = _opt("", "The address of an OpenAI-compatible model server that writes the answers, like "
                                     "http://127.0.0.1:8080/v1 (llama.cpp, Ollama, vLLM, a hosted API); empty: the "
                                     "model runs in kbchat. Its key goes in $KBCHAT_MODEL_SERVER_KEY.")
    model_server_model: str = _opt("", "With model_server_url: the name of the model on the server.")
    model_server_timeout_s: float = _opt(60.0, "With model_server_url: seconds to wait for the server to start answering.")
    # llama.cpp runs .gguf models. 0 threads uses every core; on a busy machine 1 can be faster.
    threads: int = _opt(0, "CPU threads the language model uses (0: all cores). Try 1 on a machine that runs other work.")
    context_tokens: int = _opt(4096, "The most tokens (question, passages and answer together) the language model reads at once.")
    # Answering. Defaults measured on sample_data/eval_questions.jsonl with bench/answers.py.
    # 5 rather than 3: the expected fact is in the top 3 passages for 0.91 of sample_data's questions,
    # in the top 5 for 0.94, and Qwen2.5-Coder-1.5B's facts rose 0.73 -> 0.77 for ~1 s more.
    top_k: int = _opt(5, "How many passages the answer is written from.")
    rag_writer: str = _opt(
        "auto",
        "How answers from your documents are made. model: the language model writes them from the best passages. "
        "quote: the best passage's own sentences, instantly, without the model. auto: quote with the small "
        "profile's SmolLM2 (too small to read passages reliably), else model.",
    )
    faq_threshold: str = _opt("auto", "How closely (0-1) a question must match a curated FAQ for its answer to be given word for word; auto: measured on your own FAQ for the search model.")
    refusal_threshold: str = _opt("auto", "Questions whose best passage matches less than this (0-1) get the fallback message without asking the model; auto: measured on your own documents.")
    answer_check: bool = _opt(True, "Before the model writes an answer, ask it whether your documents answer the question, "
                                    "and give the fallback message when they do not.")
    answerable_threshold: str = _opt("auto", "With answer_check: how sure (0-1) the model must be that your documents answer "
                                             "a question before it writes; auto: measured on your own documents.")
    lexical_weight: float = _opt(0.15, "How much exact-word matching (BM25) adds to meaning-based search; 0 turns it off.")
    fallback_message: str = _opt(
        "Sorry, I don't have that information. Please contact us directly and we'll be glad to help.",
        "What the chatbot says when your documents do not answer a question. Add your phone or email.",
    )
    tone: str = _opt("professional", "How written answers sound: professional, friendly, concise, or custom "
                                     "(your own words in tone_instructions). Curated FAQ answers and quotes keep your wording.")
    tone_instructions: str = _opt("", "With tone custom: a few sentences on how answers should sound, e.g. "
                                      "'Speak like a relaxed surf instructor. Call customers mate.'")
    max_new_tokens: int = _opt(120, "The longest answer the model may write, in tokens (about 3/4 of a word each).")
    chat_idle_minutes: float = _opt(30.0, "A visitor's chat starts fresh after this many minutes without a message; until "
                                          "then the chatbot reads the chat's last messages to understand follow-up questions.")
    max_question_chars: int = _opt(1000, "Longer questions are cut to this many characters (with a note).")
    # The website chatbot (kbchat serve and its widget).
    bot_name: str = _opt("Chat with us", "The name at the top of the chat window on your website.")
    bot_color: str = _opt("#2f6f4f", "The chat window's main colour, as #RRGGBB.")
    bot_text_color: str = _opt("#ffffff", "The colour of text on the main colour, as #RRGGBB.")
    bot_logo_url: str = _opt("", "A web address (https://...) of a small logo for the chat window; empty for none.")
    welcome_message: str = _opt("Hi! Ask me anything about us.", "The first message visitors see in the chat.")
    suggested_questions: tuple = _opt((), "Questions offered as buttons when the chat opens (a list).")
    visitor_path: str = _opt("rag", "Which answer path website visitors get: rag, base, tuned or rag+tuned.")
    allowed_origins: tuple = _opt(
        ("http://localhost:*", "http://127.0.0.1:*"),
        "Websites allowed to use the chat, like https://www.example.com (a list; :* allows any port; * allows any site).",
    )
    rate_limit_per_ip: int = _opt(30, "Most questions one visitor's address may ask per minute.")
    rate_limit_per_session: int = _opt(12, "Most questions one chat may ask per minute.")
    redis_url: str = _opt("", "The address of a Redis server, like redis://127.0.0.1:6379/0, that keeps the rate limits "
                              "so several kbchat serve workers share them; empty: each worker counts on its own.")
    retention_days: int = _opt(0, "Delete visitors' conversations and leads older than this many days, automatically "
                                  "(0: keep them).")
    lead_webhook_url: str = _opt("", "A web address (https://...) that receives each new lead as JSON; empty for none.")
    answer_timeout_s: float = _opt(60.0, "Seconds a visitor's question may wait for the model before a 'busy' message.")

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(f.default, tuple) and isinstance(value, list):
                value = tuple(value)
                setattr(self, f.name, value)
            if isinstance(f.default, tuple) and not all(isinstance(v, str) for v in value):
                raise BadInput(f"Setting '{f.name}' must be a list of texts, not {value!r}.")
            want = type(f.default)
            if f.name in AUTO_NUMBERS and isinstance(value, (int, float)) and not isinstance(value, bool):
                continue  # a number where "auto" is the default: checked below
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
                raise BadInput(f"Setting '{f.name}' must be a {_TYPE_WORDS[want]}, not {value!r}.")
        if not 100 <= self.chunk_size <= 8000:
            raise BadInput(f"Setting 'chunk_size' must be between 100 and 8000 characters, not {self.chunk_size}.")
        if not 0 <= self.chunk_overlap <= self.chunk_size // 2:
            raise BadInput(
                f"Setting 'chunk_overlap' must be between 0 and half of chunk_size ({self.chunk_size // 2}), "
                f"not {self.chunk_overlap}."
            )
        if self.max_file_mb <= 0:
            raise BadInput(f"Setting 'max_file_mb' must be more than 0, not {self.max_file_mb}.")
        for name in AUTO_NUMBERS:
            value = getattr(self, name)
            number = _number(value)
            if value != "auto" and (number is None or not 0 <= number <= 1):
                raise BadInput(f"Setting '{name}' must be auto or a number between 0 and 1, not {value!r}.")
            if number is not None:
                setattr(self, name, number)
        if not 0 <= self.lexical_weight <= 1:
            raise BadInput(f"Setting 'lexical_weight' must be between 0 and 1, not {self.lexical_weight}.")
        if not 1 <= self.top_k <= 20:
            raise BadInput(f"Setting 'top_k' must be between 1 and 20, not {self.top_k}.")
        if not 1 <= self.max_new_tokens <= 2000:
            raise BadInput(f"Setting 'max_new_tokens' must be between 1 and 2000, not {self.max_new_tokens}.")
        if not 0 <= self.threads <= 512:
            raise BadInput(f"Setting 'threads' must be between 0 (all cores) and 512, not {self.threads}.")
        if not 512 <= self.context_tokens <= 131072:
            raise BadInput(f"Setting 'context_tokens' must be between 512 and 131072, not {self.context_tokens}.")
        if not 20 <= self.max_question_chars <= 20000:
            raise BadInput(f"Setting 'max_question_chars' must be between 20 and 20000, not {self.max_question_chars}.")
        for name in ("bot_name", "welcome_message"):
            if not getattr(self, name).strip():
                raise BadInput(f"Setting '{name}' must not be empty: visitors see it in the chat window.")
        if not self.fallback_message.strip():
            raise BadInput("Setting 'fallback_message' must not be empty: it is what customers see when there is no answer.")
        for name in ("bot_color", "bot_text_color"):
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", getattr(self, name)):
                raise BadInput(f"Setting '{name}' must be a colour like #2f6f4f, not {getattr(self, name)!r}.")
        if self.redis_url and not re.match(r"(rediss?|unix)://\S+$", self.redis_url):
            raise BadInput(f"Setting 'redis_url' must be a Redis address like redis://127.0.0.1:6379/0, not {self.redis_url!r}.")
        if self.model_server_url and not re.match(r"https?://\S+$", self.model_server_url):
            raise BadInput(f"Setting 'model_server_url' must be a web address like http://127.0.0.1:8080/v1, not "
                           f"{self.model_server_url!r}.")
        if self.model_server_url and not self.model_server_model.strip():
            raise BadInput("Setting 'model_server_url' is set but 'model_server_model' is empty: give the name of the "
                           "model on the server (the server's /v1/models lists them).")
        if self.model_server_timeout_s <= 0:
            raise BadInput(f"Setting 'model_server_timeout_s' must be more than 0 seconds, not {self.model_server_timeout_s}.")
        for name in ("bot_logo_url", "lead_webhook_url"):
            if getattr(self, name) and not re.match(r"https?://\S+$", getattr(self, name)):
                raise BadInput(f"Setting '{name}' must be a web address starting with https:// (or empty), not {getattr(self, name)!r}.")
        if self.rag_writer not in WRITERS:
            raise BadInput(f"Setting 'rag_writer' must be {', '.join(WRITERS)}, not {self.rag_writer!r}.")
        if self.tone not in TONES:
            raise BadInput(f"Setting 'tone' must be {', '.join(TONES)}, not {self.tone!r}.")
        if self.tone == "custom" and not self.tone_instructions.strip():
            raise BadInput("Setting 'tone' is custom but 'tone_instructions' is empty: write a few sentences on how "
                           "answers should sound, or choose professional, friendly or concise.")
        if len(self.tone_instructions) > TONE_INSTRUCTIONS_MAX:
            raise BadInput(f"Setting 'tone_instructions' is {len(self.tone_instructions):,} characters long; keep it to "
                           f"a few sentences ({TONE_INSTRUCTIONS_MAX} characters at most).")
        if self.model_profile not in PROFILES:
            raise BadInput(f"Setting 'model_profile' must be {' or '.join(PROFILES)}, not {self.model_profile!r}.")
        if self.visitor_path not in PATH_NAMES:
            raise BadInput(f"Setting 'visitor_path' must be {', '.join(PATH_NAMES[:-1])} or {PATH_NAMES[-1]}, "
                           f"not {self.visitor_path!r}.")
        for origin in self.allowed_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s:]+(:(\d+|\*))?", origin):
                raise BadInput(f"Allowed origin {origin!r} must look like https://www.example.com (no path), "
                               "optionally with a port like :8080 or :* for any port, or be * for any site.")
        for entry in self.intranet_addresses:
            try:
                if entry != "all":
                    ipaddress.ip_network(str(entry).strip(), strict=False)
            except ValueError:
                raise BadInput(f"Intranet address {entry!r} must be an address like 10.0.0.5, a network like "
                               "192.168.1.0/24, or all.") from None
        if len(self.suggested_questions) > 6:
            raise BadInput("Give at most 6 suggested questions: more do not fit in the chat window.")
        if self.rate_limit_per_ip < 1 or self.rate_limit_per_session < 1:
            raise BadInput("Rate limits must be at least 1 question per minute.")
        if self.retention_days < 0:
            raise BadInput(f"Setting 'retention_days' must be 0 (keep everything) or a number of days, not {self.retention_days}.")
        if self.chat_idle_minutes <= 0:
            raise BadInput(f"Setting 'chat_idle_minutes' must be more than 0 minutes, not {self.chat_idle_minutes}.")
        if self.answer_timeout_s <= 0:
            raise BadInput(f"Setting 'answer_timeout_s' must be more than 0 seconds, not {self.answer_timeout_s}.")
        if self.fetch_timeout_s <= 0:
            raise BadInput(f"Setting 'fetch_timeout_s' must be more than 0 seconds, not {self.fetch_timeout_s}.")

    def fixed_threshold(self, name: str) -> float | None:
        """faq_threshold, refusal_threshold or answerable_threshold as a number, or None when it is
        "auto" (calibrated)."""
        return _number(getattr(self, name))

    @property
    def profile_in_use(self) -> str:
        """The model profile the answers come from, or "custom" when a model setting points elsewhere."""
        return "custom" if self.embedder_path or self.generator_path or self.model_server_url else self.model_profile

    @property
    def embedder(self) -> str:
        """The search model to use: embedder_path, else the profile's."""
        return self.embedder_path or PROFILES[self.model_profile][0]

    @property
    def generator(self) -> str:
        """The answer writer to use: generator_path, else the profile's."""
        return self.generator_path or PROFILES[self.model_profile][1]

    @property
    def tone_prompt(self) -> str:
        """The sentence(s) the writing prompt adds for the tone setting ("" for professional)."""
        if self.tone == "custom":
            style = " ".join(self.tone_instructions.split())
            return (f"The business asks for answers in this style: {style} This is about how you write only: "
                    "the facts still come from the documents alone.")
        return TONES[self.tone]

    @property
    def quotes(self) -> bool:
        """Whether the rag path quotes the best passage instead of having the model write. On
        sample_data SmolLM2-135M writing put the expected fact in 0.21 of its answers, quoting 0.65
        (bench/answers.py --profile small)."""
        return self.rag_writer == "quote" or (self.rag_writer == "auto" and not self.generator and not self.model_server_url)

    # -- reading and writing -------------------------------------------------------------------
    @classmethod
    def load(cls, kb_dir: str | os.PathLike) -> "Settings":
        """The settings of a knowledge base: its settings.toml over the defaults."""
        from kb.location import database_of

        if database_of(kb_dir) is not None:
            text, where = _database_settings(kb_dir)
            if text is None:
                return cls()
        else:
            path = Path(kb_dir) / SETTINGS_FILE
            if not path.exists():
                return cls()
            text, where = path.read_bytes(), str(path)
        try:
            values = tomllib.loads(text.decode("utf-8") if isinstance(text, bytes) else text)
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise BadInput(f"{where} is not valid TOML ({e}). Fix the file or delete it to use the defaults.") from None
        return cls.from_dict(values, where=where)

    @staticmethod
    def stamp(kb_dir: str | os.PathLike) -> tuple:
        """Changes whenever the saved settings change (a running server reloads them then)."""
        from kb.location import database_of

        if database_of(kb_dir) is not None:
            row = _settings_db(kb_dir).execute("SELECT version FROM settings WHERE name = ?", (SETTINGS_FILE,)).fetchone()
            return (row[0],) if row else ()
        try:
            st = (Path(kb_dir) / SETTINGS_FILE).stat()
            return st.st_mtime_ns, st.st_size
        except FileNotFoundError:
            return ()

    @classmethod
    def from_dict(cls, values: dict, where: str = "settings") -> "Settings":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise BadInput(
                f"Unknown setting {', '.join(map(repr, unknown))} in {where}. Known settings: {', '.join(sorted(known))}."
            )
        return cls(**values)

    def save(self, kb_dir: str | os.PathLike) -> Path | str:
        """Write the settings that differ from the defaults, with their help as comments."""
        path = Path(kb_dir) / SETTINGS_FILE
        lines = ["# kbchat settings. Delete a line to go back to its default."]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                lines += [f"# {f.metadata['help']}", f"{f.name} = {_toml_value(value)}"]
        text = "\n".join(lines) + "\n"
        from kb.location import database_of

        if database_of(kb_dir) is not None:
            _settings_db(kb_dir).execute(
                "INSERT INTO settings(name, toml, version) VALUES (?, ?, 1) ON CONFLICT(name) DO UPDATE "
                "SET toml = excluded.toml, version = settings.version + 1", (SETTINGS_FILE, text))
            return _database_settings(kb_dir)[1]
        atomic_write(path, lambda f: f.write(text.encode("utf-8")))
        return path

    def updated(self, **changes) -> "Settings":
        """A copy with some fields changed and validated; string values are parsed to the field's type."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        parsed = {}
        for name, value in changes.items():
            if name not in fields:
                raise BadInput(f"Unknown setting '{name}'. Known settings: {', '.join(sorted(fields))}.")
            parsed[name] = _parse(name, value, type(fields[name].default)) if isinstance(value, str) else value
        return dataclasses.replace(self, **parsed)

    @staticmethod
    def describe() -> list[tuple[str, object, str]]:
        """(name, default, help) for every setting, for help screens."""
        return [(f.name, f.default, f.metadata["help"]) for f in dataclasses.fields(Settings)]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SETTINGS_TABLE = "CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, toml TEXT NOT NULL, version INTEGER NOT NULL)"


def _settings_db(kb_dir):
    from kb.db import Database

    db = Database.open(kb_dir)
    db.setup(_SETTINGS_TABLE)
    return db


def _database_settings(kb_dir) -> tuple[str | None, str]:
    db = _settings_db(kb_dir)
    row = db.execute("SELECT toml FROM settings WHERE name = ?", (SETTINGS_FILE,)).fetchone()
    return (row[0] if row else None), f"the settings of {db.where}"


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_TYPE_WORDS = {int: "whole number", float: "number", str: "text", bool: "true or false", tuple: "list of texts"}


def _parse(name: str, text: str, want: type):
    if want is str:
        return text
    if want is tuple:  # a JSON list, or texts separated by | ("When are you open?|Where are you?")
        if text.strip().startswith("["):
            try:
                return tuple(json.loads(text))
            except (json.JSONDecodeError, TypeError):
                raise BadInput(f"Setting '{name}' must be a list of texts, like [\"a\", \"b\"], not {text!r}.") from None
        return tuple(part.strip() for part in text.split("|") if part.strip())
    try:
        if want is bool:
            if text.lower() in ("true", "yes", "1", "on"):
                return True
            if text.lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        return want(text)
    except ValueError:
        raise BadInput(f"Setting '{name}' must be a {_TYPE_WORDS[want]}, not {text!r}.") from None


def _toml_value(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
