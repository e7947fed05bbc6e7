"""A conversation, not a list of separate questions: what search is given when a message leans on
the chat before it, and which earlier turns the writer reads.

"how much does it cost?" after "Do you have classes for kids?" says nothing search can use on its
own. So a message that follows earlier turns is searched twice: as it is, and after the topic of the
turn before (that turn's own searched question, which carries its topic along a chain of
follow-ups). The topic's search is used only when the message belongs to that topic (`belongs`):
it leans on the chat ("it", "and on Sundays?", a message with no subject of its own), or the
topic's passages speak of what it asks. Which search comes first is the one whose best passage
fits the message in its chat better (`fit`: the cosine with the message, plus half the cosine with
the topic; the concatenated search's own cosines would always favour the old topic). A message
that refers back ("it", "and ...", "what about ...": `refers_back`) gets the passages of both
searches in turn (`interleave`): the writer reads the chat and picks what it refers to, which no
distance between texts can do ("how much does it cost?" is closer to the membership's price than
to the kids' club it asks about). Any other message gets the better fitting search alone. A message
that changes the subject ("Where can I park?", "Who won the World Series?") is searched by
itself, so the old topic does not leak into it. No model runs for this, so a follow-up costs one
more search (milliseconds) and a first message nothing (bench/chats.py measures it against the
writer model rewriting the question).

    >>> topic = [Turn("Do you have classes for kids?", "Yes, Kids' Clay Club, ages 6 to 12 [1].")]
    >>> with_topic("how much does it cost?", topic)
    'Do you have classes for kids? how much does it cost?'
"""

from __future__ import annotations

import re
from itertools import chain, zip_longest

from kb.records import Turn
from rag.grounding import terms

MAX_TURNS = 3  # earlier turns the writer reads
MAX_HISTORY_CHARS = 1200  # about 300 tokens of them: the passages keep most of the context
MAX_TOPIC_CHARS = 300  # of the chain of questions a follow-up is searched with
TOPIC_WEIGHT = 0.5  # of the cosine with the chat's topic in `fit`, beside the message's own


def topic_of(history: list[Turn]) -> str | None:
    """What the chat was about at its last turn: that turn's searched question."""
    return " ".join((history[-1].searched or history[-1].question).split()) if history else None


def fit(message_cosine: float, topic_cosine: float) -> float:
    """How well a passage fits a message in its chat."""
    return message_cosine + TOPIC_WEIGHT * topic_cosine


def with_topic(question: str, history: list[Turn]) -> str | None:
    """The message after the topic of the turn before it; None without earlier turns."""
    topic = topic_of(history)
    if topic is None:
        return None
    if len(topic) > MAX_TOPIC_CHARS:  # a long chain keeps its latest questions
        topic = topic[-MAX_TOPIC_CHARS:].split(" ", 1)[-1]
    return f"{topic} {question}"


# What a message that leans on the chat starts with, or refers back with.
_LEANS = re.compile(r"^\W*(and|or|but|also|so|then|what about|how about)\b"
                    r"|\b(it|its|that|this|those|these|they|them|their|he|she|him|her|his|hers|one|ones)\b", re.IGNORECASE)


def refers_back(message: str) -> bool:
    """Whether a message names something of the chat before it: "and on Sundays?", "how much is
    it?", "what about taster sessions?".

    >>> refers_back("how much does it cost?"), refers_back("what time?"), refers_back("Where can I park?")
    (True, False, False)
    """
    return bool(_LEANS.search(message))


def leans_on_chat(message: str) -> bool:
    """Whether a message may refer back to the chat: "and on Sundays?", "how much is it?", or one
    subject word at most ("what time?"). It only allows the topic's search; which search matches
    better still decides ("Where can I park?" matches the parking passage better by itself).

    >>> leans_on_chat("and on Sundays?"), leans_on_chat("how much is it?"), leans_on_chat("Who won the World Series?")
    (True, True, False)
    """
    return refers_back(message) or len(set(terms(message))) <= 1


def belongs(message: str, passages: list[str]) -> bool:
    """Whether a message may be searched with the chat's topic: it leans on the chat, or the topic's
    passages speak of something it asks about. "Who won the World Series?" after a question about
    kids' classes does neither."""
    if leans_on_chat(message):
        return True
    said = set(terms(" ".join(passages)))
    return any(t in said for t in terms(message))


def interleave(first: list, second: list, k: int, key=lambda hit: hit.chunk.id) -> list:
    """The passages of two searches taken in turn, first's best first, each passage once, k at
    most: "how much does it cost?" after a question about kids' classes is given the kids' club
    (the topic's search) and the membership prices (its own), and the writer, reading the chat,
    answers about the kids' club.

    >>> interleave(["a", "b", "c"], ["d", "a", "e"], 4, key=str)
    ['a', 'd', 'b', 'c']
    """
    taken = {}
    for hit in chain.from_iterable(zip_longest(first, second)):
        if hit is not None:
            taken.setdefault(key(hit), hit)
    return list(taken.values())[:k]


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
