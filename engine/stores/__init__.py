"""What is kept on disk: models (safetensors + cards, the registry), projects and class sessions
(SQLite through db.py), all written whole or not at all (files.py)."""
