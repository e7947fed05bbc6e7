"""The retrieval answer paths: `rag` (sources, then the model writes from them) and `base` (the same
model with no sources: the control every comparison needs).

Both follow rag.path.AnswerPath: `answer`, `stream` (the answer's text pieces as they are ready,
then the finished `Answer`) and `info`.

How `rag` answers: retrieve -> decide -> write -> check -> cite.
1. Retrieve. The curated FAQ asked the same way (rag.retrieve.faq_candidate) and the `top_k` best
   passages (hybrid search).
2. Decide (rag.decide, one pure function): the curated answer word for word; the owner's fallback
   message when nothing is about the question; else, when the writer can be asked, whether the
   passages answer it: the model reads the writer's own prompt with one more line ("Do the
   documents above contain the answer...?") and P(yes) is read from its logits, without decoding
   (rag.llama); below the knowledge base's threshold, the fallback message. The writer's prompt
   then starts the same way, so the check's reading is not done twice.
3. Write. (With rag_writer "quote", the default for the small profile's SmolLM2, the answer is
   instead the best passage's own sentences: `quote`.) The model reads the numbered passages
   (sentences in them that give the chatbot orders are removed first: rag.grounding.defang) and
   answers, or says it does not know. Sentences are released whole.
4. Check. A first sentence that declines, in any wording (rag.decide.is_decline), makes the answer
   the fallback message. A sentence naming a number, price, time, phone number, e-mail, web address
   or code that none of the passages holds (rag.facts) is not shown (Answer.held_back), nor, when the
   question asks for advice, a sentence with a word the passages do not have (rag.grounding.unsaid);
   an answer left with nothing becomes the fallback message. A sentence cut off at the token limit
   is not shown.
5. Cite. A sentence citing a passage that does not hold its facts cites the one that does; an
   answer that names none cites the passage it shares most words with. Answer.why says which rule
   gave the answer, with its scores.

    >>> path = RagPath(Store("kbchat_data"))                          # doctest: +SKIP
    >>> path.answer("When are you open on Saturday?").text             # doctest: +SKIP
"""

from __future__ import annotations

import re
import time
from typing import Iterator

from kb import languages
from kb.records import Answer, Decision, Step, Turn
from kb.settings import Settings
from kb.store import Store
from rag import facts, followup
from rag.decide import Thresholds, decide, is_decline, written
from rag.generate import Generator
from rag.grounding import offers_itself, terms, unsaid
from rag.path import PathInfo
from rag.prompts import (NOT_ENGLISH, check_messages, citation, prepare_question, quote, rag_messages, source_text,
                         translation_messages)
from rag.retrieve import Retriever, close_to_best

_CITED = re.compile(r"\[(\d+)\]")
_CLOCK = re.compile(r"\b\d{1,2}(?::\d{2})? ?[ap]\.?m\b")  # "9 pm": a translation keeps it, not "9 heures"
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*(?=\s|$)")


def declines(text: str) -> bool:
    """Whether the model's answer (or its first sentence) says the passages do not answer."""
    return is_decline(text)


