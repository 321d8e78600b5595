"""Intent classification on frozen sentence embeddings, with calibrated out-of-scope detection.

DIET trained from scratch on a few hundred examples learns the words of the
training data; a linear classifier on a sentence encoder trained on about a
billion sentence pairs generalises to new wordings. This is the recipe of
Casanueva et al. 2020 ("Efficient Intent Detection with Dual Sentence Encoders",
NLP4ConvAI, arXiv 2003.04807): a small classifier over frozen sentence
embeddings, trained in seconds on a CPU. Here the head is an L2-regularised
multinomial logistic regression (scikit-learn, lbfgs, deterministic) over the
all-MiniLM-L6-v2 sentence embedding (components/nlu/sentence_featurizer.py).
On Banking77 with 10 examples per intent it reaches 87% accuracy where DIET
reached 77% (docs/benchmarks.md, "NLU").

Words as well as meaning. A featurizer of character n-grams (Rasa's
CountVectorsFeaturizer, ``analyzer: char_wb``) named in ``featurizers`` adds its
sentence counts as a second block of features: TF-IDF weighted (sublinear tf,
smoothed idf, fitted on the training examples, as scikit-learn's
TfidfTransformer does) and scaled to unit length, like the embedding. This is
the "sentence encoder + sparse features" combination of Casanueva et al. 2020
(their ConveRT/USE + TF-IDF ablations). The embedding generalises to new wordings;
the n-grams keep apart intents that differ by a word the encoder blurs (shipping
prices against delivery policy, a store's returns against another company's).
On the project's data it lifted 5-fold cross-validation intent F1 from 0.833 to
the figure in docs/benchmarks.md ("Issue 15's targets").

Out of scope. A softmax always names some intent. Two scores say how far a
turn is from what the classifier knows:

- the max-softmax probability of the top intent (Hendrycks & Gimpel 2017, "A
  Baseline for Detecting Misclassified and Out-of-Distribution Examples");
- the cosine similarity to the nearest training example of the top intent (the
  k = 1 case of Sun et al. 2022, "Out-of-Distribution Detection with Deep
  Nearest Neighbors", arXiv 2204.06507).

They are fused into one in-scope score, the mean of their percentile ranks
among the held-out examples the classifier got right (``in_scope_score``):
rank normalisation, then CombSUM (Fox & Shaw 1994; Montague & Aslam 2001,
"Relevance Score Normalization for Metasearch"). A turn low on one score and
high on the other is kept; one low on both falls back. On three Banking77
splits the fused score keeps 72.6% in scope and catches 82.0% of out-of-scope
turns, where falling back on either score alone (the rule until 2026-12-04)
kept 68.6% and caught 83.2% (docs/benchmarks.md, "Out-of-scope detection
methods compared"); in Rasa, side by side with `rasa init`'s pipeline, that
is +9.2 points in scope where the old rule gave +4.5 ("NLU on Banking77").

The threshold is not tuned by hand. ``train`` calibrates it on held-out folds
of the training data itself (``calibrate``): it is the q-quantile of the fused
score over the held-out examples the fold's classifier got right, and q is the
value in 0..0.5 that maximises in-scope accuracy plus out-of-scope recall on
those folds.

What counts as out of scope is what the assistant routes to the same place as
a fallback: the ``open_intents`` (config.yml gives the GPT policy's list, so
out_of_scope, chitchat and the help-center questions). Their training examples
are the out-of-scope side; one is caught when it falls back or gets any open
intent, since both reach the generator; the in-scope side is every other
intent. Scoring the routing rather than the intent label keeps confusions
between two open intents from pushing q up: with only the out_of_scope
examples as the out-of-scope side, q on the project's data moved between 0.03
and 0.15 with the order of the training examples and sent up to 19% of fresh
paraphrases of scripted tasks to the fallback (docs/benchmarks.md, "NLU").
Without examples of any open intent (Banking77), each fold leaves a fifth of
the intents out of training and counts their examples as out of scope. The
same rule serves both without a per-deployment sweep; `make bench-heldout`
still sweeps q as a tool.

Every parse with sentence features records what decided it:

    "out_of_scope": {"intent": <top intent>, "confidence": <max softmax>,
                     "similarity": <cosine>, "score": <fused, 0..1>,
                     "threshold": <score below which it falls back>, "fallback": <bool>}

Config (the defaults):

    - name: components.nlu.sentence_intent_classifier.SentenceIntentClassifier
      featurizers: []        # aliases of the featurizers to read; [] = all: the dense
                             # ones give the embedding, the sparse ones the n-gram counts
      open_intents: [out_of_scope]  # intents routed as a fallback is (see above)
      C: 100.0               # inverse L2 strength of the logistic regression
      folds: 5               # held-out folds for calibration
      ranking_length: 10     # intents listed in intent_ranking
      random_seed: 42        # the folds' shuffle (the fit itself is deterministic)
      fallback: true         # false: record the scores, never fall back

A training file whose intent has a single example trains with a warning naming
the intent: that intent is never part of the calibration.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Text, Tuple, Type

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import (INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY,
                                       PREDICTED_CONFIDENCE_KEY, TEXT)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import raise_warning

from components.nlu.sentence_featurizer import unit_sentence_vector
from components.options import positive_int
from shared_names import PROGRESS_LOGGER

logger = logging.getLogger(__name__)

OUTPUT_KEY = "out_of_scope"
OUT_OF_SCOPE_INTENT = "out_of_scope"  # Rasa's conventional name for "no flow owns this"
REPEATS = 3  # fold draws pooled by calibrate: a steadier estimate than one draw
QUANTILES = tuple(round(0.01 * i, 2) for i in range(51))  # q in 0..0.5
ARRAYS_FILE, CALIBRATION_FILE = "classifier.npz", "calibration.json"
REFERENCES = ("reference_confidence", "reference_similarity")  # in classifier.npz
HELD = "held_"  # prefix of the stored held-out scores in classifier.npz


@dataclass(frozen=True)
class Calibration:
    """The out-of-scope rule ``calibrate`` chose, and what it measured on held-out folds.

    Attributes:
        quantile: q, the share of correctly classified held-out in-scope
            examples the threshold sits above (0 = never falls back).
        threshold: the ``in_scope_score`` below which a turn falls back, 0..1.
        in_scope_accuracy: held-out in-scope examples right and kept, 0..1.
        oos_recall: held-out out-of-scope examples that fell back or were
            classified as an open intent, 0..1.
        oos_source: ``"open-intent examples"`` or ``"held-out intents"``.
    """

    quantile: float
    threshold: float
    in_scope_accuracy: float
    oos_recall: float
    oos_source: str


def idf_of(counts) -> np.ndarray:
    """Smoothed inverse document frequencies, float32 (V,), of ``counts`` (N, V).

    ``log((1 + N) / (1 + df)) + 1``, scikit-learn's TfidfTransformer default.
    """
    n = counts.shape[0]
    df = np.asarray((counts > 0).sum(axis=0)).reshape(-1)
    return (np.log((1.0 + n) / (1.0 + df)) + 1.0).astype(np.float32)


def features(vectors: np.ndarray, counts=None, idf: Optional[np.ndarray] = None):
    """The classifier's input: the embeddings, and the TF-IDF n-gram block when there is one.

    Args:
        vectors: float32 (N, D), unit-length sentence embeddings.
        counts: scipy sparse (N, V) n-gram counts of the same N texts, or None.
        idf: (V,) from ``idf_of`` on the training counts; required with ``counts``.

    Returns:
        ``vectors`` itself without ``counts``; else a CSR (N, D + V) matrix whose
        n-gram half is ``(1 + log tf) * idf`` scaled to unit length per row.
    """
    if counts is None:
        return vectors
    from scipy.sparse import csr_matrix, hstack  # noqa: PLC0415 - only with n-grams
    from sklearn.preprocessing import normalize  # noqa: PLC0415 - only with n-grams

    tf = csr_matrix(counts, dtype=np.float32, copy=True)
    tf.data = 1.0 + np.log(tf.data)
    block = normalize(tf.multiply(idf[None, :]).tocsr())
    return hstack([csr_matrix(vectors), block], format="csr", dtype=np.float32)


def sentence_counts(message: Message, featurizers: Optional[Sequence[str]]):
    """The message's sparse sentence features (scipy, (1, V)), or None without any.

    Args:
        featurizers: aliases of the featurizers to read; None or empty = all.
    """
    _, sentence = message.get_sparse_features(TEXT, list(featurizers or []) or None)
    return None if sentence is None else sentence.features


def stack_counts(rows: Sequence[Any], width: Optional[int] = None):
    """CSR (N, V) of the rows of ``sentence_counts``; None when none has any.

    A row that is None (or of another width than ``width``, the trained
    vocabulary's) counts as all zeros.
    """
    from scipy.sparse import csr_matrix, vstack  # noqa: PLC0415 - only with n-grams

    widths = {row.shape[1] for row in rows if row is not None}
    if width is None:
        if not widths:
            return None
        width = max(widths)
    return vstack([csr_matrix(row, dtype=np.float32)
                   if row is not None and row.shape[1] == width
                   else csr_matrix((1, width), dtype=np.float32) for row in rows],
                  format="csr")


def fit(vectors, intents: Sequence[str], c: float):
    """A fitted ``sklearn.linear_model.LogisticRegression`` (multinomial, lbfgs).

    Args:
        vectors: (N, F) features, dense or sparse (``features``).
        intents: N intent names.
        c: inverse L2 regularisation strength (scikit-learn's ``C``).
    """
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415 - only to train

    return LogisticRegression(C=c, max_iter=2000).fit(vectors, np.asarray(intents))


def weights(model) -> Tuple[np.ndarray, np.ndarray]:
    """``(coef (K, D), intercept (K,))`` of a fitted model, one row per class.

    scikit-learn keeps a single row for two classes (the logit of the second);
    rows -z/2 and +z/2 give the same probabilities through a softmax.
    """
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:
        coef, intercept = np.vstack([-coef / 2, coef / 2]), np.concatenate([-intercept / 2,
                                                                             intercept / 2])
    return coef.astype(np.float32), intercept.astype(np.float32)


def scores(coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray,
           examples: np.ndarray, labels: np.ndarray, vectors: np.ndarray, inputs=None):
    """Top intent, its softmax probability and its nearest-example cosine, per query.

    Args:
        coef: (K, F) and ``intercept`` (K,): the logistic regression's weights.
        classes: K intent names, in ``coef``'s row order.
        examples: (N, D) unit training embeddings; ``labels`` their N intents.
        vectors: (B, D) unit query embeddings.
        inputs: (B, F) the queries' ``features`` when F > D (n-grams); else None.

    Returns:
        ``(probabilities (B, K), top (B,) names, confidence (B,), similarity (B,))``;
        similarity (of the embeddings only) is -1 where the top intent has no
        training example.
    """
    logits = np.asarray((vectors if inputs is None else inputs) @ coef.T) + intercept  # (B, K)
    logits = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    best = probabilities.argmax(axis=1)
    top = classes[best]
    cosines = vectors @ examples.T  # (B, N)
    similarity = np.array([cosines[i, labels == name].max(initial=-1.0)
                           for i, name in enumerate(top)])
    return probabilities, top, probabilities[np.arange(len(best)), best], similarity


def _fold_scores(vectors: np.ndarray, intents: np.ndarray, counts, train: np.ndarray,
                 query: np.ndarray, c: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``scores``' top, confidence and similarity of the ``query`` rows, fitted on ``train``."""
    idf = None if counts is None else idf_of(counts[train])
    inputs = features(vectors, counts, idf)
    model = fit(inputs[train], intents[train], c)
    _, top, confidence, similarity = scores(
        *weights(model), model.classes_, vectors[train], intents[train], vectors[query],
        None if counts is None else inputs[query])
    return top, confidence, similarity


def _splits(vectors: np.ndarray, intents: np.ndarray, folds: int, seed: int,
            has_oos: bool) -> List[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One fold draw: ``(train mask, query indices, left-out mask)`` per fold.

    Without open-intent examples (``has_oos`` false), fold k also leaves intent
    group k out of training and queries all of its examples.

    Raises:
        InvalidConfigException: if fewer than 2 intents have ``folds`` examples.
    """
    from sklearn.model_selection import StratifiedKFold  # noqa: PLC0415 - only to train

    rng = np.random.default_rng(seed)
    names = sorted(set(intents.tolist()))
    groups = {} if has_oos else {
        name: k % folds for k, name in enumerate(rng.permutation(names).tolist())}
    sizes = {name: int((intents == name).sum()) for name in names}
    # Intents with fewer examples than folds are trained on in every fold.
    splittable = np.array([sizes[name] >= folds for name in intents.tolist()])
    fold_of = np.full(len(intents), -1)
    idx = np.flatnonzero(splittable)
    if len({intents[i] for i in idx}) < 2:
        raise InvalidConfigException(
            "SentenceIntentClassifier: too few examples to calibrate: each intent needs "
            f"at least {folds} examples (folds: {folds}) and there have to be 2 such intents.")
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(splitter.split(vectors[idx], intents[idx])):
        fold_of[idx[test]] = k
    splits = []
    for k in range(folds):
        left_out = np.array([groups.get(name) == k for name in intents.tolist()])
        train = (fold_of != k) & ~left_out
        query = np.flatnonzero(((fold_of == k) & ~left_out) | left_out)
        if len(set(intents[train].tolist())) >= 2 and len(query):
            splits.append((train, query, left_out))
    return splits


def held_out_scores(vectors: np.ndarray, intents: Sequence[str], c: float = 100.0,
                    folds: int = 5, seed: int = 42,
                    open_intents: Sequence[str] = (OUT_OF_SCOPE_INTENT,), counts=None,
                    ) -> Tuple[Dict[str, np.ndarray], str]:
    """Every example scored by classifiers that did not see it, REPEATS fold draws pooled.

    Args:
        vectors: float32 (N, D), unit-length sentence embeddings of the examples.
        intents: N intent names.
        c: the classifier's ``C``; folds: number of folds (>= 2); seed: fold shuffle.
        open_intents: intents routed as a fallback is (module docstring).
        counts: scipy sparse (N, V) n-gram counts of the examples, or None
            (``features``); each fold's idf comes from its own training rows.

    Returns:
        ``(held, oos_source)``; ``held`` maps ``top`` (M,) intent names,
        ``confidence`` and ``similarity`` (M,) floats, ``right``, ``is_oos``
        and ``top_open`` (M,) bools, one entry per scored example and draw.

    Raises:
        InvalidConfigException: if fewer than 2 intents have ``folds`` examples.
    """
    from joblib import Parallel, delayed  # noqa: PLC0415 - only to train

    labels = np.asarray(intents)
    if counts is not None:
        from scipy.sparse import csr_matrix  # noqa: PLC0415 - only with n-grams

        counts = csr_matrix(counts)
    is_open = np.isin(labels, list(open_intents))
    has_oos = int(is_open.sum()) >= folds
    splits = [split for r in range(REPEATS)
              for split in _splits(vectors, labels, folds, seed + r, has_oos)]
    if not splits:
        raise InvalidConfigException(
            "SentenceIntentClassifier: too few examples to calibrate: no fold kept 2 "
            f"intents to train on (folds: {folds}). Add examples, or lower folds.")
    # The fits are independent. With the n-gram block one takes about 5 s on the
    # project's data: one process per core (70 -> 46 s for the 15 fits on 2
    # cores). Without it a fit takes 0.1 s, less than starting a process.
    fitted = Parallel(n_jobs=1 if counts is None else -1)(
        delayed(_fold_scores)(vectors, labels, counts, train, query, c)
        for train, query, _ in splits)
    parts = [{"top": top, "confidence": confidence, "similarity": similarity,
              "right": top == labels[query],
              "is_oos": is_open[query] if has_oos else left_out[query],
              "top_open": np.isin(top, list(open_intents))}
             for (_, query, left_out), (top, confidence, similarity) in zip(splits, fitted)]
    return ({key: np.concatenate([p[key] for p in parts]) for key in parts[0]},
            "open-intent examples" if has_oos else "held-out intents")


def references(held: Dict[str, np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """Sorted confidences and similarities (M,) of the held-out in-scope examples
    classified right: what ``in_scope_score`` ranks a turn against.

    Both are empty when ``held`` is, or has no such example.
    """
    if not held:
        return np.zeros(0), np.zeros(0)
    kept_right = ~held["is_oos"] & held["right"]
    return np.sort(held["confidence"][kept_right]), np.sort(held["similarity"][kept_right])


def in_scope_score(confidence: np.ndarray, similarity: np.ndarray,
                   reference_confidence: np.ndarray, reference_similarity: np.ndarray,
                   ) -> np.ndarray:
    """The fused in-scope score (B,) in 0..1: the mean of the two percentile ranks.

    Each score's rank is the share of the sorted ``reference_*`` (``references``)
    at or below it, so 0.5 is a turn as typical as the median right example.
    Rank normalisation then CombSUM (module docstring). With empty references
    every score is 1 (nothing to rank against: never falls back).
    """
    if not len(reference_confidence) or not len(reference_similarity):
        return np.ones(len(confidence))
    ranks = (np.searchsorted(reference_confidence, confidence, side="right")
             / len(reference_confidence)
             + np.searchsorted(reference_similarity, similarity, side="right")
             / len(reference_similarity))
    return ranks / 2


def rule_at(held: Dict[str, np.ndarray], q: float, source: str) -> Optional[Calibration]:
    """The rule at quantile ``q`` and its held-out in-scope accuracy and OOS recall.

    Returns None when tied scores (a saturated softmax) make the threshold reject
    more than ``q`` of the right in-scope examples, or nothing can be measured.
    """
    if not held:
        return None
    inside, outside = ~held["is_oos"], held["is_oos"]
    kept_right = inside & held["right"]
    if not kept_right.any() or not outside.any():
        return None
    score = in_scope_score(held["confidence"], held["similarity"], *references(held))
    threshold = float(np.quantile(score[kept_right], q, method="lower")) if q else 0.0
    fell = score < threshold
    if (fell & kept_right).sum() > 2 * q * kept_right.sum():
        return None
    caught = fell | held["top_open"]
    return Calibration(q, threshold, float((kept_right & ~fell).sum() / inside.sum()),
                       float(caught[outside].mean()), source)


def calibrate(vectors: np.ndarray, intents: Sequence[str], c: float = 100.0,
              folds: int = 5, seed: int = 42,
              open_intents: Sequence[str] = (OUT_OF_SCOPE_INTENT,), counts=None) -> Calibration:
    """Chooses the out-of-scope threshold on held-out folds (module docstring).

    Arguments as ``held_out_scores``; the rule is ``choose``'s.

    Raises:
        InvalidConfigException: see ``held_out_scores``.
    """
    held, source = held_out_scores(vectors, intents, c, folds, seed, open_intents, counts)
    return choose([rule for rule in (rule_at(held, q, source) for q in QUANTILES) if rule],
                  source)


def choose(rules: Sequence[Calibration], source: str) -> Calibration:
    """Of ``rules``, the one with the best in-scope accuracy + OOS recall.

    An exact tie goes to the larger q: a doubtful turn is better sent to the
    help center than into a form that answers nothing. Without any rule, one
    that never falls back.
    """
    if not rules:
        return Calibration(0.0, 0.0, 0.0, 0.0, source)
    return max(rules, key=lambda r: (r.in_scope_accuracy + r.oos_recall, r.quantile))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SentenceIntentClassifier(GraphComponent, IntentClassifier):
    """Logistic regression on sentence embeddings; calibrated fallback to ``nlu_fallback``."""

    @classmethod
    def required_components(cls) -> List[Type]:
        """A dense featurizer has to run first: the classifier reads sentence features."""
        return [DenseFeaturizer]

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The defaults, documented in the module docstring."""
        return {"featurizers": [], "open_intents": [OUT_OF_SCOPE_INTENT], "C": 100.0,
                "folds": 5, "ranking_length": 10, "random_seed": 42, "fallback": True}

    @staticmethod
    def required_packages() -> List[Text]:
        """Python packages this component imports."""
        return ["sklearn", "threadpoolctl"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[Text, Any]) -> Optional[Text]:
        """A digest of this module's source.

        Rasa's training cache keys a component by its class source only; the
        calibration lives in module functions, and an edit to them has to retrain.
        """
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        """Rejects a bad option.

        Raises:
            InvalidConfigException: naming the option, the bad value and what it has to be.
        """
        where = "SentenceIntentClassifier"
        c = config.get("C")
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
            raise InvalidConfigException(
                f"{where}: C has to be a number > 0 (100 is a start; lower regularises "
                f"more), got {c!r}.")
        for key in ("folds", "ranking_length", "random_seed"):
            positive_int(key, config.get(key), where, InvalidConfigException)
        if config["folds"] < 2:
            raise InvalidConfigException(f"{where}: folds has to be at least 2, "
                                         f"got {config['folds']!r}.")
        featurizers = config.get("featurizers")
        if not isinstance(featurizers, list) or not all(isinstance(v, str) for v in featurizers):
            raise InvalidConfigException(
                f"{where}: featurizers has to be a list of featurizer aliases, "
                f"got {featurizers!r}.")
        open_intents = config.get("open_intents")
        if not isinstance(open_intents, list) or not all(isinstance(v, str)
                                                         for v in open_intents):
            raise InvalidConfigException(
                f"{where}: open_intents has to be a list of intent names (config.yml "
                f"shares the GPT policy's), got {open_intents!r}.")
        if not isinstance(config.get("fallback"), bool):
            raise InvalidConfigException(
                f"{where}: fallback has to be true or false, got {config.get('fallback')!r}.")

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage,
                 resource: Resource, trained: Optional[Dict[str, Any]] = None) -> None:
        """Keeps the config and, once trained, the weights, examples and calibration.

        Args:
            trained: ``{"coef" (K, D), "intercept" (K,), "classes" (K,),
                "vectors" (N, D), "intents" (N,), "calibration": Calibration,
                "reference_confidence" (M,), "reference_similarity" (M,)}`` and,
                with n-grams, ``"idf" (V,)``.

        Raises:
            InvalidConfigException: see ``validate_config``.
        """
        self._config = {**self.get_default_config(), **config}
        self.validate_config(self._config)
        self._model_storage = model_storage
        self._resource = resource
        self._trained = trained
        self._blas = None  # threadpoolctl's controller, found on the first parse

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext,
               ) -> "SentenceIntentClassifier":
        """An untrained component (Rasa calls this before ``train``)."""
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the classifier on every intent example and calibrates the fallback.

        Raises:
            InvalidConfigException: if no example has sentence features, or the
                data has fewer than 2 intents.
        """
        vectors, intents, rows = [], [], []
        for example in training_data.intent_examples:
            vector = unit_sentence_vector(example, self._config["featurizers"])
            if vector is not None:
                vectors.append(vector)
                intents.append(example.get(INTENT))
                rows.append(sentence_counts(example, self._config["featurizers"]))
        if not vectors:
            raise InvalidConfigException(
                "SentenceIntentClassifier found no dense sentence features on the training "
                f"examples (featurizers: {self._config['featurizers'] or 'all'}). Put "
                "components.nlu.sentence_featurizer.SentenceEmbeddingFeaturizer before it "
                "in the pipeline and name its alias in featurizers, or leave featurizers empty.")
        sizes = {name: intents.count(name) for name in sorted(set(intents))}
        if len(sizes) < 2:
            raise InvalidConfigException(
                f"SentenceIntentClassifier needs at least 2 intents to tell apart, got "
                f"{sorted(sizes)}. Add examples of another intent to the NLU data.")
        for name, count in sizes.items():
            if count < self._config["folds"]:
                raise_warning(
                    f"Intent '{name}' has {count} training example(s), fewer than "
                    f"SentenceIntentClassifier's folds ({self._config['folds']}): it is "
                    "classified, but never used to calibrate the out-of-scope fallback. "
                    "Add examples of it (10 or more generalise well).")
        matrix = np.stack(vectors)  # (N, D)
        counts = stack_counts(rows)  # (N, V) or None
        idf = None if counts is None else idf_of(counts)
        model = fit(features(matrix, counts, idf), intents, float(self._config["C"]))
        try:
            held, source = held_out_scores(matrix, intents, float(self._config["C"]),
                                           self._config["folds"], self._config["random_seed"],
                                           self._config["open_intents"], counts)
        except InvalidConfigException as error:
            raise_warning(f"{error} The out-of-scope fallback is off until then: every "
                          "message gets the classifier's top intent.")
            held, source = {}, "none (too few examples)"
        rules = [rule for rule in (rule_at(held, q, source) for q in QUANTILES) if rule]
        calibration = choose(rules, source)
        logger.info("SentenceIntentClassifier: out-of-scope calibration %s", calibration)
        coef, intercept = weights(model)
        self._trained = {"coef": coef, "intercept": intercept, "classes": model.classes_,
                         "vectors": matrix, **({} if idf is None else {"idf": idf}),
                         "intents": np.asarray(intents), "calibration": calibration,
                         **dict(zip(REFERENCES, references(held))),
                         # The held-out scores: `make bench-heldout` sweeps q over them.
                         **{HELD + key: value for key, value in held.items()}}
        with self._model_storage.write_to(self._resource) as directory:
            np.savez(directory / ARRAYS_FILE, **{k: v for k, v in self._trained.items()
                                             if k != "calibration"})
            (directory / CALIBRATION_FILE).write_text(json.dumps(asdict(calibration), indent=1))
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "SentenceIntentClassifier":
        """The trained component.

        Raises:
            InvalidConfigException: if the archive lacks the trained weights
                (retrain with ``rasa train``).
        """
        logging.getLogger(PROGRESS_LOGGER).info("Loading the NLU (intents, out-of-scope rule)...")
        try:
            with model_storage.read_from(resource) as directory:
                with np.load(directory / ARRAYS_FILE, allow_pickle=False) as stored:
                    trained = {key: stored[key] for key in stored.files}
                calibration = Calibration(**json.loads((directory / CALIBRATION_FILE).read_text()))
            missing = [key for key in REFERENCES if key not in trained]
            if missing:
                raise KeyError(f"no {missing} (an archive trained before the fused score)")
        except (ValueError, FileNotFoundError, OSError, KeyError, TypeError) as error:
            raise InvalidConfigException(
                f"SentenceIntentClassifier: the model archive has no trained classifier "
                f"({error}). Retrain with `rasa train`.") from error
        return cls(config, model_storage, resource, {**trained, "calibration": calibration})

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets ``intent``, ``intent_ranking`` and the ``out_of_scope`` record of each message.

        A message without sentence features (no text) is left unclassified.
        """
        if self._trained is None:
            return messages
        t = self._trained
        calibration: Calibration = t["calibration"]
        if self._blas is None:
            from threadpoolctl import ThreadpoolController  # noqa: PLC0415 - scans libraries

            self._blas = ThreadpoolController()
        for message in messages:
            vector = (unit_sentence_vector(message, self._config["featurizers"])
                      if message.get(TEXT) is not None else None)
            if vector is None:
                continue
            # One BLAS thread for a (1, D) x (D, N) product: right after the
            # encoder's forward pass torch's OpenMP workers still spin, and
            # OpenBLAS's own second thread fights them for the 2 cores. The
            # product took 5 ms that way, 0.1 ms alone; the whole parse went from
            # 28.6 to 22.2 ms on the project's messages (bench/nlu_cost.py).
            inputs = None
            if "idf" in t:
                inputs = features(vector[None, :], stack_counts(
                    [sentence_counts(message, self._config["featurizers"])],
                    width=len(t["idf"])), t["idf"])
            with self._blas.limit(limits=1, user_api="blas"):
                probabilities, top, confidence, similarity = scores(
                    t["coef"], t["intercept"], t["classes"], t["vectors"], t["intents"],
                    vector[None, :], inputs)
            order = np.argsort(-probabilities[0])[: self._config["ranking_length"]]
            ranking = [{INTENT_NAME_KEY: str(t["classes"][i]),
                        PREDICTED_CONFIDENCE_KEY: float(probabilities[0, i])} for i in order]
            score = float(in_scope_score(confidence, similarity, t[REFERENCES[0]],
                                         t[REFERENCES[1]])[0])
            fell = self._config["fallback"] and score < calibration.threshold
            message.set(OUTPUT_KEY, {
                "intent": str(top[0]), "confidence": round(float(confidence[0]), 4),
                "similarity": round(float(similarity[0]), 4), "score": round(score, 4),
                "threshold": round(calibration.threshold, 4), "fallback": fell},
                add_to_output=True)
            if fell:
                # As Rasa's FallbackClassifier does: nlu_fallback on top, the rest kept.
                fallback = {INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                            PREDICTED_CONFIDENCE_KEY: float(confidence[0])}
                ranking = [fallback] + ranking
            message.set(INTENT, dict(ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        return messages
