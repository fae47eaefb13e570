"""Where the test suite's files are, for test modules at any depth of tests/."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
"""The tests/ folder."""
REFERENCE = TESTS / "reference"
"""Reference values and folders written once by other code (diffusers, thermogen 0.1)."""
ROOT = TESTS.parent
"""The project's root (pyproject.toml, src/, docs/, examples/)."""
