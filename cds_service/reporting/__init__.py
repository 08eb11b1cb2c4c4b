"""Reports over the feedback store (cds-service feedback report)."""
