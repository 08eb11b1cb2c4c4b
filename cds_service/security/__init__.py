"""Security: verification of the EHR's JWT."""
