"""GPTPolicy: sends open-ended turns to the local GPT generator.

A thin adapter between Rasa and ``components.generator``:

- ``train`` trains the built-in generator on ``data/generator/`` (or fine-tunes
  a local checkpoint) and stores it in the model archive, so ``rasa train``
  builds NLU, dialogue and generator in one archive;
- ``load`` loads the generator and registers it for the NLG step;
- ``predict_action_probabilities`` only decides. After a user message whose
  intent is open-ended (``open_intents``) it predicts the generated response
  with confidence 1.0; after any other user message it predicts it with
  ``core_fallback_threshold``, so it wins only when no scripted policy is
  more confident. After the generated response it returns to an active form,
  or listens.

The text itself is written by ``components.nlg.generative_nlg.GenerativeNLG`` in a worker
thread, so generation never blocks Rasa's event loop (Rasa 3.6 runs policies
synchronously inside it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

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

from components.generator import registry
from components.generator.config import TrainConfig
from components.generator.corpus import CorpusError, fingerprint
from components.generator.generator import (
    Generator, GeneratorLoadError, read_meta, write_meta,
)

logger = logging.getLogger(__name__)

GENERATOR_DIR = "generator"  # sub-folder of the policy's resource in the archive


def generator_cache_dir() -> Path:
    """Where trained generators are kept between `rasa train` runs.

    Rasa retrains every policy when any story or rule changes, because the
    training trackers are a policy input. The generator does not depend on
    them, so a generator trained on the same corpus and config is reused from
    here (next to Rasa's own cache, ``RASA_CACHE_DIRECTORY`` or ``.rasa/cache``).
    """
    return Path(os.environ.get("RASA_CACHE_DIRECTORY", ".rasa/cache")) / "gpt_policy"


def effective_base(config: Dict[str, Any]) -> Tuple[Optional[str], bool]:
    """(checkpoint folder or None, whether to fine-tune it on the corpus).

    The promoted generator wins when its folder exists; otherwise ``base_model``
    and ``finetune`` as configured (None: train the built-in model).
    """
    promoted = config.get("promoted")
    if promoted and Path(promoted).is_dir():
        return str(Path(promoted).resolve()), False
    return config.get("base_model"), bool(config.get("finetune", True))


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
            "response": "utter_gpt_reply",
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

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Adds the corpus files and the base checkpoint to Rasa's training cache key.

        Without this, editing ``data/generator/`` would not retrain the generator,
        because the corpus does not flow through Rasa's graph.
        """
        parts = []
        try:
            parts.append(fingerprint(config.get("corpus", "data/generator")))
        except CorpusError:
            parts.append("no-corpus")
        base, _ = effective_base(config)
        parts.append(str(base))
        if base and Path(base).is_dir():
            for f in sorted(Path(base).rglob("*")):
                if f.is_file():
                    st = f.stat()
                    parts.append(f"{f.relative_to(base)}:{st.st_size}:{st.st_mtime_ns}")
        return hashlib.sha256("|".join(parts).encode()).hexdigest()

    def _train_config(self) -> TrainConfig:
        values = dict(self.config.get("train") or {})
        if self.config.get("system_prompt"):
            values.setdefault("system_prompt", self.config["system_prompt"])
        try:
            return TrainConfig.from_dict(values)
        except ValueError as e:
            raise GPTPolicyConfigError(f"GPTPolicy `train` option is invalid: {e}") from e

    def train(
        self,
        training_trackers: List[TrackerWithCachedStates],
        domain: Domain,
        **kwargs: Any,
    ) -> Resource:
        """Trains (or fine-tunes) the generator and stores it in the archive.

        A generator already trained on the same corpus and config is reused from
        ``generator_cache_dir()`` instead.

        Raises:
            GPTPolicyConfigError: if the domain lacks the response, the corpus is
                missing or malformed, or ``base_model`` cannot be loaded.
        """
        if self.response not in domain.responses:
            raise GPTPolicyConfigError(
                f"GPTPolicy answers with the response '{self.response}', which domain.yml "
                f"does not define. Add it under `responses:` with a canned fallback text."
            )
        with self._model_storage.write_to(self._resource) as path:
            out = Path(path) / GENERATOR_DIR
            cached = generator_cache_dir() / self._generator_key()
            if cached.is_dir():
                logger.info(f"GPTPolicy: corpus and config unchanged, reusing {cached}.")
            else:
                self._train_generator(cached)
            shutil.copytree(cached, out, dirs_exist_ok=True)
        self.generator = Generator.load(out, self.config.get("system_prompt"))
        return self._resource

    def _generator_key(self) -> str:
        """Hash of everything the generator's weights depend on (not the stories)."""
        from components.generator.train import TRAINING_CODE_VERSION

        keys = ("corpus", "base_model", "finetune", "train", "system_prompt")
        settings = json.dumps({k: self.config.get(k) for k in keys}, sort_keys=True,
                              default=str) + TRAINING_CODE_VERSION
        return hashlib.sha256(
            (settings + (self.fingerprint_addon(self.config) or "")).encode()).hexdigest()[:16]

    def _train_generator(self, target: Path) -> None:
        """Trains, fine-tunes or copies the generator into ``target`` (atomically).

        Raises:
            GPTPolicyConfigError: on a missing or malformed corpus or a bad checkpoint.
        """
        from components.generator import train as trainer

        base, finetune = effective_base(self.config)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent)) / "generator"
        try:
            if base and not finetune:
                original = Generator.load(base)  # fails early on a bad checkpoint
                shutil.copytree(base, tmp)
                write_meta(tmp, {**read_meta(base), "model_id": original.model_id,
                                 "version": original.model_version, "base_model": str(base)})
            else:
                trainer.train(self.config["corpus"], tmp, self._train_config(),
                              base_model=base)
            tmp.rename(target)
        except (CorpusError, GeneratorLoadError) as e:
            raise GPTPolicyConfigError(f"GPTPolicy cannot train its generator: {e}") from e
        finally:
            shutil.rmtree(tmp.parent, ignore_errors=True)

    def predict_action_probabilities(
        self,
        tracker: DialogueStateTracker,
        domain: Domain,
        rule_only_data: Optional[Dict[Text, Any]] = None,
        **kwargs: Any,
    ) -> PolicyPrediction:
        """Predicts the generated response, or what follows it (see module docstring)."""
        probabilities = self._default_predictions(domain)
        latest = tracker.latest_action_name
        if latest == ACTION_LISTEN_NAME and tracker.latest_message is not None:
            intent = (tracker.latest_message.intent or {}).get("name")
            score = 1.0 if intent in self.open_intents else self.config["core_fallback_threshold"]
            probabilities[domain.index_for_action(self.response)] = score
        elif latest == self.response:
            target = tracker.active_loop_name or ACTION_LISTEN_NAME
            probabilities[domain.index_for_action(target)] = 1.0
        return self._prediction(probabilities)

    def persist(self) -> None:
        """Nothing to do: ``train`` already wrote the generator into the archive."""

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "GPTPolicy":
        """Loads the generator from the archive and registers it for the NLG.

        A missing or broken generator is logged as a warning, not raised: the
        server still starts and open-ended turns get the canned fallback.
        """
        generator = None
        try:
            with model_storage.read_from(resource) as path:
                generator = Generator.load(Path(path) / GENERATOR_DIR,
                                           config.get("system_prompt"))
        except (ValueError, FileNotFoundError, FileIOException, GeneratorLoadError) as e:
            logger.warning(
                f"GPTPolicy could not load its generator ({e}); open-ended turns will "
                f"get the canned '{config.get('response')}' text. Retrain with `rasa train`."
            )
        registry.set_active(generator)
        return cls(config, model_storage, resource, execution_context, generator=generator)
