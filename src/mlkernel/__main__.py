"""``python -m mlkernel`` is ``mlk``."""

from mlkernel.cli.main import entry

entry()
