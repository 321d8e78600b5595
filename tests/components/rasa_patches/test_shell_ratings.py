"""components/rasa_patches/shell_ratings.py: `rasa shell` prints rating buttons as a line of text."""
from __future__ import annotations

import rasa.core.channels.console as console

from components.nlg.generative_nlg import rating_buttons
from components.rasa_patches import shell_ratings

PROMPT = "Was this helpful? yes / no"
RATED = {"text": "Gift cards never expire.", "buttons": rating_buttons("0123456789abcdef")}
MENU = {"text": "Pick one", "buttons": [{"title": "Orders", "payload": "/order_status"}]}


def test_only_rating_buttons_make_a_rating_message():
    assert shell_ratings.is_rating_message(RATED)
    assert not shell_ratings.is_rating_message(MENU)
    assert not shell_ratings.is_rating_message({"text": "hi"})
    mixed = {"buttons": RATED["buttons"] + MENU["buttons"]}
    assert not shell_ratings.is_rating_message(mixed)


def test_a_rated_reply_is_printed_as_text_and_no_menu_is_asked(capsys):
    shell_ratings.install(lambda: PROMPT)
    shell_ratings.install(lambda: PROMPT)  # idempotent: wraps Rasa's function once
    question = console._print_bot_output(RATED, is_latest_message=True)
    assert question is None  # Rasa would return a questionary menu here
    printed = capsys.readouterr().out
    assert "Gift cards never expire." in printed and PROMPT in printed
    assert "Helpful" not in printed


def test_other_buttons_and_a_domain_without_the_prompt_keep_rasa_s_buttons(capsys):
    # is_latest_message=False: Rasa lists the buttons instead of asking (a menu needs a TTY).
    shell_ratings.install(lambda: PROMPT)
    console._print_bot_output(MENU, is_latest_message=False)
    assert "Buttons:" in capsys.readouterr().out
    shell_ratings.install(lambda: None)  # a domain without utter_rating_prompt
    console._print_bot_output(RATED, is_latest_message=False)
    printed = capsys.readouterr().out
    assert "Helpful" in printed and PROMPT not in printed
