"""API faces: each renders the one directory in the dialect of a public API."""
