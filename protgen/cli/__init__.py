"""The command-line interface: parses flags into config dataclasses and calls library functions.

Owns: main (the ``protgen`` entry point), threads (--threads), data, train, sample, eval, inspect
(one module per subcommand).
May import: geometry, data, method, network, training, sampling, evaluation.
"""
