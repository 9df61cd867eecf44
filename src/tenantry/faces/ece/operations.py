"""Every operation of the ece face and the catalogue permission (at SYSTEM scope) it needs;
None: any signed-in user. `security.permissions` is computed from this table, and a test
checks that it names exactly the face's routes."""

from __future__ import annotations

OPERATIONS: dict[str, str | None] = {
    "get-current-user": None,
    "update-current-user": None,
    "login": None,
    "logout": None,
    "refresh-token": None,
    "get-authentication-info": None,
    "enable-elevated-permissions": None,
    "disable-elevated-permissions": None,
    "methods": None,
    "get-api-keys": None,
    "create-api-key": None,
    "delete-api-keys": None,
    "get-api-key": None,
    "delete-api-key": None,
    "get-users-api-keys": "system.users.tokens.list",
    "delete-users-api-keys": "system.users.tokens.delete",
    "get-user-api-keys": "system.users.tokens.list",
    "get-user-api-key": "system.users.tokens.list",
    "delete-user-api-keys": "system.users.tokens.delete",
    "delete-user-api-key": "system.users.tokens.delete",
    "get-security-realm-configurations": "system.users.list",
    "get-users": "system.users.list",
    "create-user": "system.users.create",
    "get-user": "system.users.get",
    "update-user": "system.users.update",
    "delete-user": "system.users.delete",
}
