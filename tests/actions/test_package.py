"""Tests for the actions package as the action server loads it."""

from rasa_sdk.executor import ActionExecutor

CONTRACT_ACTIONS = {
    "action_order_status",
    "action_cancel_order",
    "action_open_return",
    "action_change_address",
    "action_handoff",
    "action_rate_reply",
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


def test_actions_never_import_components():
    """actions/ runs on the action server, which has no Rasa model or generator."""
    import ast
    from pathlib import Path

    import actions

    offenders = []
    for path in sorted(Path(actions.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.name}: {name}" for name in names
                          if name == "components" or name.startswith("components.")]
    assert offenders == []
