"""The evaluation metrics on hand-computed examples: each expected value is worked out in a comment."""

from __future__ import annotations

import doctest

import pytest

from compare import metrics
from compare.metrics import (
    bootstrap_ci,
    has_fact,
    looks_refused,
    mean,
    normalize,
    paired_test,
    percentile,
    rouge_l,
    token_f1,
    tokens,
)


def test_docstring_examples_hold():
    assert doctest.testmod(metrics).failed == 0


# -- normalize and has_fact -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("$1,200.00", "1200"),  # currency symbol, thousands separator and ".00" all go
        ("1200", "1200"),
        ("It costs 1200 dollars", "it costs 1200 dollars"),  # the word "dollars" stays
        ("45.0", "45"),
        ("€12.50", "12.5"),  # trailing zero of a real decimal
        ("£3.14159.", "3.14159"),  # the sentence's full stop goes, the decimal point stays
        ("10AM", "10 am"),
        ("5:30pm", "5:30 pm"),  # the colon inside a time stays
        ("9 a.m. to 5 p.m.", "9 am to 5 pm"),
        ("We open at 9:00 AM", "we open at 9 am"),  # ":00" before am/pm says nothing
        ("Open 10am–9pm!", "open 10 am-9 pm"),  # en dash unified, kept between words
        ("Open 10a.m.—9 P.M.", "open 10 am-9 pm"),
        ("a drop-in class - or two -- maybe", "a drop-in class or two maybe"),  # loose dashes go
        ("It’s the owner's “best” deal", "its the owners best deal"),  # apostrophes dropped
        ("Save 50 % now", "save 50% now"),
        ("Items 1,2 and 3", "items 1 2 and 3"),  # "1,2" is not a thousands separator
        ("  Mixed\tspace\n here ", "mixed space here"),
        ("", ""),
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_has_fact_matches_numbers_written_differently():
    assert normalize("$1,200.00") == normalize("1200")
    assert has_fact("The wheel course is 1200 dollars.", "$1,200.00") is True
    assert has_fact("The wheel course is $1,200.", "1200.00") is True
    assert has_fact("Tickets are 12.50 each", "$12.5") is True


def test_has_fact_matches_whole_words_only():
    assert has_fact("It costs $10.", "1") is False  # "1" is inside "10", not a word of its own
    assert has_fact("It costs $10.", "10") is True
    assert has_fact("Call 555-1234", "555") is True  # the hyphen splits words
    assert has_fact("We are closed on Sunday", "closed Sunday") is False  # must be contiguous


def test_has_fact_reads_time_ranges_alike():
    # "10am-9pm", "10 a.m. - 9 p.m." and "10 am to 9 pm" all read ['10', 'am', '9', 'pm'].
    assert has_fact("Open 10am to 9pm", ["10 am to 9 pm"]) is True
    assert has_fact("Open 10am–9pm", "10 am to 9 pm") is True
    assert has_fact("Open 10 a.m. - 9 p.m. daily", "10am-9pm") is True
    assert has_fact("Open Mon to Fri", "mon-fri") is True
    assert has_fact("Open 10am to 8pm", "10 am to 9 pm") is False
    assert has_fact("Go to 9 Main Street", "go 9") is False  # "to" is kept when it is no range


def test_has_fact_any_of_a_list_and_blank_never_matches():
    assert has_fact("Parking is free.", ["paid", "free"]) is True
    assert has_fact("Parking is free.", ["paid", "$5"]) is False
    assert has_fact("Parking is free.", "") is False
    assert has_fact("Parking is free.", ["", "  ", "!!"]) is False
    assert has_fact("Parking is free.", []) is False


# -- token F1 and ROUGE-L ---------------------------------------------------------------------------
def test_tokens_drop_articles_and_punctuation():
    assert tokens("The cat's 2-hour class: $12.50!") == ["cats", "2", "hour", "class", "12.5"]
    assert tokens("A an THE") == []


def test_token_f1_hand_computed():
    # tokens: [cat, sat, on, mat] vs [cat, sat, on, red, mat]; overlap 4
    # P = 4/4 = 1, R = 4/5 = 0.8, F1 = 2 * 1 * 0.8 / (1 + 0.8) = 1.6 / 1.8 = 0.888...
    assert token_f1("the cat sat on the mat", "a cat sat on a red mat") == pytest.approx(8 / 9)


