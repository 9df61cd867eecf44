"""/ServiceProviderConfig, /ResourceTypes and /Schemas, read by scim2-models."""

from __future__ import annotations

from scim2_models import Context, ResourceType, Schema, ServiceProviderConfig

from tests.faces.scim.conftest import ENTERPRISE, GROUP_SCHEMA, USER_SCHEMA, Idp, assert_scim_error

OUT = Context.RESOURCE_QUERY_RESPONSE


async def test_discovery_documents(idp: Idp) -> None:
    spc = ServiceProviderConfig.model_validate((await idp.get("/ServiceProviderConfig")).json())
    assert spc.patch is not None and spc.patch.supported
    assert spc.etag is not None and spc.etag.supported
    assert spc.bulk is not None and spc.bulk.supported
    # the face's body limit (64 KiB in the tests' settings) and the operations' limit
    assert (spc.bulk.max_operations, spc.bulk.max_payload_size) == (1000, 64 * 1024)
    assert spc.sort is not None and spc.sort.supported
    types = (await idp.get("/ResourceTypes")).json()
    found = {t["id"]: ResourceType.model_validate(t, scim_ctx=OUT) for t in types["Resources"]}
    assert set(found) == {"User", "Group"} and types["totalResults"] == 2
    assert found["User"].schema_ == USER_SCHEMA
    assert [e.schema_ for e in found["User"].schema_extensions or []] == [ENTERPRISE]
    assert (await idp.get("/ResourceTypes/User")).json()["endpoint"] == "/Users"
    schemas = (await idp.get("/Schemas")).json()
    ids = [Schema.model_validate(s, scim_ctx=OUT).id for s in schemas["Resources"]]
    assert ids == [USER_SCHEMA, ENTERPRISE, GROUP_SCHEMA]
    user = (await idp.get(f"/Schemas/{USER_SCHEMA}")).json()
    names = {a["name"] for a in user["attributes"]}
    assert {"userName", "name", "emails", "active", "displayName"} <= names
    assert "password" not in names  # not served, so not announced
    groups = next(a for a in user["attributes"] if a["name"] == "groups")
    assert (groups["mutability"], groups["multiValued"]) == ("readOnly", True)
    assert_scim_error(await idp.get("/Schemas/urn:nothing"), 404)
    assert_scim_error(await idp.get("/ResourceTypes/Nothing"), 404)
