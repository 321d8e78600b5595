"""The console's settings: one frozen dataclass, read from the environment.

Paths of the feedback loop's files (exports, dataset, candidate, report,
generator versions) are the loop's CLI defaults (``components.feedback.cli``),
read from its parser, so the console and ``make dataset`` & co. share them.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

DB_ENV = "CONSOLE_DB_URL"
USERS_ENV = "CONSOLE_USERS"
USERS_FILE_ENV = "CONSOLE_USERS_FILE"
SECRET_ENV = "CONSOLE_SECRET_KEY"
SECURE_COOKIES_ENV = "CONSOLE_SECURE_COOKIES"
DEFAULT_DB = "sqlite:///var/console.db"
DEFAULT_USERS_FILE = "var/console_users.json"
DEFAULT_PORT = 8800
# The corrections file the console writes (atomically) and `dataset --corrections` reads.
CORRECTIONS_FILE = "feedback/corrections.jsonl"


class ConfigError(ValueError):
    """A console setting is unusable; the message names it and the fix."""


def loop_defaults(command: str) -> Dict[str, Any]:
    """The feedback CLI's default arguments of ``command`` (e.g. ``evaluate``'s ``out``)."""
    from components.feedback.cli import build_parser  # noqa: PLC0415 - argparse only

    return vars(build_parser().parse_args([command]))


@dataclass(frozen=True)
class ConsoleConfig:
    """Where the console reads and writes, and how it guards its sessions."""

    store_url: str  # the tracker store (read-only), as the feedback loop's --store
    db_url: str = DEFAULT_DB  # the console's own database: reviews, audit log, jobs
    users_file: Path = Path(DEFAULT_USERS_FILE)
    users_env: str = ""  # CONSOLE_USERS: "name:role:argon2-hash;..." (optional)
    secret_key: str = field(default_factory=lambda: secrets.token_hex(32), repr=False)
    secure_cookies: bool = False  # True behind HTTPS: cookies only over TLS
    root: Path = Path(".")  # the project folder the loop's commands run in
    corrections: Path = Path(CORRECTIONS_FILE)
    jobs_dir: Path = Path("var/console-jobs")  # one log file per job
    page_size: int = 50  # conversations or review items per page

    def __post_init__(self) -> None:
        if not self.store_url:
            raise ConfigError("The console needs the tracker store's URL: set TRACKER_STORE_URL "
                              "(e.g. sqlite:///var/tracker.db).")
        if len(self.secret_key) < 16:
            raise ConfigError(f"{SECRET_ENV} is {len(self.secret_key)} characters; use at least "
                              f"16 random ones, e.g. `python -c 'import secrets; "
                              f"print(secrets.token_hex(32))'`.")
        if self.page_size < 1:
            raise ConfigError(f"page_size has to be at least 1, got {self.page_size}.")

    def path(self, relative: Any) -> Path:
        """A loop path (relative to the project folder) as an absolute path."""
        return (self.root / Path(relative)).resolve()

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, **overrides: Any
                 ) -> "ConsoleConfig":
        """Settings from ``environ`` (default ``os.environ``); ``overrides`` win.

        Without ``CONSOLE_SECRET_KEY`` a random key is made, so sessions end
        when the console restarts.
        """
        from components.feedback.cli import DEFAULT_STORE, DEFAULT_STORE_ENV  # noqa: PLC0415

        env = os.environ if environ is None else environ
        values: Dict[str, Any] = {
            "store_url": env.get(DEFAULT_STORE_ENV) or DEFAULT_STORE,
            "db_url": env.get(DB_ENV) or DEFAULT_DB,
            "users_file": Path(env.get(USERS_FILE_ENV) or DEFAULT_USERS_FILE),
            "users_env": env.get(USERS_ENV, ""),
            "secure_cookies": env.get(SECURE_COOKIES_ENV, "").lower() in ("1", "true", "yes"),
        }
        if env.get(SECRET_ENV):
            values["secret_key"] = env[SECRET_ENV]
        values.update(overrides)
        return cls(**values)