def test_token_f1_counts_repeats():
    # [yes, yes, yes] vs [yes]: overlap min(3, 1) = 1; P = 1/3, R = 1; F1 = 2 * 1/3 / (4/3) = 0.5
    assert token_f1("yes yes yes", "yes") == pytest.approx(0.5)


def test_token_f1_empty_and_disjoint():
    assert token_f1("", "") == 1.0
    assert token_f1("the", "a") == 1.0  # both are only articles: both empty
    assert token_f1("", "cat") == 0.0
    assert token_f1("cat", "") == 0.0
    assert token_f1("dog", "cat") == 0.0


def test_rouge_l_hand_computed():
    # rouge-score lowercases, keeps [a-z0-9] runs and Porter-stems words longer than 3 letters:
    # prediction [the, cat, sat, on, the, mat] (6), reference [a, cat, wa, sit, on, the, mat] (7)
    # ("sitting" -> "sit"). LCS = cat on the mat = 4. P = 4/6, R = 4/7,
    # F = 2PR / (P + R) = (32/42) / (52/42) = 32/52 = 0.615...
    assert rouge_l("the cat sat on the mat", "a cat was sitting on the mat") == pytest.approx(32 / 52)


def test_rouge_l_stems_and_handles_empty():
    assert rouge_l("Running classes!", "run class") == pytest.approx(1.0)  # running -> run, classes -> class
    assert rouge_l("", "cat") == 0.0
    assert rouge_l("cat", "  ") == 0.0
    assert rouge_l("dog", "cat") == 0.0


# -- mean, percentile, bootstrap --------------------------------------------------------------------
def test_mean_and_percentile():
    assert mean([True, False, True, None]) == pytest.approx(2 / 3)  # None skipped: 2 of 3
    assert mean([]) is None
    assert mean([None]) is None
    # linear: position 0.9 * (5 - 1) = 3.6 between 4 and 5 -> 4 + 0.6 * 1 = 4.6
    assert percentile([1, 2, 3, 4, 5], 90) == pytest.approx(4.6)
    assert percentile([3.0, None, 1.0], 50) == 2.0
    assert percentile([], 50) is None


def test_bootstrap_ci_holds_the_mean_and_narrows_with_more_data():
    small = [True, True, False, True, False] * 4  # 20 values, mean 0.6
    large = small * 100  # 2000 values, same mean
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s <= 0.6 <= hi_s and lo_l <= 0.6 <= hi_l
    assert 0.0 < hi_l - lo_l < hi_s - lo_s
    # the normal approximation for n = 2000 gives 2 * 1.96 * sqrt(0.6 * 0.4 / 2000) = 0.043
    assert hi_l - lo_l == pytest.approx(0.043, abs=0.01)
    assert isinstance(lo_s, float) and isinstance(hi_s, float)


def test_bootstrap_ci_is_reproducible_and_seeded():
    values = [(i * 0.618034) % 1 for i in range(1, 41)]  # 40 distinct scores in 0..1
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


def test_bootstrap_ci_degenerate_inputs():
    assert bootstrap_ci([1, 1, 1, 1]) == (1.0, 1.0)
    assert bootstrap_ci([True] * 10) == (1.0, 1.0)
    assert bootstrap_ci([0.25]) == (0.25, 0.25)
    assert bootstrap_ci([]) is None
    assert bootstrap_ci([None, None]) is None


def test_bootstrap_ci_confidence_widens_the_interval():
    values = [0, 1, 1, 0, 1, 0, 0, 1, 1, 1] * 3
    lo90, hi90 = bootstrap_ci(values, confidence=0.90)
    lo99, hi99 = bootstrap_ci(values, confidence=0.99)
    assert hi99 - lo99 > hi90 - lo90


# -- paired test ------------------------------------------------------------------------------------
def test_paired_test_mcnemar_hand_computed():
    # 10 discordant pairs, all won by a: P(X <= 0 | n=10, p=0.5) * 2 = 2 * 0.5**10 = 0.001953125
    a = [True] * 10 + [True, False]
    b = [False] * 10 + [True, False]
    assert paired_test(a, b) == {
        "test": "McNemar exact", "n": 12, "p_value": pytest.approx(0.001953125), "a_better": 10, "b_better": 0,
    }


