"""The rule matrix: each security rule through every face (see conftest.py for how)."""
