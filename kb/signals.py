"""Buying intent in what visitors ask: the questions that mean "I may become a customer" (prices,
booking, opening hours, how to reach you). Insights lists the chats that show them as lead signals,
beside the leads visitors left, so the owner sees who was close to buying and what they wanted.

The rules are plain English word patterns, the same for every business; a question may show
several intents:

    >>> sorted(intents("How much is a private lesson, and can I book one for Saturday?"))
    ['booking', 'price']
    >>> intents("Is the studio wheelchair accessible?")
    set()
"""

from __future__ import annotations

import re

INTENTS: dict[str, tuple[str, re.Pattern]] = {
    "price": ("asked about prices", re.compile(
        r"\b(how much|price[sd]?|pricing|cost(s|ing)?|fees?|rates?|charge[sd]?|quote|tariff|discounts?|deals?|"
        r"cheap(er|est)?|expensive|afford|pay(ment)?|deposit|refunds?)\b|[$\u20ac\u00a3]\s?\d", re.I)),
    "booking": ("wanted to book or buy", re.compile(
        r"\b(book(ing|ed)?|reserv(e|ation|ations)|appointments?|schedul(e|ing)|sign(ing)? up|register|"
        r"enrol+(ment)?|availab(le|ility)|slots?|spaces? left|spots? left|buy|order|purchase|gift cards?|"
        r"join|subscribe|membership|hire|trial)\b", re.I)),
    "hours": ("asked when you are open", re.compile(
        r"\b(open(ing)?|clos(e|es|ed|ing)|hours?|weekends?|holidays?|"
        r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I)),
    "contact": ("wanted to reach you or visit", re.compile(
        r"\b(phone|call|ring|e-?mail|contact|whats ?app|text you|speak to|talk to|someone|person|human|"
        r"address|located|location|directions|where (are|is) (you|the)|parking|visit|come (in|by))\b", re.I)),
}


def intents(question: str) -> set[str]:
    """The intents a visitor's question shows (keys of INTENTS)."""
    return {name for name, (_, pattern) in INTENTS.items() if pattern.search(question or "")}


def words(name: str) -> str:
    """'price' -> 'asked about prices', for the owner."""
    return INTENTS[name][0]
