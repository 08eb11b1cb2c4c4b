"""CDS Hooks protocol: request validation, prefetch resolution, card and response building, feedback."""
