"""The feedback loop: export, review, fine-tune, evaluate, promote, analytics.

Offline tools over the SQL tracker store; nothing here runs inside the Rasa
server. ``python -m components.feedback --help`` lists the commands.
"""
