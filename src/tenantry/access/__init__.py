"""Access: the role catalogue, role bindings, the permission engine and tokens."""
