"""TextNormalizer: the preprocessing step before tokenization.

At inference it normalises each incoming message's text:

- Unicode NFKC (full-width letters, ligatures and the like become plain text);
- control and format characters (including zero-width ones) are removed;
- runs of whitespace become one space;
- messages over ``max_chars`` characters are cut, so a 10,000-character
  message costs NLU no more than a long one.

Training data is left as written, because entity annotations are character
offsets into it.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Dict, List, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.options import positive_int

_WHITESPACE = re.compile(r"\s+")


def normalize_text(text: str, max_chars: int) -> str:
    """NFKC, without control/format characters, single-spaced, at most ``max_chars``."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if unicodedata.category(ch) != "Cf"
    )
    return _WHITESPACE.sub(" ", text).strip()[:max_chars]


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class TextNormalizer(GraphComponent):
    """Normalises message text before the tokenizer (see module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The defaults; config.yml overrides any key."""
        return {
            # characters; longer messages are cut before tokenization
            "max_chars": 1000,
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Checks the config.

        Raises:
            ValueError: if ``max_chars`` (characters) is below 1, or int() refuses it.
        """
        # int() first, as always: a "1000" or 1000.0 in config.yml (and in models
        # trained with it) keeps loading.
        self.max_chars = positive_int("max_chars", int(config["max_chars"]), "TextNormalizer")

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "TextNormalizer":
        """Creates the component (see GraphComponent)."""
        return cls(config)

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Leaves training data unchanged (entity offsets refer to it)."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Normalises the text of each incoming message in place."""
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str):
                message.set(TEXT, normalize_text(text, self.max_chars))
        return messages
