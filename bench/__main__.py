"""``python -m bench`` is ``gptoss``."""

from bench.cli import main

if __name__ == "__main__":
    main(prog_name="gptoss")
