"""Shared fixtures: tiny models and corpora built inside the tests, never downloaded."""
from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")

TINY_CORPUS = textwrap.dedent(
    """
    dialogues:
      - topic: shipping
        turns:
          - user: "Do you ship to Canada?"
            bot: "Yes, we ship to the US and Canada."
          - user: "How long does it take?"
            bot: "Standard shipping takes 3-5 business days."
      - topic: warranty
        turns:
          - user: "Is there a warranty on kettles?"
            bot: "Yes, small appliances have a two-year warranty."
      - topic: chitchat
        turns:
          - user: "How are you today?"
            bot: "I'm doing well, thanks for asking! How can I help?"
      - topic: gifts
        turns:
          - user: "Do you sell gift cards?"
            bot: "Yes, Kestrel gift cards come in any amount from $10."
    """
)

# Shape of the tiny models used by the tests (transformers' own tests use
# similar sizes): fast on CPU, real code paths.
TINY_TRAIN = {
    "vocab_size": 300, "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 96,
    "max_seq_len": 64, "batch_size": 4, "epochs": 2, "max_steps": 4, "warmup_steps": 1,
    "val_fraction": 0.25,
}


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    """A one-file dialogue corpus with five dialogues."""
    path = tmp_path / "corpus" / "dialogues.yml"
    path.parent.mkdir()
    path.write_text(TINY_CORPUS, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer GPT-2 with a BPE tokenizer, saved locally."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from components.generator.tokenizer import train_tokenizer

    texts = [line.split(":", 1)[1].strip().strip('"')
             for line in TINY_CORPUS.splitlines() if ("user:" in line or "bot:" in line)]
    tokenizer = train_tokenizer(texts * 5, vocab_size=300)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_positions=96, n_embd=32, n_layer=2, n_head=2,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id))
    path = tmp_path_factory.mktemp("tiny-gpt2")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_up(url: str = PG_URL) -> bool:
    import sqlalchemy as sa

    try:
        with sa.create_engine(url).connect() as conn:
            conn.execute(sa.text("select 1"))
        return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres() -> str:
    """The machine's PostgreSQL server, started with its cluster tool if it is down."""
    if not _postgres_up() and shutil.which("pg_ctlcluster"):
        version = subprocess.run(["ls", "/etc/postgresql"], capture_output=True,
                                 text=True).stdout.split()
        if version:
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version[0], "main",
                            "start"], check=False)
    if not _postgres_up():
        pytest.fail(f"PostgreSQL is not reachable at {PG_URL} and could not be started.")
    return PG_URL


@contextmanager
def new_postgres_database(server_url: str) -> Iterator[str]:
    """URL of a new, empty database on the PostgreSQL server, dropped on exit."""
    import sqlalchemy as sa

    name = f"kestrel_test_{uuid.uuid4().hex[:10]}"
    # pre-ping: a test may restart the server before the drop
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_database(postgres):
    """URL of a new, empty PostgreSQL database on that server, dropped afterwards."""
    with new_postgres_database(postgres) as url:
        yield url


# The trained project, the action server and the agent, shared by every module.
pytest_plugins = ["tests.e2e_fixtures"]
