import pytest
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from components.nlu.text_normalizer import TextNormalizer, normalize_text


@pytest.mark.parametrize("raw, expected", [
    ("  where   is\tmy\norder ", "where is my order"),
    ("ｗｈｅｒｅ ｉｓ ＫＣ－１０４２３", "where is KC-10423"),
    ("zero\u200bwidth", "zerowidth"),
    ("bell\x07 and escape\x1b", "bell and escape"),
    ("🙂 emoji stay", "🙂 emoji stay"),
    ("", ""),
])
def test_normalize_text(raw, expected):
    assert normalize_text(raw, 1000) == expected


def test_long_messages_are_cut():
    assert len(normalize_text("a" * 10_000, 1000)) == 1000


def test_component_processes_messages_but_not_training_data():
    component = TextNormalizer({"max_chars": 10})
    message = Message(data={"text": "  hello\t\tthere world "})
    component.process([message])
    assert message.get("text") == "hello ther"
    data = TrainingData([Message(data={"text": "  keep  as is "})])
    assert component.process_training_data(data).training_examples[0].get("text") == "  keep  as is "


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="max_chars"):
        TextNormalizer({"max_chars": 0})
