"""Directory: users, organizations, workspaces, deployments, teams, invites, feature flags."""
