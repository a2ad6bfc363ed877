"""``python -m pytest_agentspeed``: the ``agentspeed`` command."""

from __future__ import annotations

import sys

from pytest_agentspeed.cli import main

sys.exit(main())
