"""Console users: names, roles and Argon2 password hashes (argon2-cffi).

Two roles. A ``reviewer`` reads conversations (PII masked), reviews replies and
builds the dataset. A ``lead`` may also reveal masked text, fine-tune, evaluate,
promote and roll back the generator, and read the audit log.

Users come from the users file (JSON, written by ``python -m components.console
add-user``) and from ``CONSOLE_USERS`` (``name:role:hash`` entries separated by
``;``; an Argon2 hash holds neither ``:`` nor ``;``). A name in both takes the
environment's entry. Passwords are never stored or logged in clear.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, FrozenSet, Mapping

from components.generator.atomic import atomic_write_text

REVIEWER, LEAD = "reviewer", "lead"
ROLES = (REVIEWER, LEAD)
# What each role may do. A route names one of these; `User.can` decides.
PERMISSIONS: Mapping[str, FrozenSet[str]] = {
    "read": frozenset(ROLES),
    "review": frozenset(ROLES),
    "dataset": frozenset(ROLES),
    "reveal": frozenset({LEAD}),
    "finetune": frozenset({LEAD}),
    "evaluate": frozenset({LEAD}),
    "promote": frozenset({LEAD}),
    "rollback": frozenset({LEAD}),
    "audit": frozenset({LEAD}),
}
NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_CHARS = 10


class UsersError(ValueError):
    """A user entry or the users file is unusable; the message names it and the fix."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str  # Argon2id, PHC string format ("$argon2id$v=19$m=...")

    def can(self, permission: str) -> bool:
        """True when this user's role may do ``permission`` (a key of PERMISSIONS).

        Raises:
            KeyError: for a permission no route should name (a programming error).
        """
        return self.role in PERMISSIONS[permission]


def _hasher():
    from argon2 import PasswordHasher  # noqa: PLC0415 - only logins and add-user hash

    return PasswordHasher()  # RFC 9106's second recommended profile (argon2-cffi's default)


def hash_password(password: str) -> str:
    """The Argon2id hash of ``password``.

    Raises:
        UsersError: if the password is shorter than MIN_PASSWORD_CHARS.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise UsersError(f"The password has {len(password)} characters; use at least "
                         f"{MIN_PASSWORD_CHARS}.")
    return _hasher().hash(password)


def verify(user: User, password: str) -> bool:
    """True when ``password`` matches the user's hash (constant-time, argon2-cffi)."""
    from argon2.exceptions import InvalidHashError, VerificationError  # noqa: PLC0415

    try:
        return _hasher().verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _user(name: str, role: str, password_hash: str, where: str) -> User:
    if not NAME.match(name):
        raise UsersError(f"{where}: user name {name!r} is not 1-64 letters, digits or . _ @ -.")
    if role not in ROLES:
        raise UsersError(f"{where}: user {name!r} has role {role!r}; use one of {list(ROLES)}.")
    if not password_hash.startswith("$argon2"):
        raise UsersError(f"{where}: user {name!r} has no Argon2 hash; set the password with "
                         f"`python -m components.console add-user {name} --role {role}`.")
    return User(name, role, password_hash)


def load_users(users_file: Path, users_env: str = "") -> Dict[str, User]:
    """name -> User, from the file (if it exists) and then ``users_env``.

    Raises:
        UsersError: naming the entry, if the file is not a JSON object of
            ``{"role", "password_hash"}`` entries, or an entry is malformed.
    """
    users: Dict[str, User] = {}
    path = Path(users_file)
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise UsersError(f"Users file {path} is not JSON ({e}); fix it or delete it and "
                             f"add the users again with add-user.") from e
        if not isinstance(data, dict):
            raise UsersError(f"Users file {path} is not a JSON object of users.")
        for name, entry in data.items():
            if not isinstance(entry, dict):
                raise UsersError(f"Users file {path}: entry {name!r} is not an object.")
            users[name] = _user(name, str(entry.get("role")), str(entry.get("password_hash", "")),
                                f"Users file {path}")
    for number, item in enumerate(filter(None, (s.strip() for s in users_env.split(";"))), 1):
        parts = item.split(":")
        if len(parts) != 3:
            raise UsersError(f"CONSOLE_USERS entry {number} is not name:role:hash (it has "
                             f"{len(parts)} field(s)).")
        users[parts[0]] = _user(*parts, where=f"CONSOLE_USERS entry {number}")
    return users


def add_user(users_file: Path, name: str, role: str, password: str) -> User:
    """Adds or replaces a user in the users file (written atomically, mode 0600).

    Raises:
        UsersError: for a bad name, role or password, or an unreadable file.
    """
    user = _user(name, role, hash_password(password), "add-user")
    path = Path(users_file)
    users = load_users(path) if path.is_file() else {}
    users[name] = user
    data = {u.name: {"role": u.role, "password_hash": u.password_hash}
            for u in sorted(users.values(), key=lambda u: u.name)}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    os.chmod(path, 0o600)
    return user
