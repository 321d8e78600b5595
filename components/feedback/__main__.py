"""``python -m components.feedback``: see components/feedback/cli.py."""
import os
import sys

# transformers would otherwise import TensorFlow (installed for Rasa) next to torch:
# about 0.5 GB more resident memory for nothing. Only `export` loads Rasa, and with it TF.
os.environ.setdefault("USE_TF", "0")

from components.feedback.cli import main

sys.exit(main())
