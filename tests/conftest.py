"""Shared pytest configuration. Fixtures live in tests/fixtures/ and are registered here."""

pytest_plugins = [
    "tests.fixtures.azurite",
    "tests.fixtures.emulator",
    "tests.fixtures.devhost",
    "tests.fixtures.connector",
]
