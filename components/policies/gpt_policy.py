"""GPTPolicy: sends open-ended turns to the local GPT generator.

A thin adapter between Rasa and ``components.generator``:

- ``train`` gets the generator from one call, ``components.generator.build``
  (which trains the built-in model on ``data/generator/``, fine-tunes or copies
  a local checkpoint, or reuses one built from the same inputs), and stores it
  in the model archive, so ``rasa train`` builds NLU, dialogue and generator in
  one archive;
- ``train`` also indexes the help center (``knowledge``, data/knowledge/) into
  the archive (``components.generator.retrieval``), so every replica serves the
  same read-only index; a malformed article fails ``rasa train`` with its file;
  and it indexes the written replies for turns the help center cannot answer
  (``replies``, ``components.generator.replies``) the same way;
- ``load`` loads the generator and registers it for the NLG step;
- ``predict_action_probabilities`` only decides. After a user message whose
  intent is open-ended (``open_intents``) it predicts the generated response
  with confidence 1.0; after any other user message it predicts it with
  ``core_fallback_threshold``, so it wins only when no scripted policy is
  more confident. After the generated response it returns to an active form,
  or listens. Each decision is logged at debug level with its reason, as
  Rasa's own FallbackClassifier does.

The text itself is written by ``components.nlg.generative_nlg.GenerativeNLG`` in a worker
thread, so generation never blocks Rasa's event loop (Rasa 3.6 runs policies
synchronously inside it).
"""
from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

from rasa.core.policies.policy import Policy, PolicyPrediction
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.generator import TrackerWithCachedStates
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.exceptions import FileIOException, RasaException

from components.generator import build, knowledge, registry, replies, retrieval, tuning
from components.generator.corpus import CorpusError
from components.generator.generator import Generator, GeneratorLoadError
from shared_names import GPT_RESPONSE, PROGRESS_LOGGER

logger = logging.getLogger(__name__)

GENERATOR_DIR = "generator"  # sub-folder of the policy's resource in the archive
KNOWLEDGE_DIR = "knowledge"  # the help-center index, next to it
REPLIES_DIR = "replies"  # the written replies for turns the help center cannot answer


