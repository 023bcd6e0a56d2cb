from __future__ import annotations

from _huke_k3_core import MASK, Redactor, mask


def test_redactor_masks_every_registered_secret_longest_first() -> None:
    redact = Redactor(["secret-one", None, ""])
    redact.add("secret-one-longer")
    assert redact("a secret-one-longer and secret-one") == f"a {MASK} and {MASK}"


def test_short_values_are_masked_as_whole_tokens_only() -> None:
    assert Redactor(["abc"])("abc abcd xabc 1abc (abc)") == "*** abcd xabc 1abc (***)"


def test_repr_reveals_nothing() -> None:
    redact = Redactor(["top-secret-value"])
    assert "top-secret" not in repr(redact)
    assert mask("top-secret-value") == f"'{MASK}'"
    assert mask(None) == "None"
