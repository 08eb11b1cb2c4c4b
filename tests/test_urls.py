"""Outbound allowlist basics (the security tests hold the full attack matrix)."""
from __future__ import annotations

import pytest

from cds_service.fhir.urls import Allowlist, UrlRefused, parse_base


def test_http_allowed_only_for_loopback():
    allow = Allowlist(["http://127.0.0.1:8090/fhir", "http://fhir.example.org/r4", "https://ehr.example.org/fhir"])
    assert allow.allows("http://127.0.0.1:8090/fhir/Patient/1")
    assert not allow.allows("http://fhir.example.org/r4/Patient/1")  # non-loopback http entry was ignored
    assert allow.allows("https://ehr.example.org/fhir/Observation?code=x")
    assert not allow.allows("http://ehr.example.org/fhir/Patient/1")  # scheme must match


def test_path_prefix_is_matched_on_segment_boundaries():
    allow = Allowlist(["https://ehr.example.org/fhir"])
    assert allow.allows("https://ehr.example.org/fhir")
    assert not allow.allows("https://ehr.example.org/fhir-other/Patient/1")
    assert not allow.allows("https://ehr.example.org:8443/fhir/Patient/1")


@pytest.mark.parametrize("url", ["https://allowed.example@evil.example/", "ftp://x/", "javascript:alert(1)", "",
                                 "https://ehr.example.org/fhir/../admin"])
def test_refused_shapes(url):
    with pytest.raises(UrlRefused):
        parse_base(url)


@pytest.mark.parametrize("char", ["\x00", "\x1f", " ", "\x7f", "\x80", "é", "\u2028", "\ud800", "\U0001f600", "\\"])
def test_refused_characters_anywhere_in_a_url(char):
    for url in (f"{char}https://fhir.example/r4", f"https://fhir.exa{char}mple/r4", f"https://fhir.example/r4?q={char}"):
        with pytest.raises(UrlRefused):
            parse_base(url)
