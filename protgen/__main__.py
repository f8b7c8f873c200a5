"""``python -m protgen`` (and ``torchrun -m protgen``) runs the command-line interface."""

from protgen.cli.main import main

if __name__ == "__main__":
    main()
