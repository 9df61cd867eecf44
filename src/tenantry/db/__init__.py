"""Storage: engine, sessions, the transaction scope, models and migrations."""
