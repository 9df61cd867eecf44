"""Live comparison harnesses: Tenantry's faces against the real servers they imitate."""
