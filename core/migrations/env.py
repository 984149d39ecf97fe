"""Alembic environment of Praxis.

There is no alembic.ini: ``core.schema`` builds the Config in code and hands over, in
``config.attributes``, the connection to migrate on (SQLite: foreign keys already off; PostgreSQL:
advisory lock held), an ``on_version_apply`` progress callback, an ``after_migrations`` callback run
inside the transaction, and for autogenerate the ``table_prefix`` of the branch being generated.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.models  # noqa: F401  (registers the core tables on SQLModel.metadata)
from core import schema
from core.db import make_engine
from core.migrations.rendering import process_revision_directives, render_item

config = context.config


def migrate(connection) -> None:  # type: ignore[no-untyped-def]
    is_sqlite = connection.dialect.name == "sqlite"
    prefix = config.attributes.get("table_prefix", "core_")
    options = {}
    if config.attributes.get("on_version_apply") is not None:
        options["on_version_apply"] = config.attributes["on_version_apply"]
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        version_table=schema.VERSION_TABLE,
        # SQLite cannot ALTER most things: autogenerate emits batch (copy-and-move) operations there.
        render_as_batch=is_sqlite,
        # The engine issues BEGIN IMMEDIATE, so SQLite DDL is transactional: run every step, the version
        # update and the foreign key check in one transaction that fails as a whole.
        transactional_ddl=True,
        compare_type=True,
        render_item=render_item,
        process_revision_directives=process_revision_directives,
        **schema.autogenerate_filters(prefix, existing_tables=config.attributes.get("existing_tables", ())),
        **options,
    )
    with context.begin_transaction():
        context.run_migrations()
        after = config.attributes.get("after_migrations")
        if after is not None:
            after(connection)
        if is_sqlite:
            schema.check_foreign_keys(connection)


def run() -> None:
    if context.is_offline_mode():
        raise SystemExit("Praxis migrations run online only: use `praxis db upgrade`")
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with schema.migration_connection(engine) as conn:
            migrate(conn)
            if conn.in_transaction():
                conn.commit()
    finally:
        engine.dispose()


run()
