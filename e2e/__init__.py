"""End-to-end test infrastructure for Tailor (local API server, scenarios)."""
