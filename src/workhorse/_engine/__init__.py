"""The task engine behind every pool and executor (see ``_core.py`` for the data flow)."""
