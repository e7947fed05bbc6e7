"""Training data for fine-tuning: loading, the data check, rewordings and the train/validation split,
on the sample pottery-studio FAQ and small files written per test."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from kb.errors import BadInput
from kb.records import FaqPair
from kb.reword import normalize, reword
from tuning.data import (
    MIN_PAIRS,
    check_pairs,
    load_extra_pairs,
    split_for_training,
)

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"


@pytest.fixture(scope="module")
def sample_pairs() -> list[FaqPair]:
    return load_extra_pairs(SAMPLE / "faq.csv")


def by_question(pairs: list[FaqPair], question: str) -> FaqPair:
    return next(p for p in pairs if p.question == question)


# -- loading --------------------------------------------------------------------------------------
def test_sample_faq_loads_with_file_and_row(sample_pairs):
    assert len(sample_pairs) == 53
    assert sample_pairs[0].location == "faq.csv row 2"  # the header is row 1, as the spreadsheet shows
    assert sample_pairs[1].question == "What are your opening hours?"
    assert sample_pairs[-1].location == "faq.csv row 54"


def test_extra_csv_with_owner_column_names(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("Customer question;Our answer\nDo you sell clay?;Yes, 25 lb bags for $38.\nParking?;\n")
    warnings: list[str] = []
    pairs = load_extra_pairs(path, warnings)
    assert pairs == [FaqPair("Do you sell clay?", "Yes, 25 lb bags for $38.", "extra.csv row 2")]
    assert warnings == ["extra.csv row 3: the answer is empty; skipped"]


def test_extra_jsonl(tmp_path):
    path = tmp_path / "more.jsonl"
    lines = [{"question": "Can I bring a friend?", "answer": "Yes, guests pay $10."}, {"q": "Gift wrap?", "a": "Free."}]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n")
    warnings: list[str] = []
    pairs = load_extra_pairs(path, warnings)
    assert [(p.question, p.location) for p in pairs] == [("Can I bring a friend?", "more.jsonl line 1"), ("Gift wrap?", "more.jsonl line 2")]
    assert warnings and warnings[0].startswith("more.jsonl line 3: not valid JSON")


def test_missing_extra_file(tmp_path):
    with pytest.raises(BadInput, match=r"extra questions file .*nothere\.csv was not found"):
        load_extra_pairs(tmp_path / "nothere.csv")


@pytest.mark.parametrize("content", [b"", b"  \n"])
def test_empty_extra_file(tmp_path, content):
    path = tmp_path / "extra.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match="extra.csv is empty. Add a header row 'Question,Answer'"):
        load_extra_pairs(path)


def test_extra_file_without_pairs(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("Question,Answer\nIs there parking?,\n")
    with pytest.raises(BadInput, match=r"No complete question/answer pairs were found in extra.csv \(row 2: the answer is empty"):
        load_extra_pairs(path)


def test_extra_file_reader_errors_are_passed_on(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("Name,Price\nMug,12\n")
    with pytest.raises(BadInput, match="prices.csv could not be used: no question and answer columns found"):
        load_extra_pairs(path)


def test_extra_file_of_another_kind(tmp_path):
    path = tmp_path / "notes.pdf"
    path.write_bytes(b"%PDF-1.4")
    with pytest.raises(BadInput, match=r"notes.pdf cannot be used .*\.csv.*Save it as \.csv"):
        load_extra_pairs(path)


def test_store_pairs_name_the_file(store, sample_pairs):
    from kb import readers
    from kb.chunk import chunk_document
    from kb.records import Source

    path = SAMPLE / "faq.csv"
    doc = readers.read(path.read_bytes(), path.name)
    uri = str(path.resolve())
    store.replace_source(Source(uri, "faq", "faq.csv", "x", 1, "2025-01-01T00:00:00+00:00"), chunk_document(doc, uri, 800, 100))
    pairs = store.faq_pairs()
    assert {(p.question, p.answer, p.location) for p in pairs} == {(p.question, p.answer, p.location) for p in sample_pairs}


# -- the data check -------------------------------------------------------------------------------
def test_sample_faq_passes_the_check(sample_pairs):
    report = check_pairs(sample_pairs)
    assert report.problems == []
    assert report.pairs == sample_pairs
    assert report.describe() == ["Checked 53 question/answer pairs: all will be used for training; no problems found."]


def test_problems_in_an_extra_file_are_reported_by_row(tmp_path, sample_pairs):
    hours = by_question(sample_pairs, "What are your opening hours?")
    long_answer = "Our studio policy on damaged pieces is explained in detail here. " * 30
    path = tmp_path / "extra.csv"
    path.write_text(
        "Question,Answer\n"
        f'what are your OPENING hours,"{hours.answer.upper()}"\n'  # row 2: a copy, up to case and punctuation
        'Do you offer private lessons?,"No, only group classes."\n'  # row 3: contradicts the FAQ
        f'What is your damage policy?,"{long_answer}"\n'  # row 4: too long
        "Do you sell aprons?,Yes: $24 canvas aprons.\n"  # row 5: fine
    )
    pairs = sample_pairs + load_extra_pairs(path)
    report = check_pairs(pairs)

    assert [p.kind for p in report.problems] == ["duplicate", "conflict", "too_long"]
    duplicate, conflict, too_long = report.problems
    assert duplicate.locations == ["faq.csv row 3", "extra.csv row 2"]
    assert "extra.csv row 2" in duplicate.message and "what are your OPENING hours" in duplicate.message
    private = by_question(sample_pairs, "Do you offer private lessons?")
    assert conflict.locations == [private.location, "extra.csv row 3"]
    assert "different answers" in conflict.message and f"Only the first answer ({private.location})" in conflict.message
    assert too_long.locations == ["extra.csv row 4"] and "What is your damage policy?" in too_long.message
    assert "Shorten the answer" in too_long.message

    kept = {(p.question, p.answer) for p in report.pairs}
    assert len(report.pairs) == 54 and report.dropped == 3
    assert ("Do you sell aprons?", "Yes: $24 canvas aprons.") in kept
    assert (private.question, private.answer) in kept and ("Do you offer private lessons?", "No, only group classes.") not in kept
    lines = report.describe()
    assert lines[0] == "Checked 57 question/answer pairs: 54 will be used for training, 3 left out."
    assert lines[1:] == [f"- {p.message}" for p in report.problems]


def test_empty_question_or_answer_is_dropped_and_named(sample_pairs):
    pairs = sample_pairs[:25] + [
        FaqPair("Do you sell glaze?", "  ", "extra.csv row 4"),
        FaqPair("", "We open at 10 am.", "extra.csv row 5"),
        FaqPair("Is there a café?", "No, but there are two across the street."),  # no location: its position
    ]
    pairs.append(replace(pairs[-1], answer=""))
    report = check_pairs(pairs)
    assert [p.kind for p in report.problems] == ["empty", "empty", "empty"]
    assert [p.locations for p in report.problems] == [["extra.csv row 4"], ["extra.csv row 5"], ["pair 29"]]
    assert '"Do you sell glaze?"' in report.problems[0].message and "the answer is empty" in report.problems[0].message
    assert "the question is empty" in report.problems[1].message and "We open at 10 am." in report.problems[1].message
    assert len(report.pairs) == 26 and report.pairs[-1].question == "Is there a café?"


def test_pairs_without_a_location_are_named_by_position():
    pair = FaqPair("Do you deliver?", "Yes, within 10 km.")
    report = check_pairs([pair, FaqPair("Open late?", "Until 9 pm."), pair])
    assert [(p.kind, p.locations) for p in report.problems[:1]] == [("duplicate", ["pair 1", "pair 3"])]
    assert report.problems[0].message.startswith('pair 3 ("Do you deliver?") is a copy of pair 1')


def test_too_long_counts_with_the_given_tokenizer(sample_pairs):
    pair = by_question(sample_pairs, "What is a drop-in taster session?")
    words = len(f"{pair.question}\n{pair.answer}".split())
    fits = check_pairs([pair], tokenizer_len=lambda s: len(s.split()), max_tokens=words)
    assert [p.kind for p in fits.problems] == ["too_few"]
    over = check_pairs([pair], tokenizer_len=lambda s: len(s.split()), max_tokens=words - 1)
    assert [p.kind for p in over.problems] == ["too_long", "too_few"]
    assert f"about {words} tokens, more than the {words - 1}" in over.problems[0].message


def test_too_long_estimate_is_four_characters_a_token():
    at_limit = FaqPair("Q?", "a" * (384 * 4 - 3), "row 2")  # "Q?\n" + answer = 1536 characters
    over = FaqPair("Q2?", "a" * (384 * 4 - 3), "row 3")
    report = check_pairs([at_limit, over])
    assert [(p.kind, p.locations) for p in report.problems[:1]] == [("too_long", ["row 3"])]
    assert report.pairs == [at_limit]


def test_too_few_pairs_says_rag_will_do_better(sample_pairs):
    report = check_pairs(sample_pairs[:5])
    assert [p.kind for p in report.problems] == ["too_few"]
    message = report.problems[0].message
    assert message.startswith("Only 5 question/answer pairs are left to train on")
    assert "memorize" in message and "RAG" in message
    assert report.pairs == sample_pairs[:5]  # a warning: nothing is dropped
    assert check_pairs(sample_pairs[:MIN_PAIRS]).problems == []
    assert check_pairs([]).problems[0].message.startswith("No question/answer pairs are left")


def test_too_few_counts_pairs_left_after_cleaning(sample_pairs):
    conflict = sample_pairs[:MIN_PAIRS] + [FaqPair(sample_pairs[0].question, "Somewhere else.", "extra.csv row 2")]
    assert [p.kind for p in check_pairs(conflict).problems] == ["conflict"]  # 20 usable: enough
    copy = sample_pairs[: MIN_PAIRS - 1] + [replace(sample_pairs[0], location="extra.csv row 2")]
    assert [p.kind for p in check_pairs(copy).problems] == ["duplicate", "too_few"]  # 20 checked, 19 usable


# -- rewording ------------------------------------------------------------------------------------
def test_rewordings_of_every_sample_question(sample_pairs):
    for pair in sample_pairs:
        rewordings = reword(pair.question, 4)
        assert len(rewordings) == 4, pair.question
        keys = [normalize(r) for r in rewordings]
        assert len(set(keys)) == 4, rewordings
        assert normalize(pair.question) not in keys, rewordings
        assert all(r == " ".join(r.split()) and r for r in rewordings)
        assert reword(pair.question, 4) == rewordings  # deterministic


def test_a_greeting_alone_is_not_a_rewording_while_others_are_left(sample_pairs):
    greeting = re.compile(r"^(hi there|hi|hey|hello|quick question) ")
    for pair in sample_pairs:
        cores = [greeting.sub("", normalize(r)) for r in reword(pair.question, 4)]
        assert normalize(pair.question) not in cores and len(set(cores)) == 4, (pair.question, cores)


def test_rewording_is_seeded_by_the_question_text():
    a = reword("Do you offer private lessons?", 6)
    assert reword("Do you offer private lessons?", 6) == a
    assert reword("Do you offer private lessons?", 3) == a[:3]
    assert reword("Do you offer private lessons ?", 6) != a  # another text, another draw


@pytest.mark.parametrize(
    "question, keep",
    [
        ("How much does the beginner wheel-throwing course cost?", ["beginner", "wheel"]),
        ("Do you offer hand-building classes?", ["hand-building"]),
        ("Can I pause my membership?", ["pause", "membership"]),
        ("Is the studio wheelchair accessible?", ["wheelchair", "accessible"]),
        ("Where is Copper Kiln Pottery Studio located?", ["Copper Kiln Pottery Studio"]),
        ("What will I learn in the beginner wheel-throwing course?", ["learn", "beginner wheel-throwing"]),
    ],
)
def test_rewordings_keep_the_content_words(question, keep):
    rewordings = reword(question, 30)
    assert len(rewordings) >= 8
    for r in rewordings:
        for word in keep:
            assert word.lower() in r.lower(), (word, r)


def all_rewordings(question: str) -> list[str]:
    return reword(question, 10_000)


@pytest.mark.parametrize(
    "question, expected",
    [
        ("What are your opening hours?", "I'd like to know what your opening hours are."),
        ("What are your opening hours?", "Can you tell me what your opening hours are?"),
        ("Where is Copper Kiln Pottery Studio located?", "I'd like to know where Copper Kiln Pottery Studio is located."),
        ("Do you offer private lessons?", "Can you tell me whether you offer private lessons?"),
        ("Do you offer private lessons?", "I'd like to know if you offer private lessons."),
        ("How much does a membership cost?", "Can you tell me how much a membership costs?"),
        ("Are clay and glazes included in the class price?", "I'd like to know whether clay and glazes are included in the class price."),
        ("Is the studio wheelchair accessible?", "Can you tell me if the studio is wheelchair accessible?"),
        ("Can members bring guests?", "I'd like to know whether members can bring guests."),
        ("How do I book a private party?", "Can you tell me how to book a private party?"),
        ("Is there a waitlist for full classes?", "Can you tell me if there is a waitlist for full classes?"),
        ("What payment methods do you accept?", "I'd like to know what payment methods you accept."),
    ],
)
def test_questions_become_statements(question, expected):
    assert expected in all_rewordings(question)


@pytest.mark.parametrize(
    "question, expected",
    [
        ("How much does a membership cost?", "How much is a membership?"),  # cost / how much / price
        ("How much does a membership cost?", "What is the price of a membership?"),
        ("Do I need to book taster sessions in advance?", "Do I need to reserve taster sessions in advance?"),
        ("What should I wear to a pottery class?", "What should I wear to a pottery lesson?"),
        ("Do you offer private lessons?", "Do you offer private classes?"),
        ("What are your opening hours?", "What are the opening hours?"),  # your -> the
        ("Is the studio wheelchair accessible?", "Is your studio wheelchair accessible?"),  # the studio -> your studio
        ("How can I contact the studio?", "How can I contact you?"),
        ("What if I do not finish my piece?", "What if I don't finish my piece?"),
        ("What's included in a membership?", "What is included in a membership?"),
        ("What are your opening hours?", "hey, what are your opening times"),  # chat style
    ],
)
def test_swaps_and_chat_style(question, expected):
    # Compared ignoring case and punctuation: "Do I need to reserve ...?" and the chat form "do I
    # need to reserve ..." are one wording, and whichever is drawn first is kept.
    assert normalize(expected) in {normalize(r) for r in all_rewordings(question)}


def test_chat_style_is_lower_case_without_a_question_mark():
    chat = [r for r in all_rewordings("What are your opening hours?") if not r.endswith(("?", "."))]
    assert "hi, what are your opening hours" in chat and "hey what are your business hours" in chat
    assert all(r == r.lower() for r in chat)


def test_no_broken_grammar_from_chat_forms():
    everything = " | ".join(all_rewordings("Are you open on holidays?") + all_rewordings("How long do I have to pick up my finished pieces?"))
    assert "you are guys" not in everything
    assert "how long to have" not in everything
    assert "during lesson" not in " | ".join(all_rewordings("Is there somewhere to store my belongings during class?"))


def test_reword_edge_cases():
    assert reword("What are your opening hours?", 0) == []
    assert reword("   ", 3) == []
    assert all(normalize(r) != "hours" for r in reword("Hours?", 10))


# -- the split ------------------------------------------------------------------------------------
def test_validation_wordings_are_never_trained_on(sample_pairs):
    ts = split_for_training(sample_pairs, n_rewordings=4, n_validation=1)
    trained = {normalize(e.question) for e in ts.train}
    assert len(ts.validation) == len(sample_pairs)  # one held-out wording per pair
    assert len(ts.train) == 4 * len(sample_pairs)  # the original and three rewordings
    for e in ts.validation:
        assert normalize(e.question) not in trained, e.question
        assert not ts.contains_question(e.question)
        assert e.kind == "reworded"
    assert ts.held_out_questions() == {e.question for e in ts.validation}
    assert [e.question for e in ts.train if e.kind == "original"] == [p.question for p in sample_pairs]


def test_every_example_keeps_its_pairs_answer_and_location(sample_pairs):
    ts = split_for_training(sample_pairs)
    answers = {p.location: p.answer for p in sample_pairs}
    for e in ts.train + ts.validation:
        assert answers[e.location] == e.answer


def test_contains_question_ignores_case_and_punctuation(sample_pairs):
    ts = split_for_training(sample_pairs)
    assert ts.contains_question("what are your OPENING hours")
    assert ts.contains_question("  Where is Copper Kiln Pottery Studio located ")
    assert not ts.contains_question("Do you sell kilns?")


def test_seed_changes_which_wordings_are_held_out(sample_pairs):
    a, b = split_for_training(sample_pairs, seed=0), split_for_training(sample_pairs, seed=1)
    assert a.held_out_questions() != b.held_out_questions()
    everything = lambda ts: {e.question for e in ts.train + ts.validation}  # noqa: E731
    assert everything(a) == everything(b)


def test_no_validation(sample_pairs):
    ts = split_for_training(sample_pairs[:3], n_rewordings=2, n_validation=0)
    assert ts.validation == [] and len(ts.train) == 9


def test_a_rewording_equal_to_another_question_is_not_used():
    # The second question is a rewording of the first ("the" for "your"): it must stay the second
    # pair's, with its own answer, and never be a validation wording of the first.
    pairs = [FaqPair("What are your opening hours?", "10 to 9.", "row 2"), FaqPair("What are the opening hours?", "Ask at the desk.", "row 3")]
    ts = split_for_training(pairs, n_rewordings=40, n_validation=5)
    for e in ts.train + ts.validation:
        if normalize(e.question) == normalize("What are the opening hours?"):
            assert (e.answer, e.kind) == ("Ask at the desk.", "original")
    trained = {normalize(e.question) for e in ts.train}
    assert not any(normalize(q) in trained for q in ts.held_out_questions())


def test_data_hash_is_stable_and_follows_the_answers(sample_pairs):
    h = split_for_training(sample_pairs).data_hash()
    assert len(h) == 16
    assert split_for_training(sample_pairs).data_hash() == h
    assert split_for_training(list(reversed(sample_pairs))).data_hash() == h  # moving rows changes nothing
    changed = [replace(p, answer=p.answer.replace("$285", "$295")) for p in sample_pairs]
    assert changed != sample_pairs
    assert split_for_training(changed).data_hash() != h
    assert split_for_training(sample_pairs, seed=1).data_hash() != h  # another split, another model
