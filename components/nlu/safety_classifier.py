"""SafetyClassifier: messages about self-harm or abusive messages get a fixed intent.

A learned intent classifier can send "I want to end it all" to `cancel_order`,
or an insult to the generator. This component runs after DIET and the
FallbackClassifier and, when a message matches one of its patterns, sets the
intent to ``self_harm`` or ``abuse`` with confidence 1.0 (the learned intent
stays in ``intent_ranking``). Rules answer those intents with the responses
configured in domain.yml (`utter_self_harm`, `utter_abuse`), so these turns
never reach the generator.

Patterns are case-insensitive regular expressions on the normalised text;
self-harm is checked first, so a message that is both gets the supportive
answer. Add phrases with ``extra_self_harm`` / ``extra_abuse`` in config.yml.
"""
from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

# Phrases of intent to harm oneself; written for this project, in the spirit of
# the "direct statements" lists that crisis-line guidance uses.
SELF_HARM = (
    r"\b(?:kill|hurt|harm|cut)(?:ing)? my ?self\b",
    r"\bend(?:ing)? (?:my|it) (?:life|all)\b",
    r"\b(?:commit(?:ting)?|thinking about) suicide\b",
    r"\bsuicid(?:e|al)\b",
    r"\b(?:want|going|planning) to die\b",
    r"\bdon'?t want to (?:live|be alive|wake up)\b",
    r"\bno reason to (?:live|go on)\b",
)
# Insults and threats aimed at the assistant or the staff.
ABUSE = (
    r"\b(?:you(?:'re| are)?|ur) (?:a |an |so |such an? )?(?:stupid|idiot|moron|useless piece|"
    r"worthless|dumb|pathetic|garbage)\b",
    r"\bf+u+c+k+ (?:you|u|off|this)\b",
    r"\b(?:shut up|screw you|go to hell|piece of (?:shit|crap|junk))\b",
    r"\b(?:i(?:'ll| will)|gonna|going to) (?:kill|hurt|find|beat) (?:you|your staff|them)\b",
    r"\bbitch\b|\bbastard\b|\basshole\b|\bdickhead\b",
)


def _compile(patterns: Sequence[str], name: str) -> List["re.Pattern[str]"]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as e:
            raise ValueError(f"SafetyClassifier {name} pattern {pattern!r} is not a valid "
                             f"regular expression: {e}.") from e
    return compiled


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class SafetyClassifier(GraphComponent):
    """Overrides the intent of self-harm and abusive messages (see module docstring)."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The defaults; config.yml overrides any key."""
        return {
            "self_harm_intent": "self_harm",
            "abuse_intent": "abuse",
            # More case-insensitive regexes, added to the built-in lists.
            "extra_self_harm": [],
            "extra_abuse": [],
        }

    def __init__(self, config: Dict[Text, Any]) -> None:
        """Compiles the patterns.

        Raises:
            ValueError: naming the pattern, if one is not a valid regular expression.
        """
        self.self_harm_intent = config["self_harm_intent"]
        self.abuse_intent = config["abuse_intent"]
        self.self_harm = _compile(list(SELF_HARM) + list(config["extra_self_harm"] or []),
                                  "extra_self_harm")
        self.abuse = _compile(list(ABUSE) + list(config["extra_abuse"] or []), "extra_abuse")

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage,
               resource: Resource, execution_context: ExecutionContext) -> "SafetyClassifier":
        """Creates the component (see GraphComponent)."""
        return cls(config)

    def classify(self, text: str) -> Optional[str]:
        """The safety intent for ``text``, or None when no pattern matches."""
        if any(p.search(text) for p in self.self_harm):
            return self.self_harm_intent
        if any(p.search(text) for p in self.abuse):
            return self.abuse_intent
        return None

    def process(self, messages: List[Message]) -> List[Message]:
        """Sets the safety intent, with confidence 1.0, on matching messages."""
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or text.startswith("/"):
                continue  # button payloads carry their own intent
            intent = self.classify(text)
            if intent is None:
                continue
            override = {"name": intent, "confidence": 1.0}
            ranking = [r for r in message.get(INTENT_RANKING_KEY) or []
                       if r.get("name") != intent]
            message.set(INTENT, override, add_to_output=True)
            message.set(INTENT_RANKING_KEY, [override] + ranking, add_to_output=True)
        return messages
