"""source.topic.code: derived from the rule id in the form Epic accepts, and never changed once released."""
from __future__ import annotations

import re

import pytest

from cds_service.clinical.rules import load_all
from cds_service.hooks.cards import CardLibrary
from cds_service.config import load_config
from cds_service.hooks.topics import TOPIC_CODE, released, rule_for_code, topic_code, topic_display

# Epic's CDS Hooks documentation ("Card Attributes", source.topic): letters and digits only, at most 100.
EPIC_TOPIC_CODE = re.compile(r"^[A-Za-z0-9]{1,100}$")


def _rule_ids() -> set[str]:
    cards = CardLibrary(load_config({})["CDS_CARDS_DIR"])
    return set(load_all()) | set(cards.files)


@pytest.mark.parametrize("rule_id, code", [
    ("electrolyte-review", "ElectrolyteReview"),       # the clinical policy's own example
    ("hypomagnesemia", "Hypomagnesemia"),
    ("hypokalemia-severe", "HypokalemiaSevere"),
    ("magnesium-co-management", "MagnesiumCoManagement"),
    ("b12-level", "B12Level"),
])
def test_code_drops_hyphens_and_capitalises_each_part(rule_id, code):
    assert topic_code(rule_id) == code
    assert EPIC_TOPIC_CODE.match(code)


def test_an_id_that_cannot_give_an_epic_code_is_refused():
    with pytest.raises(ValueError):
        topic_code("a" * 101)
    with pytest.raises(ValueError):
        topic_code("---")


def test_released_codes_never_change():
    """Epic remembers a clinician's override by the topic code: every released code must still be derived."""
    table = released()
    assert len(table) >= 17
    for rule_id, code in table.items():
        assert EPIC_TOPIC_CODE.match(code), (rule_id, code)
        assert topic_code(rule_id) == code, f"the code of released rule {rule_id} would change"


def test_every_rule_and_card_file_has_a_released_code():
    missing = sorted(r for r in _rule_ids() if r not in released())
    assert not missing, (f"add {missing} to cds_service/hooks/topic-codes.json (rule id -> topic_code(rule id)); "
                         "never change an existing entry")


def test_no_two_rule_ids_share_a_code_whatever_the_case():
    ids = set(released()) | _rule_ids()
    by_code: dict[str, list[str]] = {}
    for rule_id in ids:
        by_code.setdefault(topic_code(rule_id).lower(), []).append(rule_id)
    assert all(len(v) == 1 for v in by_code.values()), {k: v for k, v in by_code.items() if len(v) > 1}


def test_code_maps_back_to_its_rule():
    for rule_id in _rule_ids():
        assert rule_for_code(topic_code(rule_id), _rule_ids()) == rule_id
    assert rule_for_code("NoSuchRule", _rule_ids()) is None


def test_display_names_the_rule_in_words():
    assert topic_display("electrolyte-review") == "Electrolyte review"
    assert topic_display("hypomagnesemia", "Hypomagnesemia in a dialysis  patient") == \
        "Hypomagnesemia in a dialysis patient"
    assert TOPIC_CODE.pattern == EPIC_TOPIC_CODE.pattern
