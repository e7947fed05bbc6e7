"""The settings of a knowledge base, one group per concern: reading documents (`IngestSettings`),
the models (`ModelSettings`), answering (`AnswerSettings`), the website chat window
(`WidgetSettings`) and the chat server (`ServerSettings`). kb.settings.Settings holds one of each and
reads and writes them as `settings.toml`. (Fine-tuning's settings are tuning.train.TuneSettings.)

Every field has one type, a default and a one-line help text (shown by `kbchat settings` and the
app); each group checks its own values where it is built, with messages that name the setting.

    >>> AnswerSettings(top_k=3).faq_threshold is None   # None: measured on the owner's own FAQ
    True
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from dataclasses import dataclass, field

from kb.errors import BadInput
from kb.records import PATH_NAMES

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
DEFAULT_FALLBACK = "Sorry, I don't have that information. Please contact us directly and we'll be glad to help."
PROFILE_ENV = "KBCHAT_MODEL_PROFILE"  # the default profile where settings.toml names none
# What each profile runs: (search model, answer writer), as the model settings take them ("" is
# the packaged MiniLM / SmolLM2).
PROFILES = {
    "quality": ("all-mpnet-base-v2", "qwen2.5-coder-1.5b-instruct"),
    "small": ("", ""),
}
AUTO = "auto"  # how settings.toml and the interfaces spell a threshold left to calibration (None here)
TYPE_WORDS = {int: "a whole number", float: "a number", str: "text", bool: "true or false", tuple: "a list of texts"}


def _opt(default, help: str, *, auto: bool = False):
    """A setting. `auto`: a number from 0 to 1, or None for "measured on your own documents"."""
    return field(default=default, metadata={"help": help, "type": float if auto else type(default), "auto": auto})


def setting_type(f: dataclasses.Field) -> type:
    return f.metadata["type"]


class Group:
    """What every group shares: its values are checked against their types when it is built."""

    def _check_types(self) -> None:
        for f in dataclasses.fields(self):
            value, want = getattr(self, f.name), setting_type(f)
            if f.metadata["auto"] and value is None:
                continue
            if want is tuple and isinstance(value, list):
                value = tuple(value)
                setattr(self, f.name, value)
            if want is tuple and not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                raise BadInput(f"Setting '{f.name}' must be a list of texts, not {value!r}.")
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
                kind = "auto or a number between 0 and 1" if f.metadata["auto"] else TYPE_WORDS[want]
                raise BadInput(f"Setting '{f.name}' must be {kind}, not {value!r}.")
            if f.metadata["auto"] and not 0 <= value <= 1:
                raise BadInput(f"Setting '{f.name}' must be auto or a number between 0 and 1, not {value!r}.")


def _between(name: str, value, low, high, unit: str = "") -> None:
    if not low <= value <= high:
        raise BadInput(f"Setting '{name}' must be between {low} and {high}{unit}, not {value}.")


def _positive(name: str, value, unit: str) -> None:
    if value <= 0:
        raise BadInput(f"Setting '{name}' must be more than 0{unit}, not {value}.")


def _web_address(name: str, value: str) -> None:
    if value and not re.match(r"https?://\S+$", value):
        raise BadInput(f"Setting '{name}' must be a web address starting with https:// (or empty), not {value!r}.")


@dataclass
class IngestSettings(Group):
    # ~800 characters is ~200 tokens: inside MiniLM's 256-token window, and small enough that a
    # cited passage is one idea.
    chunk_size: int = _opt(800, "Target length of a passage, in characters.")
    chunk_overlap: int = _opt(120, "Characters repeated between neighbouring passages, so a fact cut at a boundary is still found.")
    max_file_mb: float = _opt(50.0, "Files bigger than this (in MB) are refused instead of being read slowly.")
    fetch_timeout_s: float = _opt(15.0, "Seconds to wait for one web page before giving up on it.")
    user_agent: str = _opt("kbchat/0.1 (knowledge-base builder)", "How kbchat names itself to websites it reads.")
    intranet_addresses: tuple = _opt((), "Private addresses or networks kbchat may read web pages from, for an intranet "
                                         "(a list, like 192.168.1.0/24|10.0.0.5, or all); empty: public addresses only.")

    def __post_init__(self) -> None:
        self._check_types()
        _between("chunk_size", self.chunk_size, 100, 8000, " characters")
        if not 0 <= self.chunk_overlap <= self.chunk_size // 2:
            raise BadInput(f"Setting 'chunk_overlap' must be between 0 and half of chunk_size ({self.chunk_size // 2}), "
                           f"not {self.chunk_overlap}.")
        _positive("max_file_mb", self.max_file_mb, "")
        _positive("fetch_timeout_s", self.fetch_timeout_s, " seconds")
        for entry in self.intranet_addresses:
            try:
                if entry != "all":
                    ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise BadInput(f"Intranet address {entry!r} must be an address like 10.0.0.5, a network like "
                               "192.168.1.0/24, or all.") from None


@dataclass
class ModelSettings(Group):
    # A profile picks the search model and the answer writer together; the two paths below
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
    # On a CPU with bfloat16 instructions (AVX512-BF16, AMX) the search model runs its matrix products
    # in bfloat16: all-mpnet-base-v2 built the ranking sets' indexes 2.1x faster with the same hit@1
    # on every set (rag.embed, bench/retrieval.py --precision).
    fast_search: bool = _opt(True, "Compute search vectors in bfloat16 on processors that support it (about twice "
                                   "as fast; the ranking very rarely differs). Off: full float32 precision.")
    # llama.cpp runs .gguf models. 0: before each answer, one thread per core that other work leaves
    # free (rag.cores): on 2 cores with one busy elsewhere, that wrote answers 1.39x faster than 2 threads.
    threads: int = _opt(0, "CPU threads the language model uses. 0: every core other programs leave free, looked at "
                           "before each answer. A number fixes it.")
    context_tokens: int = _opt(4096, "The most tokens (question, passages and answer together) the language model reads at once.")

    def __post_init__(self) -> None:
        self._check_types()
        if self.model_profile not in PROFILES:
            raise BadInput(f"Setting 'model_profile' must be {' or '.join(PROFILES)}, not {self.model_profile!r}.")
        if self.model_server_url and not re.match(r"https?://\S+$", self.model_server_url):
            raise BadInput(f"Setting 'model_server_url' must be a web address like http://127.0.0.1:8080/v1, not "
                           f"{self.model_server_url!r}.")
        if self.model_server_url and not self.model_server_model.strip():
            raise BadInput("Setting 'model_server_url' is set but 'model_server_model' is empty: give the name of the "
                           "model on the server (the server's /v1/models lists them).")
        _positive("model_server_timeout_s", self.model_server_timeout_s, " seconds")
        if not 0 <= self.threads <= 512:
            raise BadInput(f"Setting 'threads' must be between 0 (the cores other programs leave free) and 512, not {self.threads}.")
        _between("context_tokens", self.context_tokens, 512, 131072)

    @property
    def custom(self) -> bool:
        """Whether a model setting points away from the profile's models."""
        return bool(self.embedder_path or self.generator_path or self.model_server_url)

    @property
    def embedder(self) -> str:
        """The search model to use: embedder_path, else the profile's."""
        return self.embedder_path or PROFILES[self.model_profile][0]

    @property
    def generator(self) -> str:
        """The answer writer to use: generator_path, else the profile's."""
        return self.generator_path or PROFILES[self.model_profile][1]


