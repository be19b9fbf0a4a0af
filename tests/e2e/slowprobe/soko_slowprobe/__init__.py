"""A soko plugin for the shutdown tests (tests/e2e/test_shutdown.py)."""
