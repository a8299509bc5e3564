"""CPython's own test suites run against workhorse: see ``conftest.py``."""
