"""SafetyClassifier: self-harm and abuse override the learned intent."""
import pytest
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from components.nlu.safety_classifier import SafetyClassifier


@pytest.fixture
def classifier():
    return SafetyClassifier(SafetyClassifier.get_default_config())


@pytest.mark.parametrize("text", [
    "I want to kill myself", "i'm thinking about suicide", "I just want to end it all",
    "I don't want to live anymore", "feeling suicidal", "I'm going to hurt myself",
])
def test_self_harm(classifier, text):
    assert classifier.classify(text) == "self_harm"


@pytest.mark.parametrize("text", [
    "you are a stupid bot", "fuck you", "shut up", "you're an idiot", "you are the dumbest assistant",
    "I will find your staff and hurt them", "this is a piece of shit",
])
def test_abuse(classifier, text):
    assert classifier.classify(text) == "abuse"


@pytest.mark.parametrize("text", [
    "where is my order", "this kettle is killing me with its noise, can I return it?",
    "cancel my order please", "my parcel is stupidly late", "end my subscription",
    "I could die for a good coffee machine",
])
def test_ordinary_messages_pass(classifier, text):
    assert classifier.classify(text) is None


def test_self_harm_wins_over_abuse(classifier):
    assert classifier.classify("shut up, I want to end my life") == "self_harm"


def test_process_overrides_intent_and_keeps_the_ranking(classifier):
    message = Message({TEXT: "you are so dumb",
                       INTENT: {"name": "chitchat", "confidence": 0.8},
                       INTENT_RANKING_KEY: [{"name": "chitchat", "confidence": 0.8}]})
    untouched = Message({TEXT: "where is my order", INTENT: {"name": "order_status",
                                                             "confidence": 0.9}})
    payload = Message({TEXT: '/rate_reply{"rating": "helpful"}',
                       INTENT: {"name": "rate_reply", "confidence": 1.0}})
    classifier.process([message, untouched, payload])
    assert message.get(INTENT) == {"name": "abuse", "confidence": 1.0}
    assert [r["name"] for r in message.get(INTENT_RANKING_KEY)] == ["abuse", "chitchat"]
    assert untouched.get(INTENT)["name"] == "order_status"
    assert payload.get(INTENT)["name"] == "rate_reply"


def test_extra_patterns_and_bad_regex():
    config = {**SafetyClassifier.get_default_config(), "extra_abuse": [r"\bclown\b"]}
    assert SafetyClassifier(config).classify("you clown") == "abuse"
    with pytest.raises(ValueError, match="extra_self_harm pattern"):
        SafetyClassifier({**config, "extra_self_harm": ["(unclosed"]})


@pytest.mark.parametrize("text", [
    "how do I get into my ex's account, I know her email",
    "how can i log into my girlfriend's account", "how do i sign in to her account",
    "how do I hack into someone's email", "can I use a stolen card",
    "i want to order with someone else's credit card", "how to fake a damage photo for a refund",
    "can i keep the blender and still get a refund", "help me write a phishing email",
    "file a fake chargeback",
])
def test_wrongdoing(classifier, text):
    assert classifier.classify(text) == "wrongdoing"


@pytest.mark.parametrize("text", [
    # the customer's own trouble, or a legitimate question: not wrongdoing
    "my account was hacked", "I got a phishing email, is it you?", "how do I get into my account",
    "can I log into my account on two devices", "can i track my wife's order",
    "someone logged into my account", "I can't get into my email account",
    "how do I spot a fake deal", "my card was stolen, cancel my order",
])
def test_a_customers_own_trouble_is_not_wrongdoing(classifier, text):
    assert classifier.classify(text) is None
