"""Tenantry: one user directory and access-control service, many wire-compatible API faces."""

__version__ = "0.1.0"
