"""components/console/users.py: Argon2 hashes, the users file and CONSOLE_USERS, roles."""
from __future__ import annotations

import json
import stat

import pytest

from components.console.users import (
    LEAD, PERMISSIONS, REVIEWER, User, UsersError, add_user, hash_password, load_users, verify,
)


def test_a_password_is_stored_as_an_argon2id_hash_and_verifies(tmp_path):
    path = tmp_path / "var" / "users.json"
    user = add_user(path, "alice", LEAD, "correct horse battery")
    stored = json.loads(path.read_text())
    assert stored == {"alice": {"role": "lead", "password_hash": user.password_hash}}
    assert user.password_hash.startswith("$argon2id$") and "correct" not in path.read_text()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert verify(user, "correct horse battery")
    assert not verify(user, "correct horse batterY")
    assert not verify(User("x", LEAD, "$argon2id$broken"), "anything")


def test_add_user_replaces_a_user_and_keeps_the_others(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "alice", LEAD, "first password")
    add_user(path, "bob", REVIEWER, "bobs password")
    add_user(path, "alice", REVIEWER, "second password")
    users = load_users(path)
    assert {n: u.role for n, u in users.items()} == {"alice": REVIEWER, "bob": REVIEWER}
    assert verify(users["alice"], "second password")


def test_environment_users_join_and_override_the_file(tmp_path):
    path = tmp_path / "users.json"
    add_user(path, "alice", REVIEWER, "file password")
    env = f"alice:lead:{hash_password('env password 1')}; carol:reviewer:{hash_password('carol pass 1')}"
    users = load_users(path, env)
    assert {n: u.role for n, u in users.items()} == {"alice": LEAD, "carol": REVIEWER}
    assert verify(users["alice"], "env password 1")


@pytest.mark.parametrize("env, message", [
    ("alice:lead", "is not name:role:hash"),
    ("alice:admin:$argon2id$x", "has role 'admin'; use one of ['reviewer', 'lead']"),
    ("alice:lead:plaintext", "has no Argon2 hash"),
    ("al ice:lead:$argon2id$x", "is not 1-64 letters"),
])
def test_bad_entries_name_the_problem(tmp_path, env, message):
    with pytest.raises(UsersError, match=message.replace("[", r"\[").replace("(", r"\(")):
        load_users(tmp_path / "none.json", env)


def test_a_broken_users_file_names_the_fix(tmp_path):
    path = tmp_path / "users.json"
    path.write_text("{not json")
    with pytest.raises(UsersError, match="is not JSON"):
        load_users(path)


def test_short_passwords_are_refused(tmp_path):
    with pytest.raises(UsersError, match="at least 10"):
        add_user(tmp_path / "u.json", "alice", LEAD, "short")
    assert not (tmp_path / "u.json").exists()


def test_only_leads_reveal_promote_roll_back_and_read_the_audit_log():
    reviewer, lead = User("r", REVIEWER, "$argon2id$"), User("l", LEAD, "$argon2id$")
    lead_only = {p for p in PERMISSIONS if not reviewer.can(p)}
    assert lead_only == {"reveal", "finetune", "evaluate", "promote", "rollback", "audit"}
    assert all(lead.can(p) for p in PERMISSIONS)
    with pytest.raises(KeyError):
        lead.can("delete_everything")
