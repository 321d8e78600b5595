"""The store's key figures agree across the help center, domain.yml and the demo database.

A price, a window or an hour is stated in three kinds of place: the help-center
articles (data/knowledge/, what grounded answers quote), the responses in
domain.yml (what scripted turns say), and the code of the demo store (actions/:
the seed data and the rules the actions apply). Each figure below is taken from
the code that acts on it and must read the same in every place that states it,
so nobody can change one of them alone.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from actions.common import REFUND_DAYS, RETURN_WINDOW_DAYS
from actions.orders import SHIP_WITHIN_BUSINESS_DAYS
from actions.seed import FREE_SHIPPING_OVER_CENTS, STANDARD_SHIPPING_CENTS
from components.generator.knowledge import load_articles

ROOT = Path(__file__).resolve().parent.parent
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
ARTICLES = {a.slug: a.body for a in load_articles(ROOT / "data" / "knowledge")}
SUPPORT_HOURS = DOMAIN["slots"]["support_hours"]["initial_value"]


def dollars(cents: int) -> str:
    return f"${cents // 100}" if cents % 100 == 0 else f"${cents / 100:.2f}"


def texts(response: str) -> list:
    return [v["text"] for v in DOMAIN["responses"][response]]


# (figure, its value, responses whose every variation states it, articles that state it)
FACTS = [
    ("free standard shipping over", dollars(FREE_SHIPPING_OVER_CENTS),
     ["utter_shipping_costs"], ["shipping-costs", "standard-vs-express-delivery"]),
    ("standard shipping", dollars(STANDARD_SHIPPING_CENTS),
     ["utter_shipping_costs"], ["shipping-costs"]),
    ("express shipping", "$12.95", ["utter_shipping_costs"], ["shipping-costs"]),
    ("standard delivery time", "3-5 business days", ["utter_shipping_costs"],
     ["shipping-costs", "standard-vs-express-delivery"]),
    ("express delivery time", "1-2 business days", ["utter_shipping_costs"],
     ["standard-vs-express-delivery"]),
    ("return window", f"{RETURN_WINDOW_DAYS} days", [], ["return-policy"]),
    ("refund time", REFUND_DAYS, [], ["refund-to-original-payment-method", "card-refund-timing"]),
    ("dispatch", f"{SHIP_WITHIN_BUSINESS_DAYS} business days", [], ["order-processing-time"]),
    ("pending authorisation drops off", "3-5 business days", ["utter_payment_problem"],
     ["double-charge-pending-authorisation"]),
    ("support e-mail", "support@kestrelhome.example", ["utter_contact_info"],
     ["contact-and-support-hours"]),
    ("support phone", "+1 555 0100", ["utter_contact_info"], ["contact-and-support-hours"]),
    ("weekday hours", "Monday-Friday 8:00-20:00", [], ["contact-and-support-hours"]),
    ("Saturday hours", "Saturday 9:00-17:00", [], ["contact-and-support-hours"]),
]


@pytest.mark.parametrize("figure,value,responses,articles", FACTS, ids=[f[0] for f in FACTS])
def test_each_figure_reads_the_same_everywhere(figure, value, responses, articles):
    for response in responses:
        for text in texts(response):
            assert value in text, f"{response} does not say {value} ({figure}): {text}"
    for slug in articles:
        assert value in ARTICLES[slug], f"article {slug} does not say {value} ({figure})"


def test_the_hours_in_domain_yml_are_the_hours_in_the_help_center():
    assert "Monday-Friday 8:00-20:00" in SUPPORT_HOURS
    assert "Saturday 9:00-17:00" in SUPPORT_HOURS and "Sunday" in SUPPORT_HOURS


def test_no_article_states_another_price_for_standard_or_express_shipping():
    allowed = {dollars(FREE_SHIPPING_OVER_CENTS), dollars(STANDARD_SHIPPING_CENTS), "$12.95"}
    for slug, body in ARTICLES.items():
        for sentence in re.split(r"(?<=[.!?])\s+", body):
            if re.search(r"\b(standard|express) (shipping|delivery)\b", sentence, re.I):
                amounts = {a.removesuffix(".00")
                           for a in re.findall(r"\$\d+(?:\.\d{2})?", sentence)}
                assert amounts <= allowed, f"{slug}: {sentence}"


def test_no_article_gives_other_contact_details_or_eastern_hours():
    for slug, body in ARTICLES.items():
        emails = set(re.findall(r"[\w.+-]+@kestrelhome\.example", body))
        assert emails <= {"support@kestrelhome.example"}, slug
        for phone in re.findall(r"\+1[\d ]{9,13}\d", body):
            assert phone == "+1 555 0100", slug
        for hours in re.findall(r"Saturday (\d{1,2}:\d{2})-(\d{1,2}:\d{2})(?![^.]*local time)",
                                body):
            assert hours == ("9:00", "17:00"), slug


def test_every_return_window_and_refund_time_in_the_help_center_agrees():
    for slug, body in ARTICLES.items():
        for days in re.findall(r"within (\d+) days of delivery", body):
            assert int(days) == RETURN_WINDOW_DAYS, slug
        for sentence in re.split(r"(?<=[.!?])\s+", body):
            if re.search(r"\brefund", sentence, re.I):
                for days in re.findall(r"(\d+-\d+ business days) after [^.]*warehouse",
                                       sentence):
                    assert days == REFUND_DAYS, f"{slug}: {sentence}"