@dataclass
class AnswerSettings(Group):
    # Defaults measured on sample_data/eval_questions.jsonl with bench/answers.py. top_k 5 rather
    # than 3: the expected fact is in the top 3 passages for 0.91 of sample_data's questions, in the
    # top 5 for 0.94, and Qwen2.5-Coder-1.5B's facts rose 0.73 -> 0.77 for ~1 s more.
    top_k: int = _opt(5, "How many passages the answer is written from.")
    # Reading the passages is most of a written answer's time on a CPU (bench/answers.py: 80% of it on
    # 2 cores, ~90 tokens/s), and a passage far below the best one rarely holds the answer: on the
    # sample and two businesses written apart from it, the first passage with the fact was more than
    # 0.2 below the best for 1 of 198 questions (0.15: 3). At 0.15 the model read 402 tokens instead
    # of 530 at p50 and wrote answers 10% sooner with the same facts (40 sample questions); 0.2 is
    # kept for the businesses not measured (424 tokens, the same facts).
    passage_margin: float = _opt(0.2, "The model does not read a passage that matches the question this much (0-1) "
                                      "less than the best one, so it answers sooner; the best two are always read. "
                                      "1 reads all top_k passages.")
    rag_writer: str = _opt(
        "auto",
        "How answers from your documents are made. model: the language model writes them from the best passages. "
        "quote: the best passage's own sentences, instantly, without the model. auto: quote with the small "
        "profile's SmolLM2 (too small to read passages reliably), else model.",
    )
    faq_threshold: float | None = _opt(None, "How closely (0-1) a question must match a curated FAQ for its answer to be "
                                             "given word for word; auto: measured on your own FAQ for the search model.",
                                       auto=True)
    refusal_threshold: float | None = _opt(None, "Questions whose best passage matches less than this (0-1) get the fallback "
                                                 "message without asking the model; auto: measured on your own documents.",
                                           auto=True)
    answer_check: bool = _opt(True, "Before the model writes an answer, ask it whether your documents answer the question, "
                                    "and give the fallback message when they do not.")
    answerable_threshold: float | None = _opt(None, "With answer_check: how sure (0-1) the model must be that your documents "
                                                    "answer a question before it writes; auto: measured on your own documents.",
                                              auto=True)
    lexical_weight: float = _opt(0.05, "How much exact-word matching (BM25) adds to meaning-based search; 0 turns it off.")
    fallback_message: str = _opt(DEFAULT_FALLBACK, "What the chatbot says when your documents do not answer a question. "
                                                   "Give your phone or e-mail (the contact setting fills it in).")
    tone: str = _opt("professional", "How written answers sound: professional, friendly, concise, or custom "
                                     "(your own words in tone_instructions). Curated FAQ answers and quotes keep your wording.")
    tone_instructions: str = _opt("", "With tone custom: a few sentences on how answers should sound, e.g. "
                                      "'Speak like a relaxed surf instructor. Call customers mate.'")
    max_new_tokens: int = _opt(120, "The longest answer the model may write, in tokens (about 3/4 of a word each).")
    chat_idle_minutes: float = _opt(30.0, "A visitor's chat starts fresh after this many minutes without a message; until "
                                          "then the chatbot reads the chat's last messages to understand follow-up questions.")
    max_question_chars: int = _opt(1000, "The longest question, in characters, that the chat takes; a longer one is "
                                         "sent back with a request to shorten it (the app, the widget, the API and "
                                         "the command line alike).")

    def __post_init__(self) -> None:
        self._check_types()
        _between("lexical_weight", self.lexical_weight, 0, 1)
        _between("top_k", self.top_k, 1, 20)
        _between("passage_margin", self.passage_margin, 0, 1)
        _between("max_new_tokens", self.max_new_tokens, 1, 2000)
        _between("max_question_chars", self.max_question_chars, 20, 20000)
        _positive("chat_idle_minutes", self.chat_idle_minutes, " minutes")
        if not self.fallback_message.strip():
            raise BadInput("Setting 'fallback_message' must not be empty: it is what customers see when there is no answer.")
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

    @property
    def tone_prompt(self) -> str:
        """The sentence(s) the writing prompt adds for the tone setting ("" for professional)."""
        if self.tone == "custom":
            style = " ".join(self.tone_instructions.split())
            return (f"The business asks for answers in this style: {style} This is about how you write only: "
                    "the facts still come from the documents alone.")
        return TONES[self.tone]


