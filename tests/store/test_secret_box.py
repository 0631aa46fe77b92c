"""The secret box: Fernet encryption with rotatable keys."""

from __future__ import annotations

import pytest

from store.errors import Invalid
from store.secret_box import SecretBox, UndecryptableSecret


def test_round_trip_hides_the_plain_text() -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt("whsec_abc")
    assert "whsec_abc" not in token
    assert box.decrypt(token) == "whsec_abc"


def test_each_encryption_differs() -> None:
    box = SecretBox([SecretBox.generate_key()])
    assert box.encrypt("same") != box.encrypt("same")


def test_generated_keys_differ() -> None:
    assert SecretBox.generate_key() != SecretBox.generate_key()


def test_rotation_first_key_encrypts_all_decrypt() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    old_token = SecretBox([old]).encrypt("kept")
    rotated = SecretBox([new, old])
    assert rotated.decrypt(old_token) == "kept"
    new_token = rotated.encrypt("fresh")
    assert SecretBox([new]).decrypt(new_token) == "fresh"
    with pytest.raises(UndecryptableSecret):
        SecretBox([old]).decrypt(new_token)


def test_rotate_moves_a_token_to_the_first_key() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([old]).encrypt("kept")
    moved = SecretBox([new, old]).rotate(token)
    assert SecretBox([new]).decrypt(moved) == "kept"
    with pytest.raises(UndecryptableSecret):
        SecretBox([SecretBox.generate_key()]).rotate(token)


def test_unknown_key_or_tampered_token_cannot_be_read() -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt("secret")
    with pytest.raises(UndecryptableSecret):
        SecretBox([SecretBox.generate_key()]).decrypt(token)
    with pytest.raises(UndecryptableSecret):
        box.decrypt(token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
    with pytest.raises(UndecryptableSecret):
        box.decrypt("not a token")


def test_keys_are_trimmed_and_blank_ones_ignored() -> None:
    key = SecretBox.generate_key()
    assert SecretBox([f"  {key}\n", " "]).decrypt(SecretBox([key]).encrypt("x")) == "x"


@pytest.mark.parametrize(
    "keys",
    [[], ["", "  "], ["not-a-key"], ["c2hvcnQ="], [SecretBox.generate_key(), "bad"]],
    ids=["none", "blank", "garbage", "too-short", "one-bad"],
)
def test_bad_key_lists_are_invalid(keys: list[str]) -> None:
    with pytest.raises(Invalid) as raised:
        SecretBox(keys)
    assert raised.value.field == "keys"
    for key in keys:
        if key.strip():
            assert key not in raised.value.message


def test_a_single_string_is_not_a_key_list() -> None:
    with pytest.raises(Invalid):
        SecretBox(SecretBox.generate_key())
