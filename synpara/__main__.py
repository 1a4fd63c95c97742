"""``python -m synpara`` is the same as the ``synpara`` command."""

from synpara.cli import main

main()
