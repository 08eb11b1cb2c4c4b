"""Hook answers are encoded by msgspec (app._hook_json): the bytes must be the ones Flask's jsonify writes."""
from __future__ import annotations

import pytest
from flask import jsonify

from cds_service.app import _hook_json
from cds_service.services import SERVICES
from cds_service.timing import Timings
from support.corpus import real_requests

REAL = real_requests()


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from cds_service import create_app

    from support.helpers import NOW

    app = create_app({"CDS_REQUIRE_JWT": "false", "CDS_FEEDBACK_DB": str(tmp_path_factory.mktemp("db") / "f.sqlite3"),
                      "CDS_LOG_FORMAT": "text", "NOW_FN": lambda: NOW})
    yield app
    app.extensions["cds"].fhir.close()


def _same_bytes(app, body) -> None:
    with app.test_request_context():
        ours, flasks = _hook_json(body), jsonify(body)
        assert ours.get_data() == flasks.get_data()
        assert ours.mimetype == flasks.mimetype and ours.headers["Content-Type"] == flasks.headers["Content-Type"]


@pytest.mark.parametrize("name,body", REAL, ids=[name for name, _ in REAL])
def test_every_scenario_and_fixture_answer_is_written_as_jsonify_writes_it(app, name, body):
    service = next(s for s in SERVICES.values() if s.hook == body["hook"])
    outcome = app.extensions["cds"].engine.call(service, body, Timings(), fetch=False,
                                                smart_launch_url="https://ehr.example/smart/launch")
    _same_bytes(app, outcome.body)


@pytest.mark.parametrize("body", [
    {"cards": []},
    {"cards": [{"summary": "Mg 0.4 mmol/L \u2014 <low> & \"quoted\" \\ é \u2028 \x7f \x00 \t\n", "n": 3, "x": 0.5,
                "ok": True, "none": None, "nested": [{"a": [1, 2.25, -0.0]}]}]},
])
def test_odd_characters_and_numbers_are_written_as_jsonify_writes_them(app, body):
    _same_bytes(app, body)


def test_in_debug_mode_the_answer_is_jsonify_s_own(app):
    app.debug = True
    try:
        with app.test_request_context():
            assert _hook_json({"cards": [{"a": 1}]}).get_data() == jsonify({"cards": [{"a": 1}]}).get_data()
            assert b"\n  " in _hook_json({"cards": [{"a": 1}]}).get_data()
    finally:
        app.debug = False