def fallback_with(contact: str) -> str:
    """The default fallback message, giving the way to reach the business when there is one."""
    contact = " ".join(str(contact).split())
    if not contact:
        return DEFAULT_FALLBACK
    return f"Sorry, I don't have that information. Please contact us at {contact} and we'll be glad to help."


@dataclass
class WidgetSettings(Group):
    business_name: str = _opt("", "Your business's name as customers know it, for what the chat says in your name "
                                  "(like the contact form's 'I agree that ... may contact me').")
    contact: str = _opt("", "The phone number, e-mail address or web page where customers reach you. The default "
                            "fallback message gives it, so a customer the chatbot cannot help knows where to turn.")
    bot_name: str = _opt("Chat with us", "The name at the top of the chat window on your website.")
    bot_color: str = _opt("#2f6f4f", "The chat window's main colour, as #RRGGBB.")
    bot_text_color: str = _opt("#ffffff", "The colour of text on the main colour, as #RRGGBB.")
    bot_logo_url: str = _opt("", "A web address (https://...) of a small logo for the chat window; empty for none.")
    welcome_message: str = _opt("Hi! Ask me anything about us.", "The first message visitors see in the chat.")
    suggested_questions: tuple = _opt((), "Questions offered as buttons when the chat opens (a list).")
    visitor_path: str = _opt("rag", "Which answer path website visitors get: rag, base, tuned or rag+tuned.")

    def __post_init__(self) -> None:
        self._check_types()
        for name in ("bot_name", "welcome_message"):
            if not getattr(self, name).strip():
                raise BadInput(f"Setting '{name}' must not be empty: visitors see it in the chat window.")
        for name, most in (("business_name", 100), ("contact", 200)):
            if len(getattr(self, name)) > most:
                raise BadInput(f"Setting '{name}' is {len(getattr(self, name)):,} characters long; keep it to "
                               f"{most} at most.")
        for name in ("bot_color", "bot_text_color"):
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", getattr(self, name)):
                raise BadInput(f"Setting '{name}' must be a colour like #2f6f4f, not {getattr(self, name)!r}.")
        _web_address("bot_logo_url", self.bot_logo_url)
        if len(self.suggested_questions) > 6:
            raise BadInput("Give at most 6 suggested questions: more do not fit in the chat window.")
        if self.visitor_path not in PATH_NAMES:
            raise BadInput(f"Setting 'visitor_path' must be {', '.join(PATH_NAMES[:-1])} or {PATH_NAMES[-1]}, "
                           f"not {self.visitor_path!r}.")