class RagPath:
    """Answers from the knowledge base: retrieve, decide (curated answer, decline, or write), write
    from the passages, cite them."""

    name = "rag"

    def __init__(self, store: Store, settings: Settings | None = None, generator: Generator | None = None,
                 retriever: Retriever | None = None):
        self.store = store
        self.settings = settings or Settings.load(store.dir)
        self.retriever = retriever or Retriever(store, self.settings)
        self.generator = generator or Generator.for_settings(self.settings)
        self._translations: dict[tuple[str, str], str | None] = {}  # the business's words, per language

    def answer(self, question: str, history: list[Turn] = ()) -> Answer:
        return last_answer(self.stream(question, history))

    def info(self) -> PathInfo:
        return PathInfo(self.name, self.generator, self.retriever)

    def thresholds(self) -> Thresholds:
        """What the decision holds the scores against: the knowledge base's calibrated (or set)
        thresholds; no answerability check when the answers are quoted or the writer is too small
        to be asked (rag.calibrate.checks_answers)."""
        r = self.retriever
        return Thresholds(r.faq_threshold, r.refusal_threshold, r.answerable_threshold if checks_answers(self.settings) else None)

    def stream(self, question: str, history: list[Turn] = (), steps: bool = False) -> Iterator[str | Step | Answer]:
        """The answer's pieces, then the Answer. `history`: the chat's earlier turns, oldest first
        (rag.followup): a message that leans on them is searched with their topic, and the writer
        reads them. With `steps`, a Step says what it does before each slow part."""
        s = self.settings
        q, notes = prepare_question(question, s)
        history = list(history or ())
        self.store.require_documents()
        if steps:
            yield Step("searching")
        start = time.perf_counter()
        # 0. The visitor's language: search in English, answer in theirs (kb.languages).
        language = languages.chat_language([t.question for t in history] + [q])
        english = q
        if language != languages.ENGLISH and not s.quotes:
            notes = [n for n in notes if n != NOT_ENGLISH]
            english = self.translate(q, languages.ENGLISH) or q
        elif language != languages.ENGLISH and NOT_ENGLISH not in notes:
            notes.append(NOT_ENGLISH)
        speaks = "" if language == languages.ENGLISH or s.quotes else languages.NAMES[language]
        # 1. Retrieve: the curated FAQ asked the same way, and the best passages.
        searched, faq, hits = self._retrieve(english, history)
        retrieval_ms = (time.perf_counter() - start) * 1000
        thresholds = self.thresholds()
        cosines = [max(0.0, min(1.0, h.dense)) for h in hits]
        # 2. Decide.
        decision = decide(searched, (faq[0].faq.question, faq[1]) if faq else None, cosines, thresholds)
        if decision.action == "faq":
            chunk, score = faq
            text = chunk.faq.answer
            if speaks:
                if steps:
                    yield Step("writing")
                text = self.in_language(text, language, notes)
            yield text
            yield Answer(self.name, q, text, "faq", [citation(1, chunk, score)], score, retrieval_ms,
                         notes=notes, why=decision.reason, searched=searched, language=language)
            return
        confidence = cosines[0] if cosines else 0.0

        def decline(why: str, generation_ms: float = 0.0, n_tokens: int = 0, held: list[str] = ()) -> Iterator[str | Answer]:
            text = self.fallback(language, notes) if speaks else s.answers.fallback_message
            yield text
            yield Answer(self.name, q, text, "refused", [], confidence, retrieval_ms, generation_ms,
                         n_tokens, self.generator.model_id if n_tokens else "", notes, why, list(held), searched,
                         language=language)

        if decision.action == "decline":
            yield from decline(decision.reason)
            return
        sources, removed = zip(*(source_text(h.chunk) for h in hits))
        sources = list(sources)
        if sum(removed):
            notes.append(f"{sum(removed)} sentence(s) in the matching documents gave orders to the chatbot; they were ignored.")
        if s.quotes:  # 3'. Quote: the best passage's own sentences, without the model.
            text = f"{quote(searched, hits[0].chunk)} [1]"
            yield text
            yield Answer(self.name, q, text, "quoted", [citation(1, hits[0].chunk, hits[0].dense)], confidence,
                         retrieval_ms, (time.perf_counter() - start) * 1000 - retrieval_ms, notes=notes,
                         why=decision.reason.replace("Written", "Quoted from passage [1]", 1), searched=searched, language=language)
            return
        gen_start = time.perf_counter()
        if decision.action == "check":  # 2'. Do the passages answer it? Read from the model's logits.
            if steps:
                yield Step("checking")
            p_yes = self.generator.yes_probability(check_messages(english, sources, s.answers.tone_prompt, history))
            if p_yes is None:
                decision = Decision("write", "Written: the model server gives no probabilities, so the check whether "
                                             "the passages answer the question did not run.", decision.scores,
                                    decision.thresholds, decision.advice)
            else:
                decision = decide(searched, (faq[0].faq.question, faq[1]) if faq else None, cosines, thresholds, p_yes)
            if decision.action == "decline":
                yield from decline(decision.reason, (time.perf_counter() - gen_start) * 1000)
                return
        # 3. Write, whole sentences at a time; 4. check each before it is shown.
        if steps:
            yield Step("writing")
        limit = s.answers.max_new_tokens
        stream = self.generator.stream_counted(rag_messages(english, sources, s.answers.tone_prompt, history), limit)
        pieces: list[str] = []
        held_back: list[str] = []
        held, n_tokens, declined = "", 0, False
        # The owner's own tone instructions may name a fact too (a phone number), and an earlier
        # answer of the chat was checked against its own passages when it was shown.
        known = sources + [s.answers.tone_prompt] + [turn.answer for turn in followup.recent(history)]

        def release(text: str) -> str | None:
            """The sentence as shown, or None: a first sentence that declines, or one naming a fact
            no passage holds, or, for advice, a word none says (kept in held_back)."""
            nonlocal declined
            if not pieces and is_decline(text):
                declined = True
                return None
            if facts.unsupported(text, known) or (decision.advice and unsaid(text, known)) or offers_itself(text):
                held_back.append(text.strip())
                return None
            text = cite_holders(text, sources)
            return text if pieces else text.lstrip()

        try:
            for piece, n_tokens in stream:
                held += piece
                cut = _last_end(held)
                if cut and _has_words(held[:cut]):  # a bare "[1]." waits for words to go with
                    text, held = held[:cut], held[cut:]
                    shown = release(text)
                    if declined:
                        break
                    if shown:
                        pieces.append(shown)
                        if not speaks:  # another language: said once the model is done (it translates too)
                            yield shown
            else:
                if n_tokens < limit and _has_words(held):  # the model ended by itself: its last sentence is whole
                    shown = release(held.rstrip())
                    if shown:
                        pieces.append(shown)
                        if not speaks:
                            yield shown
        finally:
            stream.close()
        generation_ms = (time.perf_counter() - gen_start) * 1000
        if not pieces:
            if held_back and all(offers_itself(t) for t in held_back):
                why = (f"Declined: the model offered to do something itself, which your documents do not offer "
                       f"({held_back[0][:80]!r}).")
            elif held_back:
                missing = facts.unsupported(" ".join(held_back), known) or unsaid(" ".join(held_back), known)
                why = f"Declined: every sentence the model wrote says what your documents do not ({', '.join(missing[:3])})."
            elif declined:
                why = "Declined: the model found no answer to the question in the passages."
            else:
                why = "Declined: the model wrote nothing but a citation."
            yield from decline(why, generation_ms, n_tokens, held_back)
            return
        text = "".join(pieces)
        # 5. Cite: the passages the answer names, else the one it shares most words with.
        cited = sorted({int(n) for n in _CITED.findall(text) if 1 <= int(n) <= len(hits)})
        if speaks:  # 6. Say it in the visitor's language, sentence by sentence, each keeping its facts.
            pieces = [self.in_language_sentence(piece, language, notes) for piece in pieces]
            yield from pieces
            generation_ms = (time.perf_counter() - gen_start) * 1000
        if not cited:
            cited = [_best_overlap(text, sources)]
            pieces.append(f" [{cited[0]}]")
            yield pieces[-1]
        yield Answer(
            self.name, q, "".join(pieces), "generated",
            [citation(n, hits[n - 1].chunk, hits[n - 1].dense) for n in cited], confidence,
            retrieval_ms, generation_ms, n_tokens, self.generator.model_id, notes,
            written(decision, cited, len(held_back)), held_back, searched, language,
        )

    # -- the visitor's language (kb.languages) ----------------------------------------------------------
    def translate(self, text: str, language: str) -> str | None:
        """`text` in `language` (a code) by the writer, or None when it gave nothing."""
        about = "; ".join(src.title for src in self.store.sources()[:8]) if language == languages.ENGLISH else ""
        limit = min(400, 20 + len(text) // 2)  # tokens: a translation is about as long as its text
        done = self.generator.complete(translation_messages(text, languages.NAMES[language], about), limit).text
        return " ".join(done.split()).strip('"') or None

    def in_language(self, text: str, language: str, notes: list[str], keep: bool = True) -> str:
        """The business's words (a curated answer, the fallback message, a checked sentence) in the
        visitor's language when the translation keeps every fact of them (numbers, prices, phones,
        codes, currencies, clock times); else as written, with a note for the owner. `keep`: the
        translation is kept for next time (the business's fixed words, not one answer's sentences)."""
        done = self._translations[(text, language)] if (text, language) in self._translations else None
        if (text, language) not in self._translations:
            done = self.translate(text, language)
            if done is not None and (facts.unsupported(done, [text]) or facts.unsupported(text, [done])
                                     or not set(_CLOCK.findall(text.lower())) <= set(_CLOCK.findall(done.lower()))):
                done = None
            if keep:
                self._translations[(text, language)] = done
        if done is None:
            note = (f"Given in English, in part or whole: its {languages.NAMES[language]} translation did not keep "
                    "every fact (a number, price, time or address) of it.")
            if note not in notes:
                notes.append(note)
            return text
        return done

    def in_language_sentence(self, sentence: str, language: str, notes: list[str]) -> str:
        """One checked sentence of a written answer in the visitor's language, its citations kept."""
        marks = "".join(f" [{n}]" for n in _CITED.findall(sentence))
        bare = _CITED.sub("", sentence).strip()
        lead = sentence[:len(sentence) - len(sentence.lstrip())]
        return lead + self.in_language(bare, language, notes, keep=False) + marks if bare else sentence

    def fallback(self, language: str, notes: list[str]) -> str:
        """The fallback message in the visitor's language: the owner's own for it, kbchat's default in
        it, or the owner's translated by the writer (kb.languages.fallback)."""
        s = self.settings
        own = languages.load(self.store.dir).get(language)
        text = languages.fallback(language, s.answers.fallback_message, s.widget.contact, own)
        return text if text is not None else self.in_language(s.answers.fallback_message, language, notes)

    def _fits_better(self, message: str, topic: str, leaned, alone, tie: bool) -> bool:
        """Whether the topic's best passage fits the message in its chat better than the best
        passage of the message alone (rag.followup.fit); `tie`: when both are the same passage."""
        if leaned.chunk.id == alone.chunk.id:
            return tie
        ids = [leaned.chunk.id, alone.chunk.id]
        with_message, with_topic = self.retriever.cosines(message, ids), self.retriever.cosines(topic, ids)
        return followup.fit(with_message[0], with_topic[0]) > followup.fit(with_message[1], with_topic[1])

    def _retrieve(self, q: str, history: list[Turn]):
        """(what was searched, the fast path's curated FAQ or None, the best passages): the message
        as it is, or, for a follow-up that belongs to the chat's topic, after that topic when that
        fits it better; one that refers back reads both searches' passages (rag.followup)."""
        k, margin = self.settings.answers.top_k, self.settings.answers.passage_margin
        faq, hits = self.retriever.faq_candidate(q), self.retriever.search(q, k)
        topic = followup.with_topic(q, history)
        if not topic:
            return q, faq, close_to_best(hits, margin)
        leaned = self.retriever.search(topic, k)
        if not leaned or not followup.belongs(q, [source_text(h.chunk)[0] for h in leaned]):
            return q, faq, close_to_best(hits, margin)
        # A message that refers back ("how much is it?") reads both searches' passages in turn, the
        # better fitting first (the same best passage: the topic's), since no distance between
        # texts tells what "it" is and the writer, who reads the chat, can; and it gets no curated
        # answer of its own words alone ("how much does it cost?" is not "How much does a
        # membership cost?" in a chat about kids' classes). Any other message gets the one search
        # that fits it better, so an old topic does not leak into it ("Where can I park?").
        back = followup.refers_back(q)
        if not hits or self._fits_better(q, followup.topic_of(history), leaned[0], hits[0], tie=back):
            searched, faq, better, other = topic, self.retriever.faq_candidate(topic), leaned, hits
        else:
            searched, faq, better, other = q, None if back else faq, hits, leaned
        # A message that refers back reads both searches' passages whole: their cosines are to two
        # different texts, so no one margin applies.
        return searched, faq, followup.interleave(better, other, k) if back else close_to_best(better, margin)


def checks_answers(settings: Settings) -> bool:
    """Whether the rag path asks its writer whether the passages answer a question: a model writes
    (not quotes), and not the small profile's SmolLM2-135M, whose yes and no mean nothing (it
    answers whatever it is given)."""
    from rag.calibrate import writes_declines

    return writes_declines(settings) and settings.answers.answer_check


def cite_holders(sentence: str, sources: list[str]) -> str:
    """The sentence citing the passage that holds its facts when the passages it cites do not:
    "It is $45 [2]." -> "It is $45 [1]." when only passage 1 says $45. A sentence without facts,
    or whose facts no single passage holds together, is left as the model wrote it.

    >>> cite_holders("A taster is $45 [2].", ["Taster: $45.", "Kids club: $120."])
    'A taster is $45 [1].'
    """
    cited = [int(n) for n in _CITED.findall(sentence)]
    if not cited:
        return sentence
    holding = facts.holders(sentence, sources)
    if not holding or any(n in holding for n in cited):
        return sentence
    first = re.search(r"\s*\[\d+\]", sentence)  # the first mark names the holder; the others go
    rest = re.sub(r"\s*\[\d+\]", "", sentence[first.end():])
    return f"{sentence[:first.start()]} [{holding[0]}]{rest}"


class BasePath:
    """The model alone, without the knowledge base: what a chatbot would say if it knew nothing of
    the business. It is the control that shows what retrieval or tuning add."""

    name = "base"
    SYSTEM = "You are a customer service assistant for a small business. Answer the customer's question briefly."
    WHY = "Written by the model alone, without your documents: nothing in it is checked against them."

    def __init__(self, settings: Settings | None = None, generator: Generator | None = None):
        self.settings = settings or Settings()
        self.generator = generator or Generator.for_settings(self.settings)

    def answer(self, question: str, history: list[Turn] = ()) -> Answer:
        return last_answer(self.stream(question, history))

    def info(self) -> PathInfo:
        return PathInfo(self.name, self.generator)

    def system(self) -> str:
        tone = self.settings.answers.tone_prompt
        return f"{self.SYSTEM} {tone}" if tone else self.SYSTEM

    def stream(self, question: str, history: list[Turn] = (), steps: bool = False) -> Iterator[str | Step | Answer]:
        q, notes = prepare_question(question, self.settings)
        if steps:
            yield Step("writing")
        messages = [{"role": "system", "content": self.system()}, *followup.as_messages(list(history or ())),
                    {"role": "user", "content": q}]
        yield from model_answer(self.name, self.generator, messages, q, notes, self.settings.answers.max_new_tokens, self.WHY)


def model_answer(name: str, generator: Generator, messages: list[dict], question: str, notes: list[str],
                 max_new_tokens: int, why: str = "") -> Iterator[str | Answer]:
    """A path that lets the model answer alone (base, tuned): its pieces, then the Answer."""
    start = time.perf_counter()
    pieces, n_tokens, spaces = [], 0, ""
    for piece, n_tokens in generator.stream_counted(messages, max_new_tokens):
        # Leading and trailing whitespace never reaches the caller: spaces are held back until
        # more text follows them, so the pieces joined are exactly the (stripped) Answer text.
        piece = spaces + piece if pieces else piece.lstrip()
        text = piece.rstrip()
        spaces = piece[len(text):]
        if text:
            pieces.append(text)
            yield text
    ms = (time.perf_counter() - start) * 1000
    yield Answer(name, question, "".join(pieces), "model", [], 0.0, 0.0, ms, n_tokens, generator.model_id, notes, why)


def _has_words(text: str) -> bool:
    return bool(re.search(r"[^\W\d_]", _CITED.sub("", text)))


def _last_end(text: str) -> int:
    """Where the last complete sentence in the text ends (0 for none)."""
    end = 0
    for m in _SENTENCE_END.finditer(text):
        if m.end() < len(text):  # followed by a space: "3.5" or "$12." at the very end may go on
            end = m.end()
    return end


def _best_overlap(text: str, sources: list[str]) -> int:
    """The number of the source sharing the most fact words with the text (for an uncited answer)."""
    words = set(terms(text))
    return 1 + max(range(len(sources)), key=lambda i: len(words & set(terms(sources[i]))))


def last_answer(stream: Iterator[str | Answer]) -> Answer:
    """The Answer at the end of a path's stream."""
    result = None
    for item in stream:
        result = item
    assert isinstance(result, Answer)
    return result
