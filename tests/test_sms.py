"""SMS segment counting: the GSM-7 / UCS-2 limits, escape pairs and surrogate pairs at part boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.sms import GSM7_BASIC, GSM7_EXTENSION, SmsEncoding, SmsSegments, count_segments

GSM, UCS = SmsEncoding.GSM_7, SmsEncoding.UCS_2
EMOJI = "\U0001f600"  # outside the BMP: a surrogate pair in UTF-16


def test_empty_text_is_one_empty_sms() -> None:
    assert count_segments("") == SmsSegments(GSM, 0, 1)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_limits(length: int, segments: int) -> None:
    assert count_segments("a" * length) == SmsSegments(GSM, length, segments)


@pytest.mark.parametrize(("count", "segments"), [(80, 1), (81, 2)])
def test_extension_characters_cost_two_septets(count: int, segments: int) -> None:
    assert count_segments("€" * count) == SmsSegments(GSM, 2 * count, segments)


@pytest.mark.parametrize("ch", sorted(GSM7_EXTENSION))
def test_every_extension_character_is_escaped(ch: str) -> None:
    assert count_segments("a" + ch) == SmsSegments(GSM, 3, 1)


def test_escape_pair_is_not_split_across_parts() -> None:
    # 306 septets would fit two 153-septet parts, but the '€' would straddle
    # the boundary (septets 153 and 154), so it moves to part 2:
    # part 1 = 152 'a' (152), part 2 = '€' + 151 'a' (153), part 3 = 1 'a'.
    assert count_segments("a" * 152 + "€" + "a" * 152) == SmsSegments(GSM, 306, 3)
    # Same length with the pair ending exactly on the boundary: two full parts.
    assert count_segments("a" * 151 + "€" + "a" * 153) == SmsSegments(GSM, 306, 2)


def test_escape_pairs_pack_76_per_part() -> None:
    # 153 is odd, so a part holds at most 76 two-septet characters.
    assert count_segments("€" * 152).segments == 2  # 304 septets
    assert count_segments("€" * 153).segments == 3  # 306 septets, yet three parts


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3)],
)
def test_ucs2_limits(length: int, segments: int) -> None:
    assert count_segments("ж" * length) == SmsSegments(UCS, length, segments)


def test_emoji_counts_two_code_units() -> None:
    assert count_segments(EMOJI) == SmsSegments(UCS, 2, 1)
    assert count_segments(EMOJI * 35) == SmsSegments(UCS, 70, 1)
    # 72 code units: multipart, 33 emoji (66 units) per 67-unit part.
    assert count_segments(EMOJI * 36) == SmsSegments(UCS, 72, 2)


def test_surrogate_pair_is_not_split_across_parts() -> None:
    # 134 units would fit two 67-unit parts, but the emoji would occupy units
    # 67 and 68: part 1 = 66 'ж', part 2 = emoji + 65 'ж', part 3 = 1 'ж'.
    assert count_segments("ж" * 66 + EMOJI + "ж" * 66) == SmsSegments(UCS, 134, 3)
    assert count_segments("ж" * 65 + EMOJI + "ж" * 67) == SmsSegments(UCS, 134, 2)
    assert count_segments(EMOJI * 67) == SmsSegments(UCS, 134, 3)


@pytest.mark.parametrize("ch", ["ł", "á", "ç", "д", "中", "\u00a0", EMOJI])
def test_one_non_gsm_character_switches_the_whole_text_to_ucs2(ch: str) -> None:
    text = "a" * 100 + ch  # 101 septets would be one GSM-7 SMS
    result = count_segments(text)
    assert result.encoding is UCS
    assert result.segments == 2


@pytest.mark.parametrize("ch", ["é", "É", "è", "ü", "ñ", "à", "Ç", "Δ", "§", "¿", "\n", "\r"])
def test_gsm7_basic_letters_stay_gsm7(ch: str) -> None:
    assert count_segments(ch * 160) == SmsSegments(GSM, 160, 1)


def test_the_basic_alphabet_has_127_characters() -> None:
    # 128 codes minus the escape (0x1B); guards against a typo in the table.
    assert len(GSM7_BASIC) == 127
    assert not GSM7_BASIC & GSM7_EXTENSION


_chars = st.one_of(
    st.sampled_from(sorted(GSM7_BASIC)),
    st.sampled_from(sorted(GSM7_EXTENSION)),
    st.characters(),  # any code point but lone surrogates; includes emoji
    st.sampled_from(["\ud800", "\udfff"]),  # lone surrogates must not crash the counter
)
_texts = st.text(_chars, max_size=400)


@settings(database=None, max_examples=200, deadline=None)
@given(text=_texts, suffix=st.text(_chars, min_size=1, max_size=20))
def test_appending_never_lowers_the_segment_count(text: str, suffix: str) -> None:
    before = count_segments(text)
    after = count_segments(text + suffix)
    assert before.segments >= 1
    assert after.segments >= before.segments
    assert after.characters > before.characters or after.encoding is not before.encoding


@settings(database=None, max_examples=200, deadline=None)
@given(text=_texts)
def test_segments_fit_the_characters(text: str) -> None:
    result = count_segments(text)
    single, part = (160, 153) if result.encoding is GSM else (70, 67)
    if result.characters <= single:
        assert result.segments == 1
    else:
        # Packing loses at most one unit per part, so it never needs more
        # than ceil(characters / (part - 1)) parts, nor fewer than ceil(characters / part).
        assert -(-result.characters // part) <= result.segments <= -(-result.characters // (part - 1))
