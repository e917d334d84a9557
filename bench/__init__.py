"""Benchmark harness: the service against a minimal FastAPI baseline, on SQLite and PostgreSQL.

Run it with ``make bench`` (or ``.venv/bin/python -m bench.run --help`` for the flags). The
scenarios are declared in :mod:`bench.scenarios`, the data they need is seeded by
:mod:`bench.fixtures`; a new feature adds to those two lists and nothing else.
"""
