"""Training: the Trainer (train.py), photo and digit augmentation, a job run in its own process
(worker.py), the job queue and its records (jobs.py), and fine-tuning on a class's drawings."""
