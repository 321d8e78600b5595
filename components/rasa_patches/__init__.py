"""Every change this project makes to Rasa 3.6's own classes, in one place.

Each module patches one thing, says why Rasa's behaviour is wrong for a support
desk, and is idempotent; nothing is patched at import time. Who installs it:

- ``action_fallback``: ``RemoteAction.run`` answers ``utter_service_unavailable``
  when the action server is down, instead of silence. Installed by
  ``GenerativeNLG`` (endpoints.yml ``nlg.action_failure_response``) because Rasa
  builds the NLG once per loaded endpoints.yml.
- ``shell_ratings``: `rasa shell` prints a generated reply's rating buttons as a
  text line (domain ``utter_rating_prompt``) instead of a menu that swallowed the
  customer's next message. Installed by ``GenerativeNLG`` (same reason).
- ``strict_failsafe``: ``FailSafeTrackerStore`` re-raises database errors instead
  of falling back to memory (a turn fails as a whole, never silently unsaved).
  Installed by ``URLSQLTrackerStore`` (endpoints.yml ``tracker_store``).

- ``sanic_websocket``: Sanic 21.12 (Rasa's pin) hands ``asyncio.wait`` a coroutine
  in its websocket ``recv``, which Python 3.11 refuses; its frame reader returns a
  task instead, so the web chat's websocket transport works. Installed by the
  socket.io channel (components/channels/socketio_channel.py) with its blueprint.

Rasa behaviour worked around without patching its classes: the un-awaited
``enter_room`` of Rasa's socket.io channel is handled in our channel subclass
(components/channels/socketio_channel.py).
"""
