"""Rasa's own SQLTrackerStore, configured by one SQLAlchemy URL.

endpoints.yml::

    tracker_store:
      type: components.stores.tracker_store.URLSQLTrackerStore

The URL comes from the environment variable ``TRACKER_STORE_URL`` when set
(e.g. ``postgresql://postgres@127.0.0.1:5432/test``), otherwise from ``url:``
in endpoints.yml, otherwise it is ``sqlite:///var/tracker.db``. So the same
endpoints.yml needs no server for a new user and switches to PostgreSQL by an
environment variable; Rasa's own ``${VAR}`` syntax has no default values.

Two changes to how Rasa treats database failures, both for "never lose a
conversation":

- Rasa's Agent wraps every tracker store in ``FailSafeTrackerStore``, which on
  a database error logs and falls back to memory: a failed ``retrieve`` gives
  an empty tracker (the conversation starts over), a failed ``save`` keeps the
  turn in memory only, and the customer gets a 200 either way. Seen in
  tests/test_scale_out.py while PostgreSQL restarted: acknowledged turns were
  missing from the store. With ``raise_on_error: true`` (the default here) the
  error propagates instead, so the turn fails as a whole (nothing is half
  written: one commit per turn) and the REST channel answers 503
  (components/channels/rest_channel.py). The patch that makes Rasa's wrapper
  re-raise for such stores is components/rasa_patches/strict_failsafe.py.
- The connection pool pings a connection before use (SQLAlchemy's
  ``pool_pre_ping``), so after a database restart the first request does not
  fail on a dead pooled connection.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Text

import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker
from rasa.core.tracker_store import SQLTrackerStore, create_engine_kwargs

from components.rasa_patches.strict_failsafe import install_strict_failsafe

DEFAULT_URL = "sqlite:///var/tracker.db"
URL_ENV = "TRACKER_STORE_URL"


def resolve_url(configured: Optional[str] = None) -> str:
    """The tracker store URL: environment, then endpoints.yml, then the SQLite default."""
    return os.environ.get(URL_ENV) or configured or DEFAULT_URL


class URLSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose database is given as one URL (see module docstring)."""

    def __init__(self, domain=None, host: Optional[Text] = None, event_broker=None,
                 url: Optional[Text] = None, raise_on_error: bool = True,
                 **kwargs: Any) -> None:
        """Creates the store; for SQLite the file's folder is created first.

        Raises:
            ValueError: if ``raise_on_error`` is not a boolean.
        """
        if not isinstance(raise_on_error, bool):
            raise ValueError(f"tracker_store raise_on_error has to be true or false, got "
                             f"{raise_on_error!r}.")
        self.raise_on_error = raise_on_error
        if raise_on_error:
            install_strict_failsafe()
        resolved = resolve_url(url or host)
        if resolved.startswith("sqlite:///"):
            db_file = resolved[len("sqlite:///"):]
            if db_file and db_file != ":memory:":
                Path(db_file).parent.mkdir(parents=True, exist_ok=True)
        # SQLTrackerStore takes a complete URL in `host` (see its get_db_url).
        super().__init__(domain=domain, host=resolved, event_broker=event_broker, **kwargs)
        # Rasa's engine, again with pool_pre_ping (see the module docstring). An
        # in-memory SQLite database lives in its engine, so it keeps Rasa's.
        engine_url = self.engine.url
        if engine_url.database not in (None, "", ":memory:"):
            self.engine.dispose()
            self.engine = sa.create_engine(engine_url, pool_pre_ping=True,
                                           **create_engine_kwargs(engine_url))
            self.sessionmaker = sessionmaker(bind=self.engine)
