"""`python -m jaxflow.cli VERB ...`: the same as the `jaxflow` console script."""

from jaxflow.cli.main import console_main

console_main()
