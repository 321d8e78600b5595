"""Out-of-scope detection by distance to the nearest training example of the predicted intent.

config.yml no longer ships this gate: SentenceIntentClassifier
(components/nlu/sentence_intent_classifier.py) applies the same nearest-example
test, with a threshold calibrated by `rasa train` instead of set by hand. This
component stays for pipelines that keep DIET as their intent classifier.

DIET's softmax confidence says how much one known intent beats the others, not
whether the message is like any of them: a message of an intent never trained on
often gets a confident wrong intent. This component adds the missing signal. It
keeps the sentence embedding of every training example; for a new message it
takes DIET's top intent, finds that intent's most similar training example by
cosine similarity, and sends the turn to ``nlu_fallback`` when even that example
is less similar than ``threshold``. Scoring by the distance to the nearest
training example is the k = 1 case of nearest-neighbour out-of-distribution
detection (Sun et al. 2022, "Out-of-Distribution Detection with Deep Nearest
Neighbors", arXiv 2204.06507), restricted here to the predicted intent's examples.

On Banking77 with 10 intents held out, the gate buys out-of-scope recall at less
cost in in-scope accuracy than a higher FallbackClassifier threshold does; on the
store's own held-out messages it sends 24 of 25 out-of-scope questions to the
generator instead of 19 without losing a scripted paraphrase (docs/benchmarks.md,
"NLU"). Where a deployment's out-of-scope traffic lies decides the best
threshold: `make bench-heldout` sweeps it on held-out messages.

Every parsed message with text gets, in its parse output,

    "nearest_example": {"intent": <DIET's top intent>, "similarity": <cosine, -1..1>}

(absent when the message has no sentence features or the intent has no training
example), whether or not the gate fired; the benchmark reads it to draw the
trade-off curve. A message the FallbackClassifier already sent to
``nlu_fallback`` keeps that intent.

Config (the defaults):

    - name: components.nlu.nearest_example_fallback.NearestExampleFallback
      threshold: 0.5          # cosine similarity below which the turn falls back
      featurizers: []         # aliases of the dense featurizers to read; [] = all
      exempt_intents: []      # intents never sent to nlu_fallback by this gate

Put it after the FallbackClassifier (it reads DIET's ranking and keeps a
fallback already made) and after a dense featurizer that gives sentence
features, such as components.nlu.sentence_featurizer.SentenceEmbeddingFeaturizer.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY,
                                       PREDICTED_CONFIDENCE_KEY, TEXT)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.nlu.sentence_featurizer import unit_sentence_vector

logger = logging.getLogger(__name__)

OUTPUT_KEY = "nearest_example"
_FILE = "examples.npz"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class NearestExampleFallback(GraphComponent):
    """Sends a turn to ``nlu_fallback`` when no training example of its intent is near."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """A dense featurizer has to run first: the gate compares sentence features."""
        return [DenseFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The defaults, documented in the module docstring."""
        return {
            # Cosine similarity to the predicted intent's nearest training
            # example below which the turn becomes nlu_fallback.
            "threshold": 0.5,
            # Aliases of the dense featurizers whose sentence features to
            # compare (their `alias` option); empty: all dense features.
            "featurizers": [],
            # Intents the gate never overrides (the scoring is still output).
            "exempt_intents": [],
        }

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Rejects a bad option.

        Raises:
            InvalidConfigException: naming the option, the bad value and what it has to be.
        """
        threshold = config.get("threshold")
        if (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                or not -1.0 <= threshold <= 1.0):
            raise InvalidConfigException(
                f"NearestExampleFallback: threshold has to be a cosine similarity in "
                f"-1..1 (0.5 is a start; higher sends more turns to nlu_fallback), "
                f"got {threshold!r}.")
        for key in ("featurizers", "exempt_intents"):
            value = config.get(key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidConfigException(
                    f"NearestExampleFallback: {key} has to be a list of names, got {value!r}.")

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource, vectors: Optional[np.ndarray] = None,
                 intents: Optional[List[str]] = None) -> None:
        """Keeps the config and, once trained, the examples.

        Args:
            vectors: float32 (N, D), the unit-length sentence embedding of each
                training example.
            intents: N intent names, one per row of ``vectors``.

        Raises:
            InvalidConfigException: see ``validate_config``.
        """
        self.validate_config(config)
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._exempt = set(config["exempt_intents"])
        self._by_intent: Dict[str, np.ndarray] = {}  # intent -> (n_i, D)
        if vectors is not None and intents is not None:
            self._keep(vectors, intents)

    def _keep(self, vectors: np.ndarray, intents: List[str]) -> None:
        """Groups the examples' vectors (N, D) by intent for ``similarity``."""
        if len(vectors) != len(intents):
            raise ValueError(f"{len(vectors)} vectors for {len(intents)} intent names")
        names = np.asarray(intents)
        self._by_intent = {name: vectors[names == name] for name in sorted(set(intents))}

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext,
               ) -> "NearestExampleFallback":
        """An untrained component (Rasa calls this before ``train``)."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Stores the sentence embedding of every intent example.

        Raises:
            InvalidConfigException: if no intent example has dense sentence
                features (no dense featurizer before this component, or
                ``featurizers`` names none that ran).
        """
        vectors, intents = [], []
        for example in training_data.intent_examples:
            vector = unit_sentence_vector(example, self._config["featurizers"])
            if vector is not None:
                vectors.append(vector)
                intents.append(example.get(INTENT))
        if not vectors:
            raise InvalidConfigException(
                "NearestExampleFallback found no dense sentence features on the training "
                f"examples (featurizers: {self._config['featurizers'] or 'all'}). Put a "
                "dense featurizer such as components.nlu.sentence_featurizer."
                "SentenceEmbeddingFeaturizer before it in the pipeline, and name its "
                "alias in featurizers, or leave featurizers empty.")
        matrix = np.stack(vectors)  # (N, D)
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / _FILE, vectors=matrix, intents=np.asarray(intents))
        self._keep(matrix, intents)
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "NearestExampleFallback":
        """The trained component; without its stored examples, a gate that never fires."""
        try:
            with model_storage.read_from(resource) as directory:
                with np.load(directory / _FILE) as stored:
                    vectors, intents = stored["vectors"], stored["intents"].tolist()
        except (ValueError, FileNotFoundError, OSError, KeyError):
            logger.warning("NearestExampleFallback: no stored training examples in the "
                           "model; the gate is off. Retrain with `rasa train`.")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, vectors, intents)

    def similarity(self, message: Message) -> Optional[Dict[str, Any]]:
        """``{"intent", "similarity"}`` for DIET's top intent, or None when it cannot score.

        The similarity is the largest cosine (-1..1) between the message's
        sentence embedding and the embeddings of that intent's training examples.
        """
        ranking = [r for r in message.get(INTENT_RANKING_KEY) or []
                   if r.get(INTENT_NAME_KEY) != DEFAULT_NLU_FALLBACK_INTENT_NAME]
        top = (ranking[0] if ranking else message.get(INTENT) or {}).get(INTENT_NAME_KEY)
        examples = self._by_intent.get(top)
        if examples is None:
            return None
        vector = unit_sentence_vector(message, self._config["featurizers"])
        if vector is None:
            return None
        return {"intent": top, "similarity": float(np.max(examples @ vector))}  # (n_i,)

    def process(self, messages: List[Message]) -> List[Message]:
        """Scores each message with text and sends the far ones to ``nlu_fallback``."""
        threshold = float(self._config["threshold"])
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or text.startswith("/"):
                continue  # button payloads carry their own intent
            scored = self.similarity(message)
            if scored is None:
                continue
            message.set(OUTPUT_KEY, {**scored, "similarity": round(scored["similarity"], 4)},
                        add_to_output=True)
            current = (message.get(INTENT) or {}).get(INTENT_NAME_KEY)
            if (current == DEFAULT_NLU_FALLBACK_INTENT_NAME or current in self._exempt
                    or scored["similarity"] >= threshold):
                continue
            fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                        PREDICTED_CONFIDENCE_KEY: threshold}
            message.set(INTENT, fallback, add_to_output=True)
            message.set(INTENT_RANKING_KEY,
                        [dict(fallback)] + list(message.get(INTENT_RANKING_KEY) or []),
                        add_to_output=True)
        return messages
