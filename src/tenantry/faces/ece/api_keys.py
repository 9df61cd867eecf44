"""ECE API keys over Tenantry's personal tokens."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from tenantry.faces.ece import key_rules as ece_api_keys
from tenantry.faces.ece.credentials import Caller
from tenantry.faces.ece.errors import EceInvalid
from tenantry.faces.ece.key_rules import ApiKey
from tenantry.faces.ece.render import ts
from tenantry.faces.http import Db, face_router

router = face_router(tags=["Authentication"])
KeyId = Annotated[str, Path(max_length=64)]
UserId = Annotated[str, Path(max_length=320)]
_DURATION = re.compile(r"^(\d{1,6})([smhdwy])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}


class CreateApiKeyRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    description: str = Field(max_length=1024)
    expiration: str | None = Field(default=None, max_length=16)


class DeleteApiKeysRequest(BaseModel):
    keys: list[Annotated[str, Field(max_length=64)]] = Field(max_length=1000)


class UserApiKey(BaseModel):
    user_id: str = Field(max_length=320)
    api_key_id: str = Field(max_length=64)


class DeleteUsersApiKeysRequest(BaseModel):
    user_api_keys: list[UserApiKey] = Field(max_length=1000)


def duration(text: str | None) -> timedelta | None:
    """ECE's durations: a number and a unit, e.g. `3h`, `1d`, `2w`, `1y`."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match is None:
        raise EceInvalid(
            "api_keys.invalid_input",
            "the expiration is a duration such as 3h, 1d or 2w",
            ["expiration"],
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def key_body(key: ApiKey) -> dict[str, Any]:
    token = key.token
    body: dict[str, Any] = {
        "id": token.id,
        "user_id": key.user_name,
        "description": token.description or token.name,
        "creation_date": ts(token.created_at),
    }
    if token.expires_at is not None:
        body["expiration_date"] = ts(token.expires_at)
    if key.secret is not None:
        body["key"] = key.secret
    return body


def keys_body(keys: list[ApiKey]) -> dict[str, Any]:
    return {"keys": [key_body(k) for k in keys]}


@router.get("/users/auth/keys", operation_id="get-api-keys")
async def get_api_keys(caller: Caller, db: Db) -> Any:
    return keys_body(await ece_api_keys.own_keys(db, caller))


@router.post("/users/auth/keys", status_code=201, operation_id="create-api-key")
async def create_api_key(caller: Caller, db: Db, body: CreateApiKeyRequest) -> Any:
    expiration = duration(body.expiration)
    return key_body(await ece_api_keys.create_key(db, caller, body.description, expiration))


@router.delete("/users/auth/keys", operation_id="delete-api-keys")
async def delete_api_keys(caller: Caller, db: Db, body: DeleteApiKeysRequest) -> Any:
    await ece_api_keys.delete_own_keys(db, caller, body.keys)
    return {}


@router.get("/users/auth/keys/_all", operation_id="get-users-api-keys")
async def get_users_api_keys(caller: Caller, db: Db) -> Any:
    return keys_body(await ece_api_keys.all_keys(db, caller))


@router.delete("/users/auth/keys/_all", operation_id="delete-users-api-keys")
async def delete_users_api_keys(caller: Caller, db: Db, body: DeleteUsersApiKeysRequest) -> Any:
    pairs = [(k.user_id, k.api_key_id) for k in body.user_api_keys]
    await ece_api_keys.delete_keys_of_users(db, caller, pairs)
    return {}


@router.get("/users/auth/keys/{api_key_id}", operation_id="get-api-key")
async def get_api_key(caller: Caller, db: Db, api_key_id: KeyId) -> Any:
    return key_body(await ece_api_keys.own_key(db, caller, api_key_id))


@router.delete("/users/auth/keys/{api_key_id}", operation_id="delete-api-key")
async def delete_api_key(caller: Caller, db: Db, api_key_id: KeyId) -> Any:
    await ece_api_keys.delete_own_keys(db, caller, [api_key_id])
    return {}


@router.get("/users/{user_id}/auth/keys", operation_id="get-user-api-keys")
async def get_user_api_keys(caller: Caller, db: Db, user_id: UserId) -> Any:
    return keys_body(await ece_api_keys.user_keys(db, caller, user_id))


@router.delete("/users/{user_id}/auth/keys", operation_id="delete-user-api-keys")
async def delete_user_api_keys(caller: Caller, db: Db, user_id: UserId) -> Any:
    await ece_api_keys.delete_user_keys(db, caller, user_id)
    return {}


@router.get("/users/{user_id}/auth/keys/{api_key_id}", operation_id="get-user-api-key")
async def get_user_api_key(caller: Caller, db: Db, user_id: UserId, api_key_id: KeyId) -> Any:
    return key_body(await ece_api_keys.user_key(db, caller, user_id, api_key_id))


@router.delete("/users/{user_id}/auth/keys/{api_key_id}", operation_id="delete-user-api-key")
async def delete_user_api_key(caller: Caller, db: Db, user_id: UserId, api_key_id: KeyId) -> Any:
    await ece_api_keys.delete_user_keys(db, caller, user_id, api_key_id)
    return {}
