"""The visitor's language. The search models read English; the writer reads and writes many
languages. So a question in Spanish, French, German, Portuguese or Italian is searched in English
(rag.answer translates it with the writer) and answered in the visitor's language, and what kbchat
says in its own words (the fallback message, the steps while an answer is prepared, the widget's
labels) is said in that language too. The owner can write their own fallback and welcome message
per language (`languages.json` in the knowledge base, the Widget page).

Which language a message is in is told by py3langid (langid.py's model, limited to the languages
kbchat answers in), not by hand; a short or mixed message it is unsure of keeps the chat's language.

    >>> detect("¿Cuánto cuesta el curso de torno?")
    'es'
    >>> detect("How much is the wheel course?")
    'en'
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from kb.errors import BadInput
from kb.files import atomic_write

ENGLISH = "en"
NAMES = {"en": "English", "es": "Spanish", "fr": "French", "de": "German", "pt": "Portuguese", "it": "Italian"}
SUPPORTED = tuple(NAMES)
SURE = 0.5  # how sure py3langid must be (of the six) before a message counts as not English
FILE = "languages.json"
OWN_TEXTS = ("fallback_message", "welcome_message")  # what the owner may write per language

# The default fallback message ({contact} filled in when the owner gave one) and the default welcome.
FALLBACK = {
    "es": ("Lo siento, no tengo esa información. Póngase en contacto con nosotros y le ayudaremos con gusto.",
           "Lo siento, no tengo esa información. Póngase en contacto con nosotros en {contact} y le ayudaremos con gusto."),
    "fr": ("Désolé, je n'ai pas cette information. Contactez-nous directement, nous serons ravis de vous aider.",
           "Désolé, je n'ai pas cette information. Contactez-nous au {contact}, nous serons ravis de vous aider."),
    "de": ("Das weiß ich leider nicht. Bitte kontaktieren Sie uns direkt, wir helfen Ihnen gerne weiter.",
           "Das weiß ich leider nicht. Bitte kontaktieren Sie uns unter {contact}, wir helfen Ihnen gerne weiter."),
    "pt": ("Desculpe, não tenho essa informação. Entre em contato conosco e teremos prazer em ajudar.",
           "Desculpe, não tenho essa informação. Entre em contato conosco pelo {contact} e teremos prazer em ajudar."),
    "it": ("Mi dispiace, non ho questa informazione. Contattateci direttamente e saremo lieti di aiutarvi.",
           "Mi dispiace, non ho questa informazione. Contattateci al {contact} e saremo lieti di aiutarvi."),
}
WELCOME = {"es": "¡Hola! Pregúntenos lo que quiera.", "fr": "Bonjour ! Posez-nous vos questions.",
           "de": "Hallo! Fragen Sie uns, was Sie möchten.", "pt": "Olá! Pergunte-nos o que quiser.",
           "it": "Ciao! Chiedeteci pure quello che volete."}
STEPS = {
    "es": {"searching": "Buscando en nuestros documentos\u2026", "checking": "Comprobando que nuestros documentos lo responden\u2026",
           "writing": "Escribiendo la respuesta\u2026"},
    "fr": {"searching": "Recherche dans nos documents\u2026", "checking": "Vérification que nos documents y répondent\u2026",
           "writing": "Rédaction de la réponse\u2026"},
    "de": {"searching": "Suche in unseren Unterlagen\u2026", "checking": "Prüfe, ob unsere Unterlagen das beantworten\u2026",
           "writing": "Schreibe die Antwort\u2026"},
    "pt": {"searching": "Procurando nos nossos documentos\u2026", "checking": "Verificando se os nossos documentos respondem\u2026",
           "writing": "Escrevendo a resposta\u2026"},
    "it": {"searching": "Cerco nei nostri documenti\u2026", "checking": "Verifico che i nostri documenti rispondano\u2026",
           "writing": "Scrivo la risposta\u2026"},
}


@lru_cache(maxsize=1)
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(SUPPORTED))
    return identifier


def detect(text: str, chat_language: str = ENGLISH) -> str:
    """The message's language, one of SUPPORTED: `chat_language` (the chat's so far) when the model
    is unsure, as for "ok", "Raku?" or a product name."""
    text = " ".join(str(text).split())
    if not text:
        return chat_language
    language, p = _identifier().classify(text)
    return language if p >= SURE else chat_language


def chat_language(questions: list[str]) -> str:
    """The language of a chat so far: its latest message whose language is clear."""
    language = ENGLISH
    for question in questions:
        language = detect(question, language)
    return language


def fallback(language: str, owner_text: str, contact: str, own: dict | None = None) -> str | None:
    """The fallback message in `language`: the owner's own for it, else the default one in it when
    the owner kept the default (with their contact), else None (the caller translates the owner's)."""
    from kb.setting_groups import fallback_with

    if language == ENGLISH:
        return owner_text
    if own and own.get("fallback_message"):
        return own["fallback_message"]
    if language in FALLBACK and owner_text == fallback_with(contact):
        plain, with_contact = FALLBACK[language]
        return with_contact.format(contact=" ".join(contact.split())) if contact.strip() else plain
    return None


def welcome(language: str, owner_text: str, own: dict | None = None) -> str:
    """The welcome message in `language`: the owner's own for it, the default in it, or the owner's."""
    from kb.setting_groups import FIELDS

    if language == ENGLISH:
        return owner_text
    if own and own.get("welcome_message"):
        return own["welcome_message"]
    return WELCOME.get(language, owner_text) if owner_text == FIELDS["welcome_message"].default else owner_text


def step_words(name: str, language: str) -> str:
    from kb.records import STEP_WORDS

    return STEPS.get(language, {}).get(name) or STEP_WORDS[name]


def load(kb_dir) -> dict[str, dict[str, str]]:
    """The owner's own texts per language: {"es": {"fallback_message": ...}, ...} ({} when none)."""
    try:
        data = json.loads((Path(kb_dir) / FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {lang: {k: str(v) for k, v in texts.items() if k in OWN_TEXTS and str(v).strip()}
            for lang, texts in data.items() if lang in SUPPORTED and isinstance(texts, dict)}


def save(kb_dir, language: str, texts: dict[str, str]) -> None:
    """Keep the owner's texts for one language (an empty text goes back to kbchat's)."""
    if language not in SUPPORTED or language == ENGLISH:
        raise BadInput(f"Texts per language are for {', '.join(NAMES[c] for c in SUPPORTED[1:])}; English ones are "
                       "the settings themselves.")
    unknown = set(texts) - set(OWN_TEXTS)
    if unknown:
        raise BadInput(f"Only {' and '.join(OWN_TEXTS)} can be written per language, not {', '.join(sorted(unknown))}.")
    data = load(kb_dir)
    data[language] = {k: " ".join(v.split()) for k, v in texts.items() if v.strip()}
    atomic_write(Path(kb_dir) / FILE, lambda f: f.write(json.dumps(data, ensure_ascii=False, indent=1).encode()))
