"""The settings of a knowledge base, read from `settings.toml` in its directory (or, for a
knowledge base in PostgreSQL, the same TOML text kept in its database, so every API worker reads
the same settings).

`Settings` holds one group per concern (kb.setting_groups): `ingest`, `models`, `answers`,
`widget` and `server`. settings.toml keeps each group in a table of that name; a file of the older
flat form (every setting at the top) still loads. Settings are named by their own names everywhere
an owner meets them (`kbchat settings --set top_k=3`), so building one takes them by name too:

    >>> Settings(chunk_size=600).ingest.chunk_size
    600
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from kb.errors import BadInput
from kb.files import atomic_write
from kb.setting_groups import (AUTO, DEFAULT_FALLBACK, FIELDS, GROUP_OF, GROUPS, TYPE_WORDS, AnswerSettings, Group,
                               IngestSettings, ModelSettings, ServerSettings, WidgetSettings, fallback_with, setting_type)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SETTINGS_FILE = "settings.toml"


@dataclass(init=False)
class Settings:
    ingest: IngestSettings
    models: ModelSettings
    answers: AnswerSettings
    widget: WidgetSettings
    server: ServerSettings

    def __init__(self, ingest: IngestSettings | None = None, models: ModelSettings | None = None,
                 answers: AnswerSettings | None = None, widget: WidgetSettings | None = None,
                 server: ServerSettings | None = None, **values) -> None:
        """The given groups (defaults for the rest), with any settings given by name changed in them.
        An unknown name is refused with the known ones."""
        given = {"ingest": ingest, "models": models, "answers": answers, "widget": widget, "server": server}
        by_group: dict[str, dict] = {name: {} for name in GROUPS}
        for name, value in values.items():
            if name not in GROUP_OF:
                raise BadInput(f"Unknown setting '{name}'. Known settings: {', '.join(sorted(GROUP_OF))}.")
            by_group[GROUP_OF[name]][name] = value
        for name, cls in GROUPS.items():
            group = given[name]
            if group is None:
                group = cls(**by_group[name])
            elif by_group[name]:
                group = dataclasses.replace(group, **by_group[name])
            setattr(self, name, group)

    def groups(self) -> dict[str, Group]:
        return {name: getattr(self, name) for name in GROUPS}

    def get(self, name: str):
        """One setting by its name."""
        if name not in GROUP_OF:
            raise BadInput(f"Unknown setting '{name}'. Known settings: {', '.join(sorted(GROUP_OF))}.")
        return getattr(getattr(self, GROUP_OF[name]), name)

    @property
    def profile_in_use(self) -> str:
        """The model profile the answers come from, or "custom" when a model setting points elsewhere."""
        return "custom" if self.models.custom else self.models.model_profile

    @property
    def quotes(self) -> bool:
        """Whether the rag path quotes the best passage instead of having the model write. On
        sample_data SmolLM2-135M writing put the expected fact in 0.21 of its answers, quoting 0.65
        (bench/answers.py --profile small)."""
        writer = self.answers.rag_writer
        return writer == "quote" or (writer == "auto" and not self.models.generator and not self.models.model_server_url)

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
        """Settings from parsed TOML: one table per group ([answers], [widget]…), or the older flat
        form with every setting at the top; both may be mixed. Thresholds may say "auto"."""
        flat: dict = {}
        for key, value in values.items():
            if key in GROUPS and isinstance(value, dict):
                for name, inner in value.items():
                    if GROUP_OF.get(name) != key:
                        raise BadInput(_unknown(name, where, f" [{key}]") if name not in GROUP_OF else
                                       f"Setting '{name}' belongs in [{GROUP_OF[name]}], not [{key}], in {where}.")
                    flat[name] = inner
            elif key in GROUP_OF:
                flat[key] = value
            elif isinstance(value, dict):
                raise BadInput(f"Unknown section [{key}] in {where}. The sections are "
                               f"{', '.join(f'[{name}]' for name in GROUPS)}.")
            else:
                raise BadInput(_unknown(key, where))
        return cls(**{name: _from_text(name, value) for name, value in flat.items()})

    def save(self, kb_dir: str | os.PathLike) -> Path | str:
        """Write the settings that differ from the defaults, one table per group, with their help as comments."""
        path = Path(kb_dir) / SETTINGS_FILE
        lines = ["# kbchat settings. Delete a line to go back to its default."]
        for group_name, group in self.groups().items():
            changed = [f for f in dataclasses.fields(group) if getattr(group, f.name) != f.default]
            if changed:
                lines += ["", f"[{group_name}]"]
            for f in changed:
                lines += [f"# {f.metadata['help']}", f"{f.name} = {_toml_value(getattr(group, f.name))}"]
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
        """A copy with some settings changed (by name) and checked; text values (from a command line or
        a form) are read as the setting's type."""
        fields = FIELDS
        parsed = {}
        for name, value in changes.items():
            if name not in fields:
                raise BadInput(f"Unknown setting '{name}'. Known settings: {', '.join(sorted(fields))}.")
            parsed[name] = _parse(fields[name], value) if isinstance(value, str) else value
        if "contact" in parsed and "fallback_message" not in parsed \
                and self.answers.fallback_message in (DEFAULT_FALLBACK, fallback_with(self.widget.contact)):
            parsed["fallback_message"] = fallback_with(parsed["contact"])  # the owner's own wording stays
        return Settings(**self.groups(), **parsed)

    @staticmethod
    def describe() -> list[tuple[str, object, str]]:
        """(name, default, help) for every setting, group by group, for help screens."""
        return [(f.name, f.default, f.metadata["help"]) for f in FIELDS.values()]

    def to_dict(self) -> dict:
        """Every setting by name (None: a threshold left to calibration)."""
        return {name: self.get(name) for name in GROUP_OF}


def _unknown(name: str, where: str, table: str = "") -> str:
    return f"Unknown setting {name!r}{table} in {where}. Known settings: {', '.join(sorted(GROUP_OF))}."


def _from_text(name: str, value):
    """A TOML value as the setting takes it: a threshold may be written "auto" (None) or as a number
    in quotes, as older versions kept it."""
    f = FIELDS[name]
    return _parse(f, value) if f.metadata["auto"] and isinstance(value, str) else value


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


def _parse(f: dataclasses.Field, text: str):
    """A setting's value from text: a number, true/false, auto for a threshold, or a list."""
    name, want = f.name, setting_type(f)
    if f.metadata["auto"] and text.strip().lower() == AUTO:
        return None
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
        kind = "auto or a number between 0 and 1" if f.metadata["auto"] else TYPE_WORDS[want]
        raise BadInput(f"Setting '{name}' must be {kind}, not {text!r}.") from None


def _toml_value(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'
