"""`jaxflow VERB --config=FILE [--config.a.b=v ...] --workdir=DIR`: flags -> library call, nothing else.

`main` parses and dispatches (one-line errors, exit status 2 for bad input); `verbs` holds each verb's
flags and its call into the library, which loads only when that verb runs.
"""

from jaxflow.cli.main import USAGE, console_main, main

__all__ = ["USAGE", "console_main", "main"]
