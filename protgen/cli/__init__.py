"""The command-line interface: parses flags into config dataclasses and calls library functions.

Owns: main (the ``protgen`` entry point) and one module per subcommand. May import every stage.
"""
