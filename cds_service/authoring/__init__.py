"""Tools for the informaticists who own the card files (linter, CLI)."""
