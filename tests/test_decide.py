"""The rag path's decision as a table of cases (rag.decide), the facts an answer may state (rag.facts),
the one decline recognizer, and the answer path's checks around a writer that says a fixed text
(a deterministic stand-in for the model: the real model's answers are tested in
test_answer_quality.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.ingest import ingest
from kb.records import Answer
from kb.settings import Settings
from kb.store import Store
from rag.answer import RagPath, cite_holders
from rag.decide import Thresholds, advice, decide, is_decline, written
from rag.facts import facts, holders, unsupported
from rag.generate import Generator

T = Thresholds(faq=0.80, passage=0.30, answerable=0.50)
NO_CHECK = Thresholds(faq=0.80, passage=0.30, answerable=None)


# -- the decision ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("question, faq, passages, thresholds, answerable, action, words", [
    # the curated answer, when the same question matches well enough
    ("Do you sell gift cards?", ("Do you sell gift cards?", 0.93), [0.9], T, None, "faq",
     'your FAQ "Do you sell gift cards?" (match 0.93, 0.80 needed)'),
    # a curated question that matches too weakly goes on to the passages
    ("gift cards?", ("Do you sell gift cards?", 0.62), [0.7], T, None, "check", "Checking"),
    # nothing found, or nothing close enough: declined without asking the model
    ("Who won the World Cup?", None, [], T, None, "decline", "nothing in your documents matches"),
    ("Who won the World Cup?", None, [0.21, 0.2], T, None, "decline",
     "the best passage matches 0.21, below this knowledge base's 0.30"),
    # close enough: the writer is asked first whether the passages answer it
    ("Do you fire cone 10?", None, [0.55], T, None, "check", "Checking"),
    ("Do you fire cone 10?", None, [0.55], T, 0.12, "decline",
     "the check found the passages do not answer it (0.12, 0.50 needed)"),
    ("Do you fire cone 10?", None, [0.55], T, 0.87, "write", "the check found the passages answer it (0.87, 0.50 needed)"),
    # advice is answered only in the passages' own words (the answer path holds back any other sentence)
    ("Is chocolate poisonous to dogs?", None, [0.55], T, 0.3, "decline", "(0.30, 0.50 needed)"),
    ("Are your glazes food safe?", None, [0.6], T, 0.95, "write",
     "(0.95, 0.50 needed). It asks for safety advice, so only what the passages themselves say is shown."),
    # a writer that cannot be asked (quoted answers): written when close enough
    ("Do you fire cone 10?", None, [0.55], NO_CHECK, None, "write", "Written: the best passage matches 0.55 (0.30 needed)"),
    # advice is held to the passages' words with the check off too
    ("Are your glazes food safe?", None, [0.6], NO_CHECK, None, "write", "(0.30 needed). It asks for safety advice"),
])
def test_the_decision_table(question, faq, passages, thresholds, answerable, action, words):
    d = decide(question, faq, passages, thresholds, answerable)
    assert d.action == action and words in d.reason, d
    if action == "write":
        assert bool(d.advice) == ("advice" in d.reason)
    if answerable is not None:
        assert d.scores["answerable"] == answerable


def test_the_decision_keeps_its_scores_and_thresholds():
    d = decide("Do you fire cone 10?", ("Do you fire cone 6?", 0.71), [0.55, 0.4], T, 0.87)
    assert d.scores == {"faq": 0.71, "passage": 0.55, "answerable": 0.87}
    assert d.thresholds == {"faq": 0.8, "passage": 0.3, "answerable": 0.5}


def test_a_written_answer_says_which_passages_it_came_from_and_what_was_left_out():
    d = decide("Do you fire cone 10?", None, [0.55], T, 0.87)
    assert written(d, [1, 3], 0).startswith("Written from passages [1] and [3]: the check found")
    assert written(d, [2], 1).startswith("Written from passage [2]:")
    assert written(d, [2], 1).endswith("1 sentence left out: it says what your documents do not.")


@pytest.mark.parametrize("question, topic", [
    ("Is chocolate poisonous to dogs?", "medical or veterinary"),
    ("Can I give my cat ibuprofen?", "medical or veterinary"),
    ("Is it legal to ride an e-bike on the pavement?", "legal"),
    ("Should I invest in crypto?", "financial"),
    ("Is it safe to ride with a cracked frame?", "safety"),
    ("When are you open on Saturday?", None),
    ("How much is the beginner course?", None),
])
def test_advice_questions_are_recognized(question, topic):
    assert advice(question) == topic


# -- facts -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("answer, passages", [
    ("It costs $1,200.00 [1].", ["The price is 1200 dollars."]),
    ("We open at 9:00 am.", ["Open 9 am to 5 pm."]),
    ("Call (555) 314-2760.", ["Phone: 555.314.2760"]),
    ("Call 314-2760.", ["Phone: (555) 314-2760"]),
    ("We have 3 kilns.", ["We fire in three electric kilns."]),
    ("Email hello@clay.com or visit www.clay.com/book.", ["hello@CLAY.com, book at https://clay.com/book/"]),
    ("Courses run 6 weeks, 10am-9pm.", ["Six-week courses, 10 am to 9 pm."]),
    ("Bags are 25-lb.", ["25 lb bags"]),
    ("1. Off-Peak costs $95.\n2. Standard costs $145.", ["Off-Peak $95, Standard $145"]),
    ("Our glazes are food safe [2].", ["anything"]),  # no fact to check
])
def test_facts_the_passages_hold_are_supported_however_written(answer, passages):
    assert unsupported(answer, passages) == []


@pytest.mark.parametrize("answer, passages, missing", [
    ("It costs $45 [1].", ["The taster is $40."], ["45"]),
    ("Use the code CLAY10 at checkout.", ["Students get 10% off."], ["CLAY10"]),
    ("Call us on 555-0199.", ["Call (555) 314-2760."], ["555-0199"]),
    ("Email sales@clay.com.", ["Email hello@clay.com."], ["sales@clay.com"]),
    ("See clay.com/discounts for more.", ["Visit clay.com/book."], ["clay.com/discounts"]),
    ("Four people pay $320.", ["Private lesson, 2 people: $120 per hour."], ["320"]),
])
def test_a_fact_no_passage_holds_is_found(answer, passages, missing):
    assert unsupported(answer, passages) == missing


def test_the_facts_of_a_text_in_one_written_form():
    assert facts("$1,595.00 and 12.50, 9:00 pm, (555) 314-2760, SAVE20, hi@x.com") == \
        ["hi@x.com", "5553142760", "save20", "1595", "12.5", "9"]
    assert holders("The taster is $45 on Fridays.", ["Kids: $120.", "Taster session: $45 per person."]) == [2]


def test_a_sentence_citing_the_wrong_passage_cites_the_one_holding_its_facts():
    sources = ["Taster session: $45 per person.", "Kids' Clay Club: $120 for 4 weeks."]
    assert cite_holders("A taster session is $45 [2].", sources) == "A taster session is $45 [1]."
    assert cite_holders("A taster session is $45 [1].", sources) == "A taster session is $45 [1]."
    assert cite_holders("It is fun [2].", sources) == "It is fun [2]."  # no fact: as the model cited it


# -- one decline recognizer ---------------------------------------------------------------------------------
FALLBACK = "Sorry, I don't have that information. Call us on 555-0100."


@pytest.mark.parametrize("text", [
    "The documents do not mention a dog grooming price.", "I don't know.", "I’m not sure about that.",
    "There is no information about parking in the provided texts.", "As an AI, I have no opinions.",
    "The customer service assistant does not know the answer to this question. [1]", "Hmm. " + FALLBACK,
])
def test_declines_in_any_wording_are_recognized(text):
    assert is_decline(text, FALLBACK)


@pytest.mark.parametrize("text", [
    "No, we do not sell clay online [2].", "If you don't know your size, we will help you choose.",
    "You don't need to bring anything.", "Call us on 555-0100.", "The documents you need are a photo ID [3].",
])
def test_answers_are_not_declines(text):
    assert not is_decline(text, FALLBACK)


def test_the_answer_path_and_the_metrics_recognize_declines_the_same_way():
    from compare.metrics import looks_refused
    from rag.answer import declines

    for text in ("The documents don't say whether we ship abroad.", "I can't help with that.", "We open at 9 am."):
        assert declines(text) == looks_refused(text) == is_decline(text)


# -- the answer path's checks, around a writer that says a fixed text -----------------------------------------
class FixedWriter:
    """Says `text` a few characters at a time, and `p_yes` when asked whether the passages answer."""

    model_id = "fixed text (test)"
    device, threads = "cpu", 1

    def __init__(self, text: str, p_yes: float | None = 0.9):
        self.text, self.p_yes, self.asked = text, p_yes, []

    def stream_counted(self, messages, max_new_tokens, min_new_tokens=0):
        for n, i in enumerate(range(0, len(self.text), 4), start=1):
            yield self.text[i:i + 4], n

    def yes_probability(self, messages):
        self.asked.append(messages[-1]["content"])
        return self.p_yes


@pytest.fixture(scope="module")
def hours_kb(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hours")
    docs = folder / "docs"
    docs.mkdir()
    (docs / "hours.md").write_text("# Opening hours\n\nThe shop is open Monday to Friday from 8 am to 4 pm. "
                                   "A taster session costs $45 per person.\n\n# Parking\n\nThere are 6 free spaces "
                                   "behind the shop.\n", encoding="utf-8")
    settings = Settings(rag_writer="model", generator_path="qwen2.5-coder-1.5b-instruct", refusal_threshold=0.05,
                        faq_threshold=0.99)
    with Store(folder / "kb") as store:
        assert not [r for r in ingest(store, [str(docs)], settings) if r.failed]
    settings.save(folder / "kb")
    return folder / "kb"


def _answer(kb: Path, writer: FixedWriter, question: str = "How much is a taster session?") -> tuple[Answer, list[str]]:
    with Store(kb) as store:
        path = RagPath(store, Settings.load(kb), generator=Generator(engine=writer))
        items = list(path.stream(question))
    pieces, answer = items[:-1], items[-1]
    assert "".join(pieces) == answer.text  # what was streamed is what the answer says
    return answer, pieces


def test_a_sentence_naming_a_fact_no_passage_holds_is_not_shown(hours_kb):
    writer = FixedWriter("A taster session costs $45 per person [1]. Use the code TASTE10 for 10% off [1]. "
                         "Call 555-0199 to book [1].")
    a, pieces = _answer(hours_kb, writer)
    assert a.method == "generated" and a.text == "A taster session costs $45 per person [1]."
    assert a.held_back == ["Use the code TASTE10 for 10% off [1].", "Call 555-0199 to book [1]."]
    assert "TASTE10" not in "".join(pieces) and "555-0199" not in "".join(pieces)
    assert a.why.startswith("Written from passage [1]:") and a.why.endswith(
        "2 sentences left out: they say what your documents do not.")
    assert writer.asked and writer.asked[0].endswith("Reply with only yes or no.")  # the check came first


def test_an_answer_left_with_nothing_is_the_fallback_message(hours_kb):
    a, _ = _answer(hours_kb, FixedWriter("A taster session costs $55 per person [1]."))
    assert a.refused and a.text == Settings().answers.fallback_message and a.citations == []
    assert a.held_back == ["A taster session costs $55 per person [1]."]
    assert a.why.startswith("Declined: every sentence the model wrote says what your documents do not (55)")


def test_a_low_check_declines_before_anything_is_written(hours_kb):
    writer = FixedWriter("A taster session costs $45 per person [1].", p_yes=0.1)
    a, pieces = _answer(hours_kb, writer, "Do you sell kilns?")
    assert a.refused and pieces == [Settings().answers.fallback_message] and a.n_tokens == 0
    assert "the check found the passages do not answer it (0.10, " in a.why


def test_a_sentence_citing_the_wrong_passage_is_cited_right(hours_kb):
    with Store(hours_kb) as store:
        passages = RagPath(store, Settings.load(hours_kb), generator=Generator(engine=FixedWriter("x"))) \
            .retriever.search("How much is a taster session and where do I park?", 5)
    taster = next(n for n, h in enumerate(passages, start=1) if "$45" in h.chunk.text)
    wrong = next(n for n in range(1, len(passages) + 1) if n != taster)
    a, _ = _answer(hours_kb, FixedWriter(f"A taster session costs $45 [{wrong}]."),
                   "How much is a taster session and where do I park?")
    assert a.text == f"A taster session costs $45 [{taster}]." and [c.n for c in a.citations] == [taster]


def test_advice_is_answered_only_in_what_the_passages_say(hours_kb):
    writer = FixedWriter("The shop is open Monday to Friday from 8 am to 4 pm [1]. Yes, it is safe to bring your "
                         "toddler [1].")
    a, _ = _answer(hours_kb, writer, "Is the shop safe for toddlers, and when is it open?")
    assert a.text == "The shop is open Monday to Friday from 8 am to 4 pm [1]."
    assert a.held_back == ["Yes, it is safe to bring your toddler [1]."] and "safety advice" in a.why
    unchecked, _ = _answer(hours_kb, FixedWriter("Yes, it is safe to bring your toddler [1]."), "Can I bring my toddler?")
    assert unchecked.method == "generated"  # not advice: only its facts are checked


def test_a_model_server_without_probabilities_writes_and_says_the_check_did_not_run(hours_kb):
    a, _ = _answer(hours_kb, FixedWriter("A taster session costs $45 per person [1].", p_yes=None))
    assert a.method == "generated" and "the check whether the passages answer the question did not run" in a.why


def test_a_sentence_where_the_assistant_offers_to_do_something_itself_is_caught():
    """No document says what the chatbot can do: "I can help you write a cover letter" is never
    supported, while the business's own offers and the chatbot's declines are not caught."""
    from rag.grounding import offers_itself

    for offer in ("Yes, I can help you write a cover letter. [3]", "I'd be happy to draft one for you.",
                  "Sure! I\u2019ll put together a training plan for you.", "I am able to translate it."):
        assert offers_itself(offer), offer
    for fine in ("You can book a taster session online [1].", "We can fire your pieces on Fridays [2].",
                 "I can't find that in our documents.", "I cannot help with that.", "I couldn't find a price."):
        assert not offers_itself(fine), fine
