"""Custom actions for the Kestrel Home assistant (rasa_sdk); see docs/contract.md."""
