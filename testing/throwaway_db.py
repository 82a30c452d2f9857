"""Throwaway PostgreSQL databases for the tests and the throughput benchmark."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import make_url


def asyncpg_dsn(url: str) -> str:
    """asyncpg takes postgresql://…, not SQLAlchemy's postgresql+asyncpg://…"""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str, name: str) -> str:
    """An empty database `name` on the server of `server_url` (replacing one left over by an
    interrupted run); its SQLAlchemy URL."""
    await drop_database(server_url, name)
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, name: str) -> None:
    # A new connection each time: a test may have restarted the server meanwhile.
    connection = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
