"""Subtitle files (.srt, .vtt) of the owner's videos: what is said becomes passages, each located by
the time it is said, so an answer cites "welcome-tour.srt, 03:12" and the owner can jump there.

Cues are joined into sections of about a minute of speech (a new one starts after a long pause
once a section has some length), so a passage holds whole thoughts rather than two-second
fragments; the chunker splits a longer section further, keeping its start time. Parsing is
pysubs2's; styling tags, speaker tags and the repeated lines of rolling auto-captions are dropped.

    >>> doc = read_subtitles(b"1\\n00:03:12,000 --> 00:03:15,000\\nWe open at <i>nine</i>.\\n", "welcome-tour.srt")
    >>> doc.title, doc.sections[0].location, doc.sections[0].text
    ('Welcome tour', '03:12', 'We open at nine.')
"""

from __future__ import annotations

import re
from pathlib import PurePath

from kb.errors import BadInput
from kb.readers.text import decode_text
from kb.records import Document, Section

SECTION_SECONDS = 60  # a section holds about this much speech
SECTION_CHARS = 700  # ... or this much text, whichever comes first
PAUSE_SECONDS = 4  # a pause this long ends a section that is already
PAUSE_MIN_SECONDS = 15  # ... this long

_FORMATS = {".srt": "srt", ".vtt": "vtt"}
_SPACE = re.compile(r"\s+")


def timestamp(ms: int) -> str:
    """192000 -> '03:12'; 3792000 -> '1:03:12'."""
    s = max(ms, 0) // 1000
    h, m, s = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _title(name: str) -> str:
    stem = PurePath(name).stem.replace("_", " ").replace("-", " ").strip()
    return stem[:1].upper() + stem[1:] if stem else name


def _cues(text: str, fmt: str) -> list[tuple[int, int, str]]:
    import pysubs2

    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as e:  # pysubs2 raises its own errors and ValueError for damaged files
        raise BadInput(f"this subtitle file could not be read ({e}). Export it again from your video "
                       "program or YouTube as SRT or WebVTT") from e
    cues = []
    for event in subs:
        if event.is_comment:
            continue
        line = _SPACE.sub(" ", event.plaintext).strip()
        if line:
            cues.append((event.start, event.end, line))
    return sorted(cues, key=lambda c: c[0])


def _without_repeats(cues: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Rolling auto-captions repeat the previous line at the start of the next cue; keep the new words."""
    out: list[tuple[int, int, str]] = []
    previous = ""
    for start, end, line in cues:
        if line == previous:
            continue
        new = line[len(previous):].strip() if previous and line.startswith(previous) else line
        previous = line
        if new:
            out.append((start, end, new))
    return out


def sections_of(cues: list[tuple[int, int, str]]) -> list[Section]:
    sections: list[Section] = []
    group: list[tuple[int, int, str]] = []

    def flush():
        if group:
            sections.append(Section(" ".join(c[2] for c in group), timestamp(group[0][0])))
            group.clear()

    for cue in cues:
        if group:
            length_s = (cue[0] - group[0][0]) / 1000
            pause_s = (cue[0] - group[-1][1]) / 1000
            chars = sum(len(c[2]) + 1 for c in group)
            if length_s >= SECTION_SECONDS or chars >= SECTION_CHARS or (
                    pause_s >= PAUSE_SECONDS and length_s >= PAUSE_MIN_SECONDS):
                flush()
        group.append(cue)
    flush()
    return sections


def read_subtitles(data: bytes, name: str) -> Document:
    ext = PurePath(name).suffix.lower()
    fmt = _FORMATS.get(ext, "srt")
    text = decode_text(data, "subtitle file")
    if fmt == "vtt" and not text.lstrip("\ufeff").lstrip().startswith("WEBVTT"):
        raise BadInput("this .vtt file does not start with 'WEBVTT', so it is not a WebVTT subtitle file. "
                       "Export it again as WebVTT, or as .srt")
    cues = _without_repeats(_cues(text, fmt))
    if not cues:
        raise BadInput(f"no subtitles were found in this {ext or 'subtitle'} file. Check that it holds timed "
                       "lines such as '00:00:01,000 --> 00:00:04,000', or export it again as SRT or WebVTT")
    return Document(kind="subtitles", title=_title(name), sections=sections_of(cues))
