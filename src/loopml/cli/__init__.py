"""The ``loopml`` command: thin Typer wrappers that parse, call a library layer, and print."""
