"""Policy section 2: results classified against HD sessions and now (clinical.timing), positive, boundary, decoy."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cds_service.clinical.timing import ResultClass as RC, Session, classify, timing

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=timezone.utc)


def h(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def hd(end_h: float, hours: float = 4.0, **kw) -> Session:
    """A completed HD session that ended ``end_h`` hours ago and lasted ``hours``."""
    return Session(start=h(end_h + hours), end=h(end_h), **kw)


def test_no_sessions_is_current():
    assert classify(h(5), [], NOW) is RC.CURRENT


@pytest.mark.parametrize("offset,expected", [
    (timedelta(minutes=5), RC.CURRENT),            # boundary: 5 min ahead is clock skew, not an error
    (timedelta(minutes=5, seconds=1), RC.FUTURE),
    (timedelta(days=2), RC.FUTURE),
])
def test_future(offset, expected):
    assert classify(NOW + offset, [], NOW) is expected


def test_pre_session_is_superseded():
    t = timing(h(6), [hd(1)], NOW)  # drawn 6 h ago, before the 4 h session that ended 1 h ago
    assert t.cls is RC.PRE_SESSION and t.superseded and not t.usable_acute
    assert t.sessions_since == 1


def test_many_sessions_since_counts_them():
    sessions = [hd(24 * d + 1) for d in (0, 2, 4, 7)]
    t = timing(h(24 * 10), sessions, NOW)
    assert t.cls is RC.PRE_SESSION and t.sessions_since == 4 and t.session == sessions[0]


def test_draw_at_the_session_start_is_pre_session():
    s = hd(1)
    assert classify(s.start - timedelta(seconds=1), [s], NOW) is RC.PRE_SESSION
    assert classify(s.start, [s], NOW) is RC.PRE_SESSION
    assert classify(s.start + timedelta(minutes=1), [s], NOW) is RC.INTRADIALYTIC


def test_coded_pre_dialysis_sample_timed_inside_the_session_is_pre_session():
    s = hd(1)
    assert classify(s.start + timedelta(minutes=3), [s], NOW, coded_pre=True) is RC.PRE_SESSION


def test_intradialytic_of_a_finished_session_is_superseded():
    t = timing(h(3), [hd(1)], NOW)
    assert t.cls is RC.INTRADIALYTIC and t.superseded


def test_intradialytic_of_a_session_in_progress_is_not_superseded_but_not_acute():
    running = Session(start=h(1), end=None, in_progress=True)
    t = timing(h(0.5), [running], NOW)
    assert t.cls is RC.INTRADIALYTIC and not t.superseded and not t.usable_acute


@pytest.mark.parametrize("after,expected", [
    (timedelta(0), RC.EARLY_POST),
    (timedelta(hours=2), RC.EARLY_POST),           # boundary: within 2 h includes 2 h
    (timedelta(hours=2, minutes=1), RC.CURRENT),
])
def test_early_post_window(after, expected):
    s = hd(5)
    assert classify(s.end + after, [s], NOW) is expected


def test_early_post_window_is_a_parameter():
    s = hd(5)
    assert classify(s.end + timedelta(hours=2.5), [s], NOW, early_post_hours=3) is RC.EARLY_POST


def test_coded_post_dialysis_sample_at_the_session_end_is_early_post():
    s = hd(1)
    assert classify(s.end - timedelta(minutes=2), [s], NOW, coded_post=True) is RC.EARLY_POST


def test_early_post_of_an_older_session_then_a_new_session_is_pre_session():
    first, second = hd(30), hd(1)
    assert classify(first.end + timedelta(minutes=30), [first, second], NOW) is RC.PRE_SESSION


@pytest.mark.parametrize("length,expected_exception", [
    (1.5, "short-session"),
    (1.99, "short-session"),
    (2.0, None),   # boundary: a 2 h session is not "under 2 h"
    (4.0, None),
])
def test_short_session_makes_a_pre_session_value_count(length, expected_exception):
    t = timing(h(6), [hd(1, hours=length)], NOW)
    assert t.cls is RC.PRE_SESSION
    assert t.exception == expected_exception
    assert t.usable_acute is (expected_exception is not None)


def test_short_session_does_not_help_when_a_full_session_followed():
    t = timing(h(30), [hd(26, hours=1), hd(1)], NOW)
    assert t.superseded


def test_ecg_change_after_the_session_makes_a_pre_session_value_count():
    t = timing(h(6), [hd(1)], NOW, ecg_change_times=[h(0.5)])
    assert t.cls is RC.PRE_SESSION and t.exception == "ecg-change" and t.usable_acute


def test_ecg_change_before_the_session_ended_does_not_count():
    t = timing(h(6), [hd(1)], NOW, ecg_change_times=[h(2)])
    assert t.superseded


def test_unknown_session_length_is_a_full_session():
    single = Session(start=h(2), end=h(2))  # one performedDateTime
    t = timing(h(6), [single], NOW)
    assert t.superseded


def test_pd_and_crrt_treatments_are_not_sessions():
    for kind in ("PD", "CRRT", "dialysis"):
        assert classify(h(6), [hd(1, kind=kind)], NOW) is RC.CURRENT


def test_current_after_a_session_names_it():
    s = hd(10)
    t = timing(h(3), [s], NOW)
    assert t.cls is RC.CURRENT and t.session == s and not t.superseded and t.usable_acute
