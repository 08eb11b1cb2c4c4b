"""The FHIR client prepares its GETs itself (fhir/client.py ``_prepare``): the URL on the wire must be exactly
the one requests' own preparation gives, for the URLs the service builds and for odd ones."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.fhir.client import wire_url
from cds_service.hooks.prefetch import fetch_url, render_template, token_values
from cds_service.services import SERVICES


def _requests_form(url: str) -> str:
    prep = requests.PreparedRequest()
    prep.prepare_url(url, None)
    return str(prep.url)


TEMPLATE_URLS = [
    fetch_url(base, render_template(key.template, token_values({"userId": "Practitioner/u", "patientId": "p-1"})),
              key, datetime(2026, 1, 15, 12, tzinfo=timezone.utc))
    for base in ("http://127.0.0.1:8080/fhir", "https://fhir.epic.example/api/FHIR/R4")
    for service in SERVICES.values() for key in service.prefetch.values()
]


@pytest.mark.parametrize("url", TEMPLATE_URLS)
def test_template_urls(url):
    assert wire_url(url) == _requests_form(url)


@pytest.mark.parametrize("url", ["HTTPS://Fhir.Example.ORG:8443/R4/Observation?code=a|b&x=%7c", "http://h",
                                 "http://h/?", "http://h?x=1", "http://h/a/../b", "http://h/.well-known/x",
                                 "http://h/a b?c=[d]", "http://h/p?q=%zz"])
def test_odd_urls(url):
    assert wire_url(url) == _requests_form(url)


_CHARS = st.sampled_from(list("abcXYZ019-._~!$&'()*+,;=:@/?|%[]{}\"<>^`#7cCfF"))


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.sampled_from(["http", "https", "HTTP"]), st.sampled_from(["h", "Fhir.Example", "127.0.0.1:8080", "h:443"]),
       st.text(_CHARS, max_size=30))
def test_generated_urls(scheme, host, rest):
    url = f"{scheme}://{host}{rest}"
    try:
        expected = _requests_form(url)
    except requests.exceptions.RequestException:
        return  # requests refuses it; the allowlist refuses far more before any call
    assert wire_url(url) == expected
