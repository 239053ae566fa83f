"""Request and row ids: their alphabet, length and an even spread over every character."""

from __future__ import annotations

from collections import Counter

from pimbot.domain.ids import ALPHABET, REQUEST_ID_LENGTH, new_id, new_request_id, new_row_id

# Chi-square with 30 degrees of freedom: above 80 has a chance of about 3e-6 for a uniform
# draw, while a byte taken modulo 31 (chars 0-7 one eighth likelier) scores ~95 at one place
# of 31,000 ids and ~750 over all their 248,000 characters.
CHI_SQUARE_LIMIT = 80.0


def _chi_square(counts: Counter[str], total: int) -> float:
    expected = total / len(ALPHABET)
    return sum((counts.get(c, 0) - expected) ** 2 / expected for c in ALPHABET)


def test_ids_are_the_alphabet_at_their_length() -> None:
    assert len(new_request_id()) == REQUEST_ID_LENGTH
    assert new_row_id("g").startswith("g") and len(new_row_id("g")) == 13
    assert set("".join(new_request_id() for _ in range(2_000))) == set(ALPHABET)


def test_every_character_at_every_place_is_equally_likely() -> None:
    ids = [new_id(length=8) for _ in range(31_000)]
    assert len(set(ids)) == len(ids)
    for place in (0, 7):  # the lowest and the highest digit of the number drawn
        at = Counter(i[place] for i in ids)
        assert _chi_square(at, len(ids)) < CHI_SQUARE_LIMIT, (place, at.most_common(3))
    every = Counter("".join(ids))
    assert _chi_square(every, 8 * len(ids)) < CHI_SQUARE_LIMIT, every.most_common(3)
