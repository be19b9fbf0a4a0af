"""`python -m kernel` is `soko`."""

from kernel.cli import main

main()