class GPTPolicyConfigError(RasaException):
    """config.yml or domain.yml does not fit the GPTPolicy; the message says how."""


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.POLICY_WITHOUT_END_TO_END_SUPPORT, is_trainable=True
)
class GPTPolicy(Policy):
    """Answers open-ended turns with a locally trained or local GPT model."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The defaults; config.yml overrides any key."""
        return {
            # Below RulePolicy (6) and MemoizationPolicy (3), above TEDPolicy (1):
            # rules and memorised stories win ties at the same confidence.
            "priority": 2,
            # Intents that are always answered by the generator.
            "open_intents": ["nlu_fallback", "out_of_scope", "chitchat", "product_question"],
            # Confidence of the generated reply after any other user message:
            # it is chosen when no scripted policy predicts more confidently.
            "core_fallback_threshold": 0.4,
            # The domain response that the NLG replaces with generated text;
            # its text in domain.yml is the canned fallback.
            "response": GPT_RESPONSE,
            # Folder (or file) of dialogue YAML the generator is trained on.
            "corpus": "data/generator",
            # A local Hugging Face causal LM folder to start from instead of
            # training the built-in model from scratch (no hub download).
            "base_model": None,
            # With base_model: fine-tune it on the corpus (True) or use it as is.
            "finetune": True,
            # The feedback loop's promoted generator (models/generators/current).
            # When that folder exists it is used as is, instead of base_model
            # and the corpus; `python -m components.feedback promote` sets it.
            "promoted": None,
            # TrainConfig overrides (components/generator/config.py), e.g.
            # {epochs: 10, learning_rate: 5.0e-5}.
            "train": {},
            # Instructions placed before the conversation (for instruct models).
            "system_prompt": None,
            # Folder of help-center articles (Markdown with front matter) indexed
            # for retrieval into the archive (config.yml: data/knowledge); None:
            # no help center.
            "knowledge": None,
            # YAML file(s) of `no_answer:` {question, answer} replies written by the
            # team, sent as written to the closest off-topic or chit-chat message
            # (config.yml: data/grounded/no_answer.yml); None: none.
            "replies": None,
            # Folder (or file) of customer questions written for the articles'
            # sections (config.yml: data/grounded), embedded into the index as a
            # third ranker (components/generator/retrieval.py); None: none.
            "questions": None,
            # Whether the generator also learns to answer from the help center's
            # passages (the `questions` with their answers); the NLG then lets it
            # write help-center answers. Off: measured less correct than the
            # extractive answer (docs/benchmarks.md, "Issue 14's targets").
            "answer_from_passages": False,
            # How `rasa train` tunes the encoder that ranks the passages on the
            # `questions` (components/generator/tuning.py: a LoRA adapter on
            # all-MiniLM-L6-v2, stored with the index), e.g. {epochs: 2}; {} or
            # epochs 0: the encoder as shipped.
            "retrieval_tuning": {},
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        featurizer=None,
        generator: Optional[Generator] = None,
    ) -> None:
        """Creates the policy; ``generator`` is set once trained or loaded."""
        super().__init__(config, model_storage, resource, execution_context, featurizer)
        self.generator = generator
        self.open_intents = set(config["open_intents"])
        self.response = config["response"]
        if not 0 <= config["core_fallback_threshold"] <= 1:
            raise GPTPolicyConfigError(
                f"GPTPolicy core_fallback_threshold has to be in [0, 1], got "
                f"{config['core_fallback_threshold']!r}."
            )
        try:
            self.tuning = tuning.TuningConfig.from_dict(config.get("retrieval_tuning"))
        except (TypeError, ValueError) as e:
            raise GPTPolicyConfigError(f"GPTPolicy `retrieval_tuning` is invalid: {e}") from e

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Adds the corpus, the base checkpoint, the generator's training code version and
        the articles to Rasa's training cache key.

        Without this, editing ``data/generator/`` or ``data/knowledge/`` would not
        retrain, because neither flows through Rasa's graph. An edited article
        re-runs only this policy: the generator comes back from its own cache
        (its key leaves the articles out) and only the index is rebuilt, as it is
        after a change of ``retrieval.INDEX_FORMAT``. SHA-256, hex.
        """
        articles = config.get("knowledge")
        index = knowledge.fingerprint(articles) if articles and Path(articles).is_dir() else "-"
        written = config.get("replies")
        bank = (hashlib.sha256(Path(written).read_bytes()).hexdigest()
                if written and Path(written).is_file() else "-")
        questions = config.get("questions")
        known = (knowledge.questions_fingerprint(Path(questions))
                 if questions and Path(questions).exists() else "-")
        # build.cache_key: the corpus, the base checkpoint and train.TRAINING_CODE_VERSION.
        tuned = sorted((config.get("retrieval_tuning") or {}).items())
        return hashlib.sha256(f"{build.cache_key(config)}|{articles}|{index}|"
                              f"{retrieval.INDEX_FORMAT}|{written}|{bank}|{questions}|"
                              f"{known}|{tuned}".encode()).hexdigest()

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Builds the generator (``build.build_generator``) and stores it in the archive.

        A generator already built from the same corpus and config is reused from
        ``build.generator_cache_dir()`` instead of being trained again.

        Raises:
            GPTPolicyConfigError: if the domain lacks the response, the corpus is
                missing or malformed, ``base_model`` cannot be loaded, the
                ``train`` options are invalid, or a help-center article is
                malformed (the message names the file and the fix), or a written
                reply is malformed or states a store fact, or a known question is
                malformed or names a section the help center lacks.
        """
        if self.response not in domain.responses:
            raise GPTPolicyConfigError(
                f"GPTPolicy answers with the response '{self.response}', which domain.yml "
                f"does not define. Add it under `responses:` with a canned fallback text."
            )
        try:
            built = build.build_generator(self.config, build.generator_cache_dir())
        except build.TrainOptionsError as e:
            raise GPTPolicyConfigError(f"GPTPolicy `train` option is invalid: {e}") from e
        except (CorpusError, GeneratorLoadError) as e:
            raise GPTPolicyConfigError(f"GPTPolicy cannot train its generator: {e}") from e
        passages = self._help_center()
        written = self._written_replies()
        with self._model_storage.write_to(self._resource) as path:
            out = Path(path) / GENERATOR_DIR
            shutil.copytree(built, out, dirs_exist_ok=True)
            if passages:
                self._index(passages, Path(path) / KNOWLEDGE_DIR)
            if written:
                replies.ReplyBank.build(written, retrieval.minilm_encoder()).save(
                    Path(path) / REPLIES_DIR)
        self.generator = Generator.load(out, self.config.get("system_prompt"))
        return self._resource

    def _index(self, passages: List[knowledge.Passage], folder: Path) -> None:
        """Indexes ``passages`` and the known questions into ``folder``, with the retrieval
        encoder tuned on those questions first when ``retrieval_tuning`` asks for it."""
        questions = self._known_questions()
        encoder = retrieval.minilm_encoder()
        try:
            retrieval.check_questions(passages, questions)
            if self.tuning.epochs and questions:
                tuned = tuning.tune(tuning.training_pairs(passages, questions), self.tuning)
                tuning.save(tuned, folder / tuning.ADAPTER_DIR)
                encoder = retrieval.CachedEncoder(tuning.TunedEncoder(tuned))
            index = retrieval.Retriever.build(passages, encoder, questions)
        except ValueError as e:
            raise GPTPolicyConfigError(f"GPTPolicy cannot index the help center: {e}") from e
        index.save(folder)

    @staticmethod
    def _load_index(folder: Path) -> Optional[retrieval.Retriever]:
        """The help-center index in the archive, or None (with a warning) when it is unusable."""
        try:
            return retrieval.Retriever.load(folder, tuning.index_encoder(folder))
        except (OSError, ValueError) as e:
            logger.warning(f"GPTPolicy could not load the help-center index ({e}); open-ended "
                           f"turns are answered without it. Retrain with `rasa train`.")
            return None

    @staticmethod
    def _load_bank(folder: Path) -> Optional[replies.ReplyBank]:
        """The written replies in the archive, or None (with a warning) when unusable."""
        try:
            return replies.ReplyBank.load(folder, retrieval.minilm_encoder())
        except (OSError, ValueError, TypeError) as e:
            logger.warning(f"GPTPolicy could not load the written replies ({e}); off-topic "
                           f"turns are answered without them. Retrain with `rasa train`.")
            return None

    def _help_center(self) -> List[knowledge.Passage]:
        """The passages of the ``knowledge`` articles; [] when it is null."""
        folder = self.config.get("knowledge")
        if not folder:
            return []
        try:
            passages = knowledge.load_passages(Path(folder))
        except knowledge.KnowledgeError as e:
            raise GPTPolicyConfigError(f"GPTPolicy cannot index the help center: {e}") from e
        logger.info("GPTPolicy: indexing %d help-center passages from %s.", len(passages), folder)
        return passages

    def _known_questions(self) -> List[knowledge.KnownQuestion]:
        """The ``questions`` folder's known questions; [] when it is null."""
        folder = self.config.get("questions")
        if not folder:
            return []
        try:
            return knowledge.load_known_questions(Path(folder))
        except knowledge.KnowledgeError as e:
            raise GPTPolicyConfigError(f"GPTPolicy cannot index the known questions: {e}") from e

    def _written_replies(self) -> List[replies.WrittenReply]:
        """The ``replies`` file's written replies; [] when it is null."""
        path = self.config.get("replies")
        if not path:
            return []
        try:
            return replies.load_replies(path)
        except replies.ReplyBankError as e:
            raise GPTPolicyConfigError(f"GPTPolicy cannot index the written replies: {e}") from e

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Predicts the generated response, or what follows it (see module docstring).

        Logs the decision and its reason at debug level (lazily formatted).
        """
        probabilities = self._default_predictions(domain)
        latest = tracker.latest_action_name
        if latest == ACTION_LISTEN_NAME and tracker.latest_message is not None:
            intent = tracker.latest_message.intent or {}
            name = intent.get("name")
            if name in self.open_intents:
                score = 1.0
                logger.debug("GPTPolicy predicted %s with confidence 1.0: intent '%s' is "
                             "open-ended.", self.response, name)
            else:
                score = self.config["core_fallback_threshold"]
                logger.debug("GPTPolicy predicted %s with confidence %s "
                             "(core_fallback_threshold): intent '%s' (confidence %s) is "
                             "scripted; a scripted policy wins if more confident.",
                             self.response, score, name, intent.get("confidence"))
            probabilities[domain.index_for_action(self.response)] = score
        elif latest == self.response:
            target = tracker.active_loop_name or ACTION_LISTEN_NAME
            probabilities[domain.index_for_action(target)] = 1.0
            if target == ACTION_LISTEN_NAME:
                logger.debug("GPTPolicy predicted %s with confidence 1.0: after %s no form "
                             "is active, so it listens.", target, self.response)
            else:
                logger.debug("GPTPolicy predicted %s with confidence 1.0: after %s: back to "
                             "the active form %s.", target, self.response, target)
        else:
            logger.debug("GPTPolicy predicted nothing: it acts only after a user message "
                         "or after %s, and the latest action is %s.", self.response, latest)
        return self._prediction(probabilities)

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "GPTPolicy":
        """Loads the generator and the help-center index and registers them for the NLG.

        A missing or broken generator or index is logged as a warning, not
        raised: the server still starts, open-ended turns get the canned
        fallback (no generator) or are answered without the help center.
        """
        generator, index, bank = None, None, None
        logging.getLogger(PROGRESS_LOGGER).info("Loading the generator and the help center...")
        try:
            with model_storage.read_from(resource) as path:
                generator = Generator.load(Path(path) / GENERATOR_DIR,
                                           config.get("system_prompt"))
                if config.get("knowledge"):
                    index = cls._load_index(Path(path) / KNOWLEDGE_DIR)
                if config.get("replies"):
                    bank = cls._load_bank(Path(path) / REPLIES_DIR)
        except (ValueError, FileNotFoundError, FileIOException, GeneratorLoadError) as e:
            logger.warning(
                f"GPTPolicy could not load its generator ({e}); open-ended turns will "
                f"get the canned '{config.get('response')}' text. Retrain with `rasa train`."
            )
        registry.set_active(generator, config["response"], index, bank)
        return cls(config, model_storage, resource, execution_context, generator=generator)
