"""The registry: the loaded policy's generator and response, one snapshot per process."""
import threading

import pytest

from components.generator import registry
from shared_names import GPT_RESPONSE


class FakeGenerator:
    """Stands in for a loaded Generator: the registry only holds it."""

    model_version = "fake-1"


@pytest.fixture(autouse=True)
def empty_registry():
    registry.clear()
    yield
    registry.clear()


def test_nothing_registered():
    assert registry.current() is None
    assert registry.active() is None
    assert registry.response() == GPT_RESPONSE


def test_the_policy_registers_its_generator_and_response():
    generator = FakeGenerator()
    registry.set_active(generator, "utter_custom_reply")
    assert registry.active() is generator
    assert registry.response() == "utter_custom_reply"
    assert registry.current() == registry.ActiveGenerator(generator, "utter_custom_reply")


def test_a_failed_load_keeps_the_response_without_a_generator():
    registry.set_active(None, "utter_custom_reply")
    assert registry.active() is None
    assert registry.response() == "utter_custom_reply"


def test_the_latest_load_wins_and_clear_forgets_it():
    first, second = FakeGenerator(), FakeGenerator()
    registry.set_active(first, "utter_a")
    registry.set_active(second, "utter_b")
    assert (registry.active(), registry.response()) == (second, "utter_b")
    registry.clear()
    assert (registry.active(), registry.response()) == (None, GPT_RESPONSE)


def test_the_registration_is_frozen():
    registry.set_active(FakeGenerator(), "utter_a")
    with pytest.raises(AttributeError):
        registry.current().response = "utter_b"  # type: ignore[misc]


@pytest.mark.parametrize("response", [None, "", 3])
def test_a_response_that_is_not_a_name_is_rejected(response):
    with pytest.raises(ValueError, match="response has to be the name of a domain response"):
        registry.set_active(FakeGenerator(), response)
    assert registry.current() is None  # nothing half-registered


def test_readers_see_whole_registrations_while_models_are_swapped():
    pairs = [(FakeGenerator(), f"utter_{i}") for i in range(4)]
    expected = {id(g): r for g, r in pairs}
    seen, stop = [], threading.Event()

    def swap():
        while not stop.is_set():
            for generator, response in pairs:
                registry.set_active(generator, response)

    thread = threading.Thread(target=swap)
    thread.start()
    try:
        while len(seen) < 2000:
            entry = registry.current()
            if entry is not None:
                seen.append(entry)
    finally:
        stop.set()
        thread.join()
    assert all(expected[id(e.generator)] == e.response for e in seen)
