"""The web pages Unleash's paths outside /api lead to.

Unleash answers every GET outside /api that no route serves (its sign-in page
`/auth/simple/login`, `/signed-out` after `POST /logout`, ...) with its web client's
`index.html`. Tenantry has no Unleash web client: the same paths answer this page (200,
`text/html`), which says where to sign in. It is static: nothing of the request is echoed."""

from __future__ import annotations

import html

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tenantry</title>
</head>
<body>
<h1>Tenantry</h1>
<p>This server speaks Unleash's admin user API. Sign in with
<code>POST /auth/simple/login</code> and a JSON body
<code>{"username": ..., "password": ...}</code>; sign out with <code>POST /logout</code>.</p>
</body>
</html>
"""

# Express's own answer (finalhandler) to a method no route serves outside /api.
NO_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Error</title>
</head>
<body>
<pre>Cannot {method} {path}</pre>
</body>
</html>
"""
NO_PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'",
    "x-content-type-options": "nosniff",
}


def page() -> str:
    return PAGE


def no_page(method: str, path: str) -> str:
    return NO_PAGE.format(method=html.escape(method), path=html.escape(path))
