"""fastapi-users' documented SQLAlchemy + bearer-token app, for comparison with Tenantry.

This file runs in its own virtualenv (bench/.venv-fastapi-users, made by bench.fastapi_users
from bench/fastapi-users-requirements.txt), never in Tenantry's: fastapi-users pins other
FastAPI / SQLAlchemy versions. It follows fastapi-users' "Full example — SQLAlchemy" (User
table, UserManager, BearerTransport, `fastapi_users.get_users_router` under /users) with
either of the two documented strategies, chosen by FU_STRATEGY:

    jwt        JWTStrategy (the documented example): the token is verified, then the user is
               read by id
    database   DatabaseStrategy with an AccessToken table: the token is looked up, then the
               user

Two commands (FU_DATABASE_URL=postgresql+asyncpg://… in the environment):

    python bench/fastapi_users_app.py setup    # tables, one user, prints a bearer token last
    python bench/fastapi_users_app.py serve --port P [--workers N]

`serve` calls uvicorn.run with the same flags as `tenantry serve` (factory, access log off,
proxy headers off, uvloop/httptools from uvicorn[standard]). GET /healthz answers 200.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from collections.abc import AsyncGenerator
from typing import Any

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import AuthenticationBackend, BearerTransport, JWTStrategy
from fastapi_users.authentication.strategy.db import AccessTokenDatabase, DatabaseStrategy
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users_db_sqlalchemy.access_token import (
    SQLAlchemyAccessTokenDatabase,
    SQLAlchemyBaseAccessTokenTableUUID,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ.get("FU_DATABASE_URL", "sqlite+aiosqlite:///./fastapi-users.db")
STRATEGY = os.environ.get("FU_STRATEGY", "jwt")
SECRET = os.environ.get("FU_SECRET", "bench-secret-not-for-production-0123456789abcdef")
LIFETIME = 24 * 3600
EMAIL = "bench@example.com"
PASSWORD = "bench-password-Zq8!x"  # noqa: S105 - a throwaway benchmark account


# --- db.py ---------------------------------------------------------------------------------------


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class AccessToken(SQLAlchemyBaseAccessTokenTableUUID, Base):
    pass


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def create_db_and_tables() -> None:
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(
    session: AsyncSession = Depends(get_async_session),
) -> AsyncGenerator[SQLAlchemyUserDatabase[User, uuid.UUID], None]:
    yield SQLAlchemyUserDatabase(session, User)


async def get_access_token_db(
    session: AsyncSession = Depends(get_async_session),
) -> AsyncGenerator[SQLAlchemyAccessTokenDatabase[AccessToken], None]:
    yield SQLAlchemyAccessTokenDatabase(session, AccessToken)


# --- schemas.py ----------------------------------------------------------------------------------


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


# --- users.py ------------------------------------------------------------------------------------


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(
    user_db: SQLAlchemyUserDatabase[User, uuid.UUID] = Depends(get_user_db),
) -> AsyncGenerator[UserManager, None]:
    yield UserManager(user_db)


bearer_transport = BearerTransport(tokenUrl="auth/login")


def get_jwt_strategy() -> JWTStrategy[User, uuid.UUID]:
    return JWTStrategy(secret=SECRET, lifetime_seconds=LIFETIME)


def get_database_strategy(
    access_token_db: AccessTokenDatabase[AccessToken] = Depends(get_access_token_db),
) -> DatabaseStrategy[User, uuid.UUID, AccessToken]:
    return DatabaseStrategy(access_token_db, lifetime_seconds=LIFETIME)


auth_backend: AuthenticationBackend[User, uuid.UUID] = AuthenticationBackend(
    name=STRATEGY,
    transport=bearer_transport,
    get_strategy=get_database_strategy if STRATEGY == "database" else get_jwt_strategy,  # type: ignore[arg-type, unused-ignore]
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])
current_active_user = fastapi_users.current_user(active=True)


# --- app.py --------------------------------------------------------------------------------------


def create_app() -> FastAPI:
    app = FastAPI()
    app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth")
    app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


# --- the bench's commands ------------------------------------------------------------------------


async def setup() -> str:
    """Tables, the user (through UserManager.create), and a token from the strategy."""
    await create_db_and_tables()
    async with async_session_maker() as session:
        user_db = SQLAlchemyUserDatabase(session, User)
        manager = UserManager(user_db)
        user = await user_db.get_by_email(EMAIL)
        if user is None:
            user = await manager.create(UserCreate(email=EMAIL, password=PASSWORD))
        strategy: Any
        if STRATEGY == "database":
            strategy = DatabaseStrategy(
                SQLAlchemyAccessTokenDatabase(session, AccessToken), lifetime_seconds=LIFETIME
            )
        else:
            strategy = get_jwt_strategy()
        token: str = await strategy.write_token(user)
    await engine.dispose()
    return token


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="fastapi-users comparison app")
    parser.add_argument("command", choices=["setup", "serve"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    if args.command == "setup":
        print(asyncio.run(setup()))
        return 0
    import uvicorn

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run(
        "fastapi_users_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
