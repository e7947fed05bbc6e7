"""The tone setting: what each preset adds to the writing prompt, the owner's own words, the checks,
and that the real model's written answers follow it (Qwen2.5-Coder-1.5B, the quality profile's
writer: SmolLM2-135M barely changes its answers with the tone, and the friendlier wording it had
was made-up prices, which are now held back)."""

from __future__ import annotations

import pytest
from conftest import sample_kb

from kb.errors import BadInput
from kb.setting_groups import TONES
from kb.settings import Settings
from kb.store import Store
from rag.answer import BasePath, RagPath
from rag.prompts import rag_messages
from rag.generate import Generator

QWEN = "qwen2.5-coder-1.5b-instruct"

# Questions the price list answers (a question it does not answer is declined: no written answer to measure).
QUESTIONS = ["How much is the canvas studio apron?", "How much is the trimming tool set?",
             "What does a bag of stoneware clay cost?"]


def test_professional_is_the_measured_prompt_and_the_others_add_their_words():
    plain = rag_messages("Q?", ["a passage"])
    assert rag_messages("Q?", ["a passage"], Settings(tone="professional").answers.tone_prompt) == plain
    for tone in ("friendly", "concise"):
        system = rag_messages("Q?", ["a passage"], Settings(tone=tone).answers.tone_prompt)[0]["content"]
        assert system.startswith(plain[0]["content"]) and system.endswith(TONES[tone])  # after the rules
    own = Settings(tone="custom", tone_instructions="  Speak like a\\nsurf instructor. ").answers.tone_prompt
    assert "Speak like a\\nsurf instructor." in own and own.endswith("the facts still come from the documents alone.")
    assert BasePath(Settings(tone="concise"), generator=object()).system().endswith(TONES["concise"])


@pytest.mark.parametrize("changes, message", [
    ({"tone": "grumpy"}, "Setting 'tone' must be professional, friendly, concise, custom"),
    ({"tone": "custom"}, "'tone_instructions' is empty"),
    ({"tone": "custom", "tone_instructions": "x" * 601}, r"keep it to a few sentences \(600 characters at most\)"),
])
def test_bad_tones_are_refused_in_plain_words(changes, message):
    with pytest.raises(BadInput, match=message):
        Settings(**changes)


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    return sample_kb(tmp_path_factory.mktemp("tone"), 4, "price_list.md")


def test_the_models_written_answers_follow_the_tone(kb, model_cache):
    lengths = {}
    # The two best passages keep the prompts short: this is about the voice, not about finding facts.
    writer = Generator(QWEN)
    for tone in ("concise", "friendly"):
        settings = Settings(tone=tone, rag_writer="model", max_new_tokens=80, top_k=2, generator_path=QWEN)
        with Store(kb) as store:
            path = RagPath(store, settings, generator=writer)
            answers = [path.answer(q) for q in QUESTIONS]
        assert all(a.method == "generated" for a in answers), [a.text for a in answers]
        lengths[tone] = sum(len(a.text.split()) for a in answers) / len(answers)
    assert lengths["concise"] < lengths["friendly"], lengths
