"""The support team's console: a web page over the tracker store and the feedback loop.

Support agents and team leads read conversations, review and correct generated
replies, see the knowledge gaps and run the feedback loop's steps (dataset,
fine-tune, evaluate, promote, roll back) in a browser, without a terminal.

It reads the tracker store read-only (``components.feedback.store``) and does every
step of the loop through the loop's own modules and CLI, so nothing is implemented
twice. Its own state (reviews, the audit log, jobs) lives in a separate database,
``CONSOLE_DB_URL`` (SQLite by default, PostgreSQL in production).

    python -m components.console add-user alice --role lead
    python -m components.console serve          # or: make console
"""
