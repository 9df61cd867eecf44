"""The request corpus: every route of the unleash face (docs/faces/unleash.md "Endpoints") and
the routes Unleash 8.2 has besides (issue 16), each with every kind of credential and with
valid and invalid input, then sequences (create, change e-mail, sign in with it, log out, use
the old cookie; own password change; PAT lifecycle; deleted user).

It starts from an empty server: the built-in `admin` / `unleash4all` with the Admin root role
and an admin API token (`{token_admin_api}`), nothing else. Later steps use what earlier
answers gave (ids, cookies, PAT secrets; runner.Step.save).

Order matters beyond the variables: Unleash deletes all of a user's sessions when they log
out, when their password is set and when they change it themselves, and keeps at most 5
sessions per user (the oldest go at sign-in), so the admin's cookie is made once and those
events happen only to users made for them. The admin password never changes. Each
password-reset link is asked for once per user (Unleash allows one per user per minute).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from compare.unleash.runner import NO_BODY, Step

ADMIN_PASSWORD = "unleash4all"  # Unleash's documented default; the peer's README
EDITOR_PW = "Editor-Passw0rd!x"
VIEWER_PW = "Viewer-Passw0rd!x"
TARGET_PW = "Target-Passw0rd!1"
SEQ_PW, SEQ_PW2 = "Sequence-Passw0rd!1", "Sequence-Passw0rd!2"
OWN_PW, OWN_PW2 = "Own-Passw0rd!first", "Own-Passw0rd!second"
SESS_PW, SESS_PW2 = "Session-Passw0rd!1", "Session-Passw0rd!2"
ADMIN2_PW = "Second-Admin-Passw0rd!"
ADMIN3_PW = "Third-Admin-Passw0rd!"
STRONG = "Str0ng-Enough!pw"

LOGIN = "/auth/simple/login"
ME = "/api/admin/user"
PATS = "/api/admin/user/tokens"
UA = "/api/admin/user-admin"

# The seven credential kinds of issue 16, in the order each matrix row sends them: refusals
# first, the admin's last (so that what an admin creates is there for what follows).
MATRIX = (
    "none",
    "bad_token",
    "viewer_pat",
    "editor_pat",
    "admin_api",
    "admin_cookie",
    "admin_pat",
)
ADMINS = ("admin_api", "admin_cookie", "admin_pat")


def login(name: str, username: str, password: Any, **kw: Any) -> Step:
    return Step(name, "POST", LOGIN, "none", {"username": username, "password": password}, **kw)


def create(name: str, body: Any, cred: str = "admin_pat", **kw: Any) -> Step:
    return Step(name, "POST", UA, cred, body, **kw)


def user(email: str, role: Any = "Viewer", **fields: Any) -> dict[str, Any]:
    return {"email": email, "rootRole": role, "sendEmail": False, **fields}


def setup() -> Iterator[Step]:
    yield login(
        "setup.login_admin",
        "admin",
        ADMIN_PASSWORD,
        save={"cookie_admin": "cookie:unleash-session", "id_admin": "json:id"},
    )
    yield Step(
        "setup.pat_admin",
        "POST",
        PATS,
        "admin_cookie",
        {"description": "harness admin", "expiresAt": "{expires_ok}"},
        save={"pat_admin": "json:secret"},
    )
    yield create(
        "setup.create_editor",
        user("editor@example.com", "Editor", name="Editor User", password=EDITOR_PW),
        save={"id_editor": "json:id"},
    )
    yield create(
        "setup.create_viewer",
        user("viewer@example.com", "Viewer", name="Viewer User", password=VIEWER_PW),
        save={"id_viewer": "json:id"},
    )
    yield create(
        "setup.create_target",
        user("target@example.com", 3, name="Target User"),
        save={"id_target": "json:id"},
    )
    yield login(
        "setup.login_editor",
        "editor@example.com",
        EDITOR_PW,
        save={"cookie_editor": "cookie:unleash-session"},
    )
    yield Step(
        "setup.pat_editor",
        "POST",
        PATS,
        "editor_cookie",
        {"description": "harness editor", "expiresAt": "{expires_ok}"},
        save={"pat_editor": "json:secret"},
    )
    yield login(
        "setup.login_viewer",
        "viewer@example.com",
        VIEWER_PW,
        save={"cookie_viewer": "cookie:unleash-session"},
    )
    yield Step(
        "setup.pat_viewer",
        "POST",
        PATS,
        "viewer_cookie",
        {"description": "harness viewer", "expiresAt": "{expires_ok}"},
        save={"pat_viewer": "json:secret"},
    )


def credentials() -> Iterator[Step]:
    """GET /api/admin/user with every way of presenting (or not) a credential."""
    for cred in (
        *MATRIX,
        "admin_api_bearer",
        "editor_cookie",
        "viewer_cookie",
        "bad_cookie",
        "empty_auth",
        "bearer_only",
        "bearer:pat_admin",
        "raw:*:*.0000000000000000000000000000000000000000000000000000000000000000",
        "raw:user:00000000000000000000000000000000000000000000000000000000",
    ):
        label = {
            "bearer:pat_admin": "admin_pat_bearer",
            "raw:*:*.0000000000000000000000000000000000000000000000000000000000000000": (
                "unknown_api_token"
            ),
            "raw:user:00000000000000000000000000000000000000000000000000000000": ("unknown_pat"),
        }.get(cred, cred)
        yield Step(f"me.get.{label}", "GET", ME, cred)
    yield Step(
        "me.get.header_beats_cookie",
        "GET",
        ME,
        "bad_token",
        headers={"Cookie": "unleash-session={cookie_admin}"},
        note="a bad Authorization header with a good cookie",
    )


READS: tuple[tuple[str, str], ...] = (
    ("me.get", ME),
    ("me.profile", f"{ME}/profile"),
    ("me.roles", f"{ME}/roles?projectId=default"),
    ("pats.list", PATS),
    ("user_admin.list", UA),
    ("user_admin.get", f"{UA}/{{id_viewer}}"),
    ("user_admin.search", f"{UA}/search?q=view"),
    ("user_admin.permissions", f"{UA}/{{id_viewer}}/permissions"),
    ("user_admin.admin_count", f"{UA}/admin-count"),
    ("user_admin.access", f"{UA}/access"),
    ("user_admin.inactive", f"{UA}/inactive"),
)


def reads() -> Iterator[Step]:
    for name, path in READS:
        for cred in MATRIX:
            if name == "me.get":
                continue  # credentials() sent these
            yield Step(f"{name}.{cred}", "GET", path, cred)
    for name, path in READS:
        yield Step(f"head.{name}", "HEAD", path, "admin_pat")
    for name, path in READS:
        base, _, query = path.partition("?")
        yield Step(f"slash.{name}", "GET", f"{base}/" + (f"?{query}" if query else ""))
    for cred in ("editor_cookie", "viewer_cookie", "bad_cookie"):
        yield Step(f"user_admin.list.{cred}", "GET", UA, cred)
        yield Step(f"me.profile.{cred}", "GET", f"{ME}/profile", cred)
        yield Step(f"pats.list.{cred}", "GET", PATS, cred)


def writes() -> Iterator[Step]:
    """Each write route, with each credential of MATRIX, with valid and with invalid input."""
    for cred in MATRIX:
        save = {f"id_made_{cred}": "json:id"} if cred in ADMINS else {}
        yield create(
            f"user_admin.create.valid.{cred}",
            user(f"made-by-{cred.replace('_', '-')}@example.com", "Viewer"),
            cred,
            save=save,
        )
        yield create(f"user_admin.create.invalid.{cred}", user("not-an-email"), cred)
    for cred in MATRIX:
        yield Step(
            f"user_admin.update.valid.{cred}",
            "PUT",
            f"{UA}/{{id_target}}",
            cred,
            {"name": f"Target renamed by {cred}"},
        )
        yield Step(
            f"user_admin.update.invalid.{cred}",
            "PUT",
            f"{UA}/{{id_target}}",
            cred,
            {"rootRole": "Superuser"},
        )
    for cred in MATRIX:
        yield Step(
            f"user_admin.set_password.valid.{cred}",
            "POST",
            f"{UA}/{{id_target}}/change-password",
            cred,
            {"password": TARGET_PW},
        )
        yield Step(
            f"user_admin.set_password.invalid.{cred}",
            "POST",
            f"{UA}/{{id_target}}/change-password",
            cred,
            {"password": "short"},
        )
    for cred in MATRIX:
        yield Step(
            f"user_admin.validate_password.valid.{cred}",
            "POST",
            f"{UA}/validate-password",
            cred,
            {"password": STRONG},
        )
        yield Step(
            f"user_admin.validate_password.invalid.{cred}",
            "POST",
            f"{UA}/validate-password",
            cred,
            {"password": "weakpassword"},
        )
    receivers = {
        "admin_api": "target@example.com",
        "admin_cookie": "viewer@example.com",
        "admin_pat": "editor@example.com",
    }
    for cred in MATRIX:
        yield Step(
            f"user_admin.reset_password.valid.{cred}",
            "POST",
            f"{UA}/reset-password",
            cred,
            {"id": receivers.get(cred, "target@example.com")},
            note="one reset link per user (Unleash: one a minute); refusals come first",
        )
        yield Step(
            f"user_admin.reset_password.invalid.{cred}",
            "POST",
            f"{UA}/reset-password",
            cred,
            {"id": "nobody@example.com"},
        )
    for cred in MATRIX:
        victim = cred if cred in ADMINS else "admin_pat"
        yield Step(f"user_admin.delete.valid.{cred}", "DELETE", f"{UA}/{{id_made_{victim}}}", cred)
        yield Step(f"user_admin.delete.invalid.{cred}", "DELETE", f"{UA}/999999", cred)
    for cred in MATRIX:
        yield Step(
            f"pats.create.valid.{cred}",
            "POST",
            PATS,
            cred,
            {"description": f"matrix {cred}", "expiresAt": "{expires_ok}"},
            save={f"id_pat_{cred}": "json:id"},
        )
        yield Step(f"pats.create.invalid.{cred}", "POST", PATS, cred, {"description": "no expiry"})
    for cred in MATRIX:
        yield Step(f"pats.delete.valid.{cred}", "DELETE", f"{PATS}/{{id_pat_{cred}}}", cred)
        yield Step(f"pats.delete.invalid.{cred}", "DELETE", f"{PATS}/999999", cred)
    for cred in MATRIX:
        yield Step(f"splash.valid.{cred}", "POST", "/api/admin/splash/environment", cred)
    for cred in MATRIX:
        yield Step(
            f"feedback.create.valid.{cred}",
            "POST",
            "/api/admin/feedback",
            cred,
            {"feedbackId": "pnps", "neverShow": False},
        )
        yield Step(
            f"feedback.create.invalid.{cred}",
            "POST",
            "/api/admin/feedback",
            cred,
            {"neverShow": True},
        )
    for cred in MATRIX:
        yield Step(
            f"feedback.update.valid.{cred}",
            "PUT",
            "/api/admin/feedback/pnps",
            cred,
            {"neverShow": True},
        )
        yield Step(
            f"feedback.update.invalid.{cred}",
            "PUT",
            "/api/admin/feedback/pnps",
            cred,
            {"neverShow": "yes"},
        )
    for cred in MATRIX:
        yield Step(
            f"me.change_password.invalid.{cred}",
            "POST",
            f"{ME}/change-password",
            cred,
            {"password": STRONG, "confirmPassword": STRONG + "x", "oldPassword": "whatever"},
            note="new password and its confirmation differ",
        )
    for cred in ("editor_cookie", "viewer_cookie", "bad_cookie"):
        yield create(f"user_admin.create.valid.{cred}", user(f"{cred}@example.com"), cred)
        yield Step(
            f"user_admin.update.valid.{cred}", "PUT", f"{UA}/{{id_target}}", cred, {"name": "x"}
        )


def create_variants() -> Iterator[Step]:
    yield create("user_admin.create.duplicate_email", user("viewer@example.com"))
    yield create("user_admin.create.duplicate_email_other_case", user("VIEWER@example.com"))
    yield create("user_admin.create.missing_root_role", {"email": "x@example.com"})
    yield create("user_admin.create.unknown_root_role", user("y@example.com", "Superuser"))
    yield create("user_admin.create.project_role_owner", user("owner@example.com", "Owner"))
    yield create("user_admin.create.root_role_number_99", user("r99@example.com", 99))
    yield create("user_admin.create.root_role_numeric_string", user("r2s@example.com", "2"))
    yield create(
        "user_admin.create.root_role_number_2",
        user("editor2@example.com", 2, name="Second Editor"),
    )
    yield create("user_admin.create.extra_property", {**user("z@example.com"), "bogus": 1})
    yield create("user_admin.create.no_email_no_username", {"rootRole": "Viewer"})
    yield create(
        "user_admin.create.username_only",
        {"username": "plainuser", "rootRole": "Viewer"},
        save={"id_plain": "json:id"},
    )
    yield create("user_admin.create.duplicate_username", {"username": "plainuser", "rootRole": 3})
    yield create(
        "user_admin.create.duplicate_username_other_case", {"username": "PLAINUSER", "rootRole": 3}
    )
    yield create(
        "user_admin.create.username_and_email",
        {"username": "both", "email": "both@example.com", "name": "Both", "rootRole": "Viewer"},
    )
    yield create("user_admin.create.name_not_string", user("n5@example.com", name=5))
    yield create("user_admin.create.email_not_string", {"email": 5, "rootRole": "Viewer"})
    yield create(
        "user_admin.create.weak_password",
        user("weak@example.com", password="weak"),
        note="Unleash does not check a password given at creation",
    )
    yield create(
        "user_admin.create.send_email_true", {**user("mail@example.com"), "sendEmail": True}
    )
    yield create("user_admin.create.array_body", [1, 2])
    yield Step(
        "user_admin.create.malformed_json",
        "POST",
        UA,
        raw=b'{"email": ',
        content_type="application/json",
    )
    yield Step("user_admin.create.text_plain", "POST", UA, raw=b"hello", content_type="text/plain")
    yield Step("user_admin.create.empty_body", "POST", UA, raw=b"", content_type=None)
    yield create(
        "user_admin.create.admin2",
        user("admin2@example.com", "Admin", name="Second Admin", password=ADMIN2_PW),
        save={"id_admin2": "json:id"},
    )
    yield create(
        "user_admin.create.admin3",
        user("admin3@example.com", 1, name="Third Admin", password=ADMIN3_PW),
        save={"id_admin3": "json:id"},
    )


def read_variants() -> Iterator[Step]:
    for label, path in (
        ("unknown", "999999"),
        ("not_a_number", "abc"),
        ("negative", "-1"),
        ("zero", "0"),
        ("exponent", "1e3"),
    ):
        yield Step(f"user_admin.get.{label}", "GET", f"{UA}/{path}")
    yield Step("user_admin.get.username_only_user", "GET", f"{UA}/{{id_plain}}")
    yield Step("user_admin.get.admin", "GET", f"{UA}/{{id_admin}}")
    for label, query in (
        ("absent", ""),
        ("empty", "?q="),
        ("one_char", "?q=a"),
        ("prefix_ad", "?q=ad"),
        ("upper_case", "?q=ADM"),
        ("domain_substring", "?q=example.com"),
        ("name", "?q=Viewer%20User"),
        ("name_prefix", "?q=Targ"),
        ("no_match", "?q=zzzz"),
        ("email_prefix", "?q=editor@"),
    ):
        yield Step(f"user_admin.search.{label}", "GET", f"{UA}/search{query}")
    yield Step(
        "user_admin.permissions.project", "GET", f"{UA}/{{id_viewer}}/permissions?project=default"
    )
    yield Step("user_admin.permissions.editor", "GET", f"{UA}/{{id_editor}}/permissions")
    yield Step("user_admin.permissions.unknown", "GET", f"{UA}/999999/permissions")
    yield Step("user_admin.permissions.not_a_number", "GET", f"{UA}/abc/permissions")
    yield Step("me.roles.no_project", "GET", f"{ME}/roles")
    yield Step("me.roles.unknown_project", "GET", f"{ME}/roles?projectId=nope")
    yield Step("me.roles.viewer", "GET", f"{ME}/roles?projectId=default", "viewer_pat")
    yield Step("me.profile.viewer_cookie_again", "GET", f"{ME}/profile", "viewer_cookie")


def update_variants() -> Iterator[Step]:
    target = f"{UA}/{{id_target}}"
    yield Step("user_admin.update.to_editor", "PUT", target, body={"rootRole": "Editor"})
    yield Step("user_admin.get.target_editor", "GET", target)
    yield Step("user_admin.update.to_viewer_by_id", "PUT", target, body={"rootRole": 3})
    yield Step("user_admin.update.project_role", "PUT", target, body={"rootRole": "Owner"})
    yield Step(
        "user_admin.update.unknown_field", "PUT", target, body={"name": "Target", "bogus": 1}
    )
    yield Step("user_admin.update.bad_email", "PUT", target, body={"email": "not-an-email"})
    yield Step("user_admin.update.taken_email", "PUT", target, body={"email": "viewer@example.com"})
    yield Step("user_admin.update.empty_body", "PUT", target, body={})
    yield Step("user_admin.update.name_not_string", "PUT", target, body={"name": 5})
    yield Step("user_admin.update.unknown_user", "PUT", f"{UA}/999999", body={"name": "x"})
    yield Step("user_admin.update.not_a_number", "PUT", f"{UA}/abc", body={"name": "x"})
    yield Step(
        "user_admin.update.self_same_root_role", "PUT", f"{UA}/{{id_admin}}", body={"rootRole": 1}
    )
    yield Step("user_admin.update.self_name", "PUT", f"{UA}/{{id_admin}}", body={"name": "Admin"})
    yield Step(
        "user_admin.set_password.unknown_user",
        "POST",
        f"{UA}/999999/change-password",
        body={"password": STRONG},
    )
    yield Step(
        "user_admin.set_password.missing",
        "POST",
        f"{UA}/{{id_target}}/change-password",
        body={},
    )
    yield Step(
        "user_admin.set_password.no_digit",
        "POST",
        f"{UA}/{{id_target}}/change-password",
        body={"password": "No-Digits-Here!x"},
    )
    yield Step("user_admin.validate_password.missing", "POST", f"{UA}/validate-password", body={})
    yield Step(
        "user_admin.validate_password.no_symbol",
        "POST",
        f"{UA}/validate-password",
        body={"password": "NoSymbol1234abc"},
    )
    yield Step("user_admin.reset_password.missing_id", "POST", f"{UA}/reset-password", body={})
    yield Step("user_admin.delete.not_a_number", "DELETE", f"{UA}/abc")


def after_writes() -> Iterator[Step]:
    yield login("login.target_set_password", "target@example.com", TARGET_PW)
    yield Step("user_admin.get.target_after_writes", "GET", f"{UA}/{{id_target}}")
    yield Step("user_admin.list.after_writes", "GET", UA)


def pat_variants() -> Iterator[Step]:
    def pat(name: str, body: Any, **kw: Any) -> Step:
        return Step(f"pats.create.{name}", "POST", PATS, "admin_pat", body, **kw)

    yield pat(
        "lifecycle",
        {"description": "lifecycle", "expiresAt": "{expires_ok}"},
        save={"id_pat_life": "json:id", "pat_life": "json:secret"},
    )
    yield Step("pats.list.after_create", "GET", PATS)
    yield Step("pats.use_new", "GET", ME, "token:pat_life")
    yield pat("duplicate_description", {"description": "lifecycle", "expiresAt": "{expires_ok}"})
    yield pat("past", {"description": "past", "expiresAt": "2020-01-01T00:00:00.000Z"})
    yield pat("date_only", {"description": "date only", "expiresAt": "2030-01-01"})
    yield pat("not_a_date", {"description": "not a date", "expiresAt": "tomorrow"})
    yield pat(
        "beyond_ten_years",
        {"description": "far", "expiresAt": "{expires_far}"},
        note="Unleash takes any future date; Tenantry caps PATs at 3650 days",
    )
    yield pat("missing_description", {"expiresAt": "{expires_ok}"})
    yield pat("empty_description", {"description": "", "expiresAt": "{expires_ok}"})
    yield pat("long_description", {"description": "d" * 300, "expiresAt": "{expires_ok}"})
    yield pat(
        "extra_property", {"description": "extra", "expiresAt": "{expires_ok}", "bogus": True}
    )
    yield pat("description_not_string", {"description": 5, "expiresAt": "{expires_ok}"})
    yield Step("pats.delete.lifecycle", "DELETE", f"{PATS}/{{id_pat_life}}")
    yield Step("pats.use_deleted", "GET", ME, "token:pat_life")
    yield Step("pats.delete.lifecycle_again", "DELETE", f"{PATS}/{{id_pat_life}}")
    yield Step("pats.delete.not_a_number", "DELETE", f"{PATS}/abc")
    yield Step("pats.list.after_delete", "GET", PATS)


def login_variants() -> Iterator[Step]:
    yield login("login.wrong_password", "admin", "not-the-password")
    yield login("login.unknown_user", "nobody", "whatever-Passw0rd!")
    yield login("login.unknown_email", "nobody@example.com", "whatever-Passw0rd!")
    yield Step("login.missing_password", "POST", LOGIN, "none", {"username": "admin"})
    yield Step(
        "login.extra_field",
        "POST",
        LOGIN,
        "none",
        {"username": "admin", "password": ADMIN_PASSWORD, "remember": True},
    )
    yield Step("login.empty_object", "POST", LOGIN, "none", {})
    yield Step(
        "login.password_not_string", "POST", LOGIN, "none", {"username": "admin", "password": 5}
    )
    yield Step("login.malformed_json", "POST", LOGIN, "none", raw=b'{"username": ')
    yield Step(
        "login.text_plain",
        "POST",
        LOGIN,
        "none",
        raw=b"admin:unleash4all",
        content_type="text/plain",
    )
    yield login("login.viewer_upper_case_email", "VIEWER@example.com", VIEWER_PW)
    yield login("login.viewer_name_not_address", "viewer", VIEWER_PW)
    yield login("login.username_only_user_no_password", "plainuser", "Whatever-Passw0rd!")
    yield Step("login.get", "GET", LOGIN, "none")
    yield Step("login.head", "HEAD", LOGIN, "none")
    yield Step(
        "login.trailing_slash",
        "POST",
        f"{LOGIN}/",
        "none",
        {"username": "viewer@example.com", "password": VIEWER_PW},
    )
    yield login("login.admin_upper_case", "ADMIN", ADMIN_PASSWORD)


def wrong_methods() -> Iterator[Step]:
    for method, path in (
        ("DELETE", ME),
        ("PUT", f"{ME}/profile"),
        ("POST", f"{ME}/roles?projectId=default"),
        ("PATCH", PATS),
        ("PUT", f"{PATS}/1"),
        ("PATCH", f"{UA}/{{id_target}}"),
        ("DELETE", UA),
        ("PUT", f"{UA}/search"),
        ("GET", f"{UA}/validate-password"),
        ("GET", f"{UA}/{{id_target}}/change-password"),
        ("DELETE", "/api/admin/splash/environment"),
        ("GET", "/api/admin/feedback"),
        ("PUT", "/api/admin/feedback"),
        ("GET", f"{UA}/reset-password"),
    ):
        label = path.split("?")[0].removeprefix("/api/admin/").replace("/", "_")
        label = label.replace("{id_target}", "id").replace("-", "_")
        yield Step(f"method.{method.lower()}.{label}", method, path)
    yield Step("method.put.login", "PUT", LOGIN, "none", {"username": "admin", "password": "x"})
    yield Step("route.unknown_admin", "GET", "/api/admin/nope")
    yield Step("route.unknown_under_user", "GET", f"{UA}/{{id_target}}/nope")
    yield Step("route.logout_get", "GET", "/logout", "none")


def sequences() -> Iterator[Step]:
    seq = f"{UA}/{{id_seq}}"
    yield create(
        "seq.create",
        user("seq.old@example.com", "Viewer", name="Seq User", password=SEQ_PW),
        save={"id_seq": "json:id"},
    )
    yield login(
        "seq.login_old_address",
        "seq.old@example.com",
        SEQ_PW,
        save={"cookie_seq_a": "cookie:unleash-session"},
    )
    yield Step("seq.me_a", "GET", ME, "cookie:cookie_seq_a")
    yield Step("seq.change_email", "PUT", seq, body={"email": "seq.new@example.com"})
    yield Step("seq.get_after_change", "GET", seq)
    yield Step("seq.me_a_after_change", "GET", ME, "cookie:cookie_seq_a")
    yield login("seq.login_old_address_after_change", "seq.old@example.com", SEQ_PW)
    yield login(
        "seq.login_new_address",
        "seq.new@example.com",
        SEQ_PW,
        save={"cookie_seq_b": "cookie:unleash-session"},
    )
    yield Step("seq.me_b", "GET", ME, "cookie:cookie_seq_b")
    yield Step("seq.search_new_address", "GET", f"{UA}/search?q=seq.new")
    yield Step("seq.search_old_address", "GET", f"{UA}/search?q=seq.old")
    yield create("seq.create_with_old_address", user("seq.old@example.com"))
    yield Step("seq.logout_b", "POST", "/logout", "cookie:cookie_seq_b")
    yield Step("seq.me_b_after_logout", "GET", ME, "cookie:cookie_seq_b")
    yield Step("seq.me_a_after_logout", "GET", ME, "cookie:cookie_seq_a")
    yield Step("seq.logout_dead_cookie", "POST", "/logout", "cookie:cookie_seq_b")
    yield Step("seq.logout_no_credential", "POST", "/logout", "none")
    yield Step("seq.logout_trailing_slash", "POST", "/logout/", "none")
    yield login(
        "seq.login_again",
        "seq.new@example.com",
        SEQ_PW,
        save={"cookie_seq_c": "cookie:unleash-session"},
    )
    yield Step(
        "seq.admin_sets_password", "POST", f"{seq}/change-password", body={"password": SEQ_PW2}
    )
    yield Step("seq.me_c_after_password_set", "GET", ME, "cookie:cookie_seq_c")
    yield login("seq.login_old_password", "seq.new@example.com", SEQ_PW)
    yield login(
        "seq.login_new_password",
        "seq.new@example.com",
        SEQ_PW2,
        save={"cookie_seq_d": "cookie:unleash-session"},
    )
    yield Step(
        "seq.pat_create",
        "POST",
        PATS,
        "cookie:cookie_seq_d",
        {"description": "seq", "expiresAt": "{expires_ok}"},
        save={"pat_seq": "json:secret"},
    )
    yield Step("seq.me_pat", "GET", ME, "token:pat_seq")
    yield Step("seq.delete_user", "DELETE", seq)
    yield Step("seq.me_pat_after_delete", "GET", ME, "token:pat_seq")
    yield Step("seq.me_d_after_delete", "GET", ME, "cookie:cookie_seq_d")
    yield login("seq.login_after_delete", "seq.new@example.com", SEQ_PW2)
    yield Step("seq.get_deleted", "GET", seq)
    yield Step("seq.delete_deleted", "DELETE", seq)


def sessions() -> Iterator[Step]:
    """Log out, a password set by an administrator, a deleted user: what each does to the
    user's sessions and PATs (a user whose address does not change, so that this holds
    whatever the e-mail change above does)."""
    yield create(
        "sess.create",
        user("sess@example.com", name="Session User", password=SESS_PW),
        save={"id_sess": "json:id"},
    )
    for s in ("a", "b"):
        yield login(
            f"sess.login_{s}",
            "sess@example.com",
            SESS_PW,
            save={f"cookie_sess_{s}": "cookie:unleash-session"},
        )
    yield Step("sess.logout_a", "POST", "/logout", "cookie:cookie_sess_a")
    yield Step("sess.me_a_after_logout", "GET", ME, "cookie:cookie_sess_a")
    yield Step("sess.me_b_after_logout", "GET", ME, "cookie:cookie_sess_b")
    yield login(
        "sess.login_c",
        "sess@example.com",
        SESS_PW,
        save={"cookie_sess_c": "cookie:unleash-session"},
    )
    yield Step(
        "sess.pat_create",
        "POST",
        PATS,
        "cookie:cookie_sess_c",
        {"description": "sess", "expiresAt": "{expires_ok}"},
        save={"pat_sess": "json:secret"},
    )
    yield Step(
        "sess.admin_sets_password",
        "POST",
        f"{UA}/{{id_sess}}/change-password",
        body={"password": SESS_PW2},
    )
    yield Step("sess.me_c_after_password_set", "GET", ME, "cookie:cookie_sess_c")
    yield Step("sess.me_pat_after_password_set", "GET", ME, "token:pat_sess")
    yield Step("sess.delete_user", "DELETE", f"{UA}/{{id_sess}}")
    yield Step("sess.me_pat_after_delete", "GET", ME, "token:pat_sess")


def own_password() -> Iterator[Step]:
    def change(name: str, cred: str, body: Any) -> Step:
        return Step(f"own.{name}", "POST", f"{ME}/change-password", cred, body)

    yield create("own.create", user("own@example.com", name="Own User", password=OWN_PW), save={})
    yield login(
        "own.login_a", "own@example.com", OWN_PW, save={"cookie_own_a": "cookie:unleash-session"}
    )
    yield login(
        "own.login_b", "own@example.com", OWN_PW, save={"cookie_own_b": "cookie:unleash-session"}
    )
    a = "cookie:cookie_own_a"
    yield change(
        "wrong_old_password",
        a,
        {"password": OWN_PW2, "confirmPassword": OWN_PW2, "oldPassword": "Wrong-Passw0rd!0"},
    )
    yield change("missing_old_password", a, {"password": OWN_PW2, "confirmPassword": OWN_PW2})
    yield change(
        "weak_new_password",
        a,
        {"password": "weak", "confirmPassword": "weak", "oldPassword": OWN_PW},
    )
    yield change(
        "valid", a, {"password": OWN_PW2, "confirmPassword": OWN_PW2, "oldPassword": OWN_PW}
    )
    yield Step("own.me_a_after_change", "GET", ME, a)
    yield Step("own.me_b_after_change", "GET", ME, "cookie:cookie_own_b")
    yield login("own.login_old_password", "own@example.com", OWN_PW)
    yield login("own.login_new_password", "own@example.com", OWN_PW2)
    yield change(
        "back_to_previous",
        a,
        {"password": OWN_PW, "confirmPassword": OWN_PW, "oldPassword": OWN_PW2},
    )
    yield change(
        "extra_property",
        a,
        {"password": OWN_PW, "confirmPassword": OWN_PW, "oldPassword": OWN_PW2, "x": 1},
    )
    yield Step(
        "own.csrf_no_content_type",
        "POST",
        "/api/admin/splash/csrf",
        a,
        browser=False,
        note="a state change by cookie alone, without Content-Type (what a cross-site form sends)",
    )


def self_service() -> Iterator[Step]:
    """Admins acting on themselves: last, as Unleash lets an admin demote or delete
    themselves (separate admins, so that the main admin keeps working)."""
    yield login(
        "self.login_admin2",
        "admin2@example.com",
        ADMIN2_PW,
        save={"cookie_admin2": "cookie:unleash-session"},
    )
    yield Step(
        "self.admin2_same_root_role",
        "PUT",
        f"{UA}/{{id_admin2}}",
        "cookie:cookie_admin2",
        {"rootRole": "Admin"},
    )
    yield Step(
        "self.admin2_demotes_self",
        "PUT",
        f"{UA}/{{id_admin2}}",
        "cookie:cookie_admin2",
        {"rootRole": "Editor"},
    )
    yield Step("self.admin2_after_demotion", "GET", UA, "cookie:cookie_admin2")
    yield login(
        "self.login_admin3",
        "admin3@example.com",
        ADMIN3_PW,
        save={"cookie_admin3": "cookie:unleash-session"},
    )
    yield Step("self.admin3_deletes_self", "DELETE", f"{UA}/{{id_admin3}}", "cookie:cookie_admin3")
    yield Step("self.admin3_after_delete", "GET", ME, "cookie:cookie_admin3")
    yield Step("self.final_list", "GET", UA, "admin_api")
    yield Step("self.final_admin_count", "GET", f"{UA}/admin-count", "admin_pat")
    yield Step("self.final_me", "GET", ME, "admin_cookie")


def build() -> list[Step]:
    steps = [
        *setup(),
        *credentials(),
        *reads(),
        *create_variants(),
        *read_variants(),
        *update_variants(),
        *pat_variants(),
        *login_variants(),
        *wrong_methods(),
        *writes(),
        *after_writes(),
        *sequences(),
        *sessions(),
        *own_password(),
        *self_service(),
    ]
    names = [s.name for s in steps]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate step names: {sorted(duplicates)}")
    for s in steps:
        if s.body is not NO_BODY and s.raw is not None:
            raise ValueError(f"{s.name}: body and raw")
    return steps


CORPUS = build()
