"""`python -m engine.train ...`: the documented command that trains and saves a model with its
card; the trainer itself is engine/training/train.py."""
import sys

from engine.training.train import main

if __name__ == "__main__":
    sys.exit(main())
