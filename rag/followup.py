"""A conversation, not a list of separate questions: what search is given when a message leans on
the chat before it, and which earlier turns the writer reads.

"how much does it cost?" after "Do you have classes for kids?" says nothing search can use on its
own. So a message that follows earlier turns is searched twice: as it is, and after the topic of the
turn before (that turn's own searched question, which carries its topic along a chain of
follow-ups). The search whose best passage matches better wins: a message that stands alone or
changes the subject ("Where can I park?") matches better by itself, so the old topic does not leak
into it. No model runs for this, so a follow-up costs one more search (milliseconds) and a first
message nothing (bench/chats.py measures it against the writer model rewriting the question).

    >>> topic = [Turn("Do you have classes for kids?", "Yes, Kids' Clay Club, ages 6 to 12 [1].")]
    >>> with_topic("how much does it cost?", topic)
    'Do you have classes for kids? how much does it cost?'
"""

from __future__ import annotations

from kb.records import Turn

MAX_TURNS = 3  # earlier turns the writer reads
MAX_HISTORY_CHARS = 1200  # about 300 tokens of them: the passages keep most of the context
MAX_TOPIC_CHARS = 300  # of the chain of questions a follow-up is searched with
MARGIN = 0.02  # the search with the topic must match this much better to be chosen


def with_topic(question: str, history: list[Turn]) -> str | None:
    """The message after the topic of the turn before it; None without earlier turns."""
    if not history:
        return None
    last = history[-1]
    topic = " ".join((last.searched or last.question).split())
    if len(topic) > MAX_TOPIC_CHARS:  # a long chain keeps its latest questions
        topic = topic[-MAX_TOPIC_CHARS:].split(" ", 1)[-1]
    return f"{topic} {question}"


def recent(history: list[Turn]) -> list[Turn]:
    """The earlier turns the writer reads: the last MAX_TURNS, newest kept first when they are long."""
    kept: list[Turn] = []
    size = 0
    for turn in reversed(history[-MAX_TURNS:]):
        size += len(turn.question) + len(turn.answer)
        if kept and size > MAX_HISTORY_CHARS:
            break
        kept.insert(0, turn)
    return kept


def as_messages(history: list[Turn]) -> list[dict]:
    """Earlier turns as chat messages, to go between the system message and the new question."""
    out: list[dict] = []
    for turn in recent(history):
        out += [{"role": "user", "content": turn.question}, {"role": "assistant", "content": turn.answer}]
    return out
