"""Tenantry's own API (/tenantry/v1): what no vendor face covers."""