@dataclass
class ServerSettings(Group):
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
    sync_every_hours: float = _opt(0.0, "Read your web pages and files again this often while kbchat serve runs, "
                                        "keeping only what changed (like kbchat sync); 0: never by itself.")

    def __post_init__(self) -> None:
        self._check_types()
        for origin in self.allowed_origins:
            if origin != "*" and not re.fullmatch(r"https?://[^/\s:]+(:(\d+|\*))?", origin):
                raise BadInput(f"Allowed origin {origin!r} must look like https://www.example.com (no path), "
                               "optionally with a port like :8080 or :* for any port, or be * for any site.")
        if self.rate_limit_per_ip < 1 or self.rate_limit_per_session < 1:
            raise BadInput("Rate limits must be at least 1 question per minute.")
        if self.retention_days < 0:
            raise BadInput(f"Setting 'retention_days' must be 0 (keep everything) or a number of days, not {self.retention_days}.")
        if self.redis_url and not re.match(r"(rediss?|unix)://\S+$", self.redis_url):
            raise BadInput(f"Setting 'redis_url' must be a Redis address like redis://127.0.0.1:6379/0, not {self.redis_url!r}.")
        _web_address("lead_webhook_url", self.lead_webhook_url)
        _positive("answer_timeout_s", self.answer_timeout_s, " seconds")
        if self.sync_every_hours and not 0.25 <= self.sync_every_hours <= 8760:
            raise BadInput(f"Setting 'sync_every_hours' must be 0 (off) or between 0.25 (every 15 minutes) and 8760 "
                           f"(once a year), not {self.sync_every_hours:g}.")


# The groups in the order settings.toml and the help screens show them, by their table name.
GROUPS: dict[str, type[Group]] = {
    "ingest": IngestSettings,
    "models": ModelSettings,
    "answers": AnswerSettings,
    "widget": WidgetSettings,
    "server": ServerSettings,
}
FIELDS = {f.name: f for cls in GROUPS.values() for f in dataclasses.fields(cls)}  # every setting, group by group
GROUP_OF = {f.name: group for group, cls in GROUPS.items() for f in dataclasses.fields(cls)}
