"""Alembic environment of the run store.

Wattbench configures Alembic in code (``wattbench.db.store.alembic_config``) and hands over an
open connection in ``config.attributes["connection"]``; no alembic.ini is read at run time.
For development, ``alembic -x url=sqlite:///dev.sqlite revision --autogenerate -m "..."``
(with ``-c`` pointing at any ini whose script_location is this folder) works too.
"""

from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import create_engine, pool
from wattbench.db.schema import Base

log = logging.getLogger(__name__)

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
        **kwargs,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    _configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("give a database: alembic -x url=sqlite:///file.sqlite ...")
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _configure(connection=conn)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
