"""Unit and in-process HTTP tests for the local API server."""