def test_paired_test_mcnemar_split_discordance():
    # a wins 1, b wins 3: two-sided binomial of 1 in 4 = 2 * (1 + 4) / 16 = 0.625
    a = [1, 0, 0, 0, 1]
    b = [0, 1, 1, 1, 1]
    result = paired_test(a, b)
    assert result["test"] == "McNemar exact"
    assert result["p_value"] == pytest.approx(0.625)
    assert (result["a_better"], result["b_better"]) == (1, 3)


def test_paired_test_identical_paths():
    assert paired_test([1, 0, 1], [1, 0, 1])["p_value"] == 1.0
    result = paired_test([0.3, 0.5], [0.3, 0.5])
    assert result["test"] == "Wilcoxon signed-rank" and result["p_value"] == 1.0


def test_paired_test_wilcoxon_for_scores():
    # differences 0.1, 0.2, 0.3, 0.4, 0.5 all positive: exact two-sided p = 2 / 2**5 = 0.0625
    a = [0.6, 0.7, 0.8, 0.9, 1.0]
    b = [0.5, 0.5, 0.5, 0.5, 0.5]
    result = paired_test(a, b)
    assert result["test"] == "Wilcoxon signed-rank"
    assert result["p_value"] == pytest.approx(0.0625)
    assert (result["n"], result["a_better"], result["b_better"]) == (5, 5, 0)


def test_paired_test_skips_missing_pairs():
    result = paired_test([1, None, 0, 1], [0, 1, None, 1])
    assert result["n"] == 2  # only pairs 0 and 3 have both scores
    assert (result["a_better"], result["b_better"]) == (1, 0)
    assert result["p_value"] == 1.0  # binomtest(0, 1): one discordant pair proves nothing


def test_paired_test_rejects_unequal_lengths():
    with pytest.raises(ValueError, match="got 3 and 2"):
        paired_test([1, 0, 1], [1, 0])


# -- refusals ---------------------------------------------------------------------------------------
FALLBACK = "Sorry, I can only answer questions about Clay Corner. Please call us on 555-0100."


@pytest.mark.parametrize(
    "text",
    [
        FALLBACK,
        "sorry i can only answer questions about clay corner please call us on 555 0100",
        "Hmm. " + FALLBACK,
        "I'm sorry, I don't have that information.",
        "I don’t know.",
        "I do not have any specific information about parking.",
        "I'm not sure about that.",
        "I cannot answer that question.",
        "I can’t help with that.",
        "I do not have access to your booking.",
        "We are not able to provide medical advice.",
        "There is no information about refunds.",
        "Sorry, I can't find it.",
        "As an AI, I have no opinions.",
    ],
)
def test_looks_refused_positives(text):
    assert looks_refused(text, fallback=FALLBACK) is True


@pytest.mark.parametrize(
    "text",
    [
        "You don't need to bring anything.",
        "We're open 10 am to 9 pm.",
        "If you don't know your size, we will help you choose.",
        "Sorry for the wait: classes restart on Monday.",
        "Call us on 555-0100.",  # part of the fallback only
        "",
    ],
)
def test_looks_refused_negatives(text):
    assert looks_refused(text, fallback=FALLBACK) is False


def test_looks_refused_without_fallback():
    assert looks_refused("I'm not sure.") is True
    assert looks_refused("Classes cost $280.", fallback="") is False


def test_style_similarity_sees_the_voice_not_the_facts():
    formal = "The wheel course costs $180 and runs for six weeks."
    same_voice_other_facts = "The glaze class costs $40 and runs for two hours."
    chatty = "Hi! Sure thing, it's $180 - you'll love it :)"
    assert metrics.style_similarity(formal, formal) == pytest.approx(1.0)
    assert metrics.style_similarity(formal, same_voice_other_facts) > 0.9
    assert metrics.style_similarity(chatty, formal) < 0.3
    assert metrics.style_similarity("We open at nine [1].", "We open at nine.") == pytest.approx(1.0)  # citations ignored
    assert metrics.style_similarity("$180", formal) is None  # nothing to compare
