"""Session fixtures for the real components live in tests/fixtures/, one module each."""

pytest_plugins = [
    "tests.fixtures.cluster",
    "tests.fixtures.hdfs",
    "tests.fixtures.postgres",
]
