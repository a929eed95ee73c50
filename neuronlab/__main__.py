"""`python -m neuronlab ...`: the same as the `neuronlab` command."""
import sys

from neuronlab.cli import main

if __name__ == "__main__":
    sys.exit(main())
