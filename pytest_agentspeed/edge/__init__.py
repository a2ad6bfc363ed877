"""The pytest edge: the only modules that import pytest.

Options, collection, the fixture, the hooks that drive :class:`~pytest_agentspeed.run.bench.Bench`,
the xdist glue and the console lines. Everything they call is plain Python.
"""
