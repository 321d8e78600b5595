"""components/options.py: the positive-integer option check of the channels and NLU."""
from __future__ import annotations

import pytest
from rasa.shared.exceptions import InvalidConfigException

from components.options import positive_int


@pytest.mark.parametrize("value", [1, 7, 1 << 20])
def test_positive_integers_pass_unchanged(value):
    assert positive_int("max_chars", value, "TextNormalizer") is value


@pytest.mark.parametrize("value", [0, -1, True, False, "8", 8.0, None, [8]])
def test_anything_else_is_refused_naming_where_the_option_and_the_value(value):
    with pytest.raises(ValueError) as raised:
        positive_int("max_chars", value, "TextNormalizer")
    assert str(raised.value) == (f"TextNormalizer: max_chars has to be an integer >= 1, "
                                 f"got {value!r}.")


def test_the_exception_class_is_the_callers():
    with pytest.raises(InvalidConfigException, match="batch_size"):
        positive_int("batch_size", 0, "SentenceEmbeddingFeaturizer", InvalidConfigException)
