"""Tests for the actions package as the action server loads it."""

from rasa_sdk.executor import ActionExecutor

CONTRACT_ACTIONS = {
    "action_order_status",
    "action_cancel_order",
    "action_open_return",
    "action_change_address",
    "action_handoff",
    "validate_order_lookup_form",
    "validate_cancel_order_form",
    "validate_return_form",
    "validate_change_address_form",
    "validate_handoff_form",
}


def test_action_server_registers_exactly_the_contract_actions():
    executor = ActionExecutor()
    executor.register_package("actions")
    assert set(executor.actions) == CONTRACT_ACTIONS
