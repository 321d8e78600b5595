"""Rasa's own SQLTrackerStore, configured by one SQLAlchemy URL.

endpoints.yml::

    tracker_store:
      type: components.tracker_store.URLSQLTrackerStore

The URL comes from the environment variable ``TRACKER_STORE_URL`` when set
(e.g. ``postgresql://postgres@127.0.0.1:5432/test``), otherwise from ``url:``
in endpoints.yml, otherwise it is ``sqlite:///var/tracker.db``. So the same
endpoints.yml needs no server for a new user and switches to PostgreSQL by an
environment variable; Rasa's own ``${VAR}`` syntax has no default values.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional, Text

from rasa.core.tracker_store import SQLTrackerStore

DEFAULT_URL = "sqlite:///var/tracker.db"
URL_ENV = "TRACKER_STORE_URL"


def resolve_url(configured: Optional[str] = None) -> str:
    """The tracker store URL: environment, then endpoints.yml, then the SQLite default."""
    return os.environ.get(URL_ENV) or configured or DEFAULT_URL


class URLSQLTrackerStore(SQLTrackerStore):
    """SQLTrackerStore whose database is given as one URL (see module docstring)."""

    def __init__(self, domain=None, host: Optional[Text] = None, event_broker=None,
                 url: Optional[Text] = None, **kwargs: Any) -> None:
        """Creates the store; for SQLite the file's folder is created first."""
        resolved = resolve_url(url or host)
        if resolved.startswith("sqlite:///"):
            db_file = resolved[len("sqlite:///"):]
            if db_file and db_file != ":memory:":
                Path(db_file).parent.mkdir(parents=True, exist_ok=True)
        # SQLTrackerStore takes a complete URL in `host` (see its get_db_url).
        super().__init__(domain=domain, host=resolved, event_broker=event_broker, **kwargs)
