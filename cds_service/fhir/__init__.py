"""FHIR access: HTTP client (session, auth, deadline, paging, allowlist) and lenient parsing."""
