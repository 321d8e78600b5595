import numpy as np
import pytest

from components.feedback.relevance import EMBEDDING_DIM, embed, relevance


def test_embeddings_are_unit_length_rows():
    vectors = embed(["Where is my order?", "Do you ship to Canada?"])
    assert vectors.shape == (2, EMBEDDING_DIM) == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


def test_no_texts_give_an_empty_matrix():
    assert embed([]).shape == (0, 384)
    assert relevance([], []).shape == (0,)


def test_a_paraphrase_scores_higher_than_an_unrelated_sentence():
    reference = "Standard shipping takes three to five business days."
    scores = relevance(
        ["Delivery usually takes 3-5 working days with standard shipping.",
         "Our kettles come in red, blue and stainless steel.",
         reference],
        [reference] * 3)
    paraphrase, unrelated, same = scores
    assert paraphrase > unrelated + 0.3
    assert same == pytest.approx(1.0, abs=1e-4)
    assert np.all((-1.0 <= scores) & (scores <= 1.0))


def test_each_candidate_is_compared_with_its_own_reference():
    a, b = "Yes, we ship to Canada.", "Kettles have a two-year warranty."
    matched = relevance([a, b], [a, b])
    swapped = relevance([a, b], [b, a])
    assert np.all(matched > swapped + 0.3)


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 candidate.*1 reference"):
        relevance(["a", "b"], ["a"])


def test_a_single_string_is_rejected():
    with pytest.raises(TypeError, match="wrap it in a list"):
        embed("Where is my order?")
