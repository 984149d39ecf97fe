"""How autogenerate writes revisions that run unchanged on SQLite and PostgreSQL.

Models carry database-specific DDL that Alembic's autogenerate does not carry over by itself:

* column types defined in model modules (``TypeDecorator`` subclasses) are written as the type they
  store, so a revision never imports model code that may change later;
* constraints and indexes marked ``.ddl_if(dialect="postgresql")`` keep that mark, and their SQL
  expressions are compiled for that database (autogenerate runs against a scratch SQLite database);
* ``DDL(...).execute_if(dialect=...)`` listeners on a table's ``before_create`` / ``after_create``
  (``CREATE EXTENSION ...``) become ``op.execute`` calls around the ``create_table``;
* indexes limited to one database are created and dropped only there.

The last two are written as ``if op.get_bind().dialect.name == "...":`` blocks.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.autogenerate.render import _render_constraint, _repr_type, render_op
from alembic.operations import ops
from sqlalchemy import MetaData, Table
from sqlalchemy.dialects import registry
from sqlalchemy.schema import ExecutableDDLElement
from sqlalchemy.types import TypeDecorator

_CONSTRAINT_KINDS = {"exclude", "check", "unique", "foreign_key", "primary_key"}
_in_progress: set[int] = set()


def _only_on(obj: Any) -> str | None:
    """The dialect name an object is limited to with ``ddl_if``/``execute_if``, if any."""
    ddl_if = getattr(obj, "_ddl_if", None)
    dialect = getattr(ddl_if, "dialect", None) if ddl_if is not None else None
    return dialect if isinstance(dialect, str) else None


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    if type_ == "type" and isinstance(obj, TypeDecorator):
        if not type(obj).__module__.startswith(("sqlalchemy", "sqlmodel")):
            return _repr_type(obj.impl_instance, autogen_context)
        return False
    if type_ in _CONSTRAINT_KINDS and id(obj) not in _in_progress:
        dialect = _only_on(obj) or _original_only_on(obj, autogen_context.metadata)
        if dialect is None:
            return False
        _in_progress.add(id(obj))
        # Its SQL expressions are compiled by the migration context's impl: compile them for that database.
        impl = autogen_context.migration_context.impl
        saved = autogen_context.dialect, impl.dialect
        autogen_context.dialect = impl.dialect = registry.load(dialect)()
        try:
            code = _render_constraint(obj, autogen_context, getattr(obj.table, "metadata", None))
        finally:
            autogen_context.dialect, impl.dialect = saved
            _in_progress.discard(id(obj))
        return f"{code}.ddl_if(dialect={dialect!r})"
    return False


def _original_only_on(obj: Any, metadata: Any) -> str | None:
    """Alembic renders copies of a table's constraints, which lose ``ddl_if``: look up the model's own."""
    table = getattr(obj, "table", None)
    name = getattr(obj, "name", None)
    if metadata is None or table is None or name is None:
        return None
    original = metadata.tables.get(table.name)
    for constraint in original.constraints if original is not None else ():
        if constraint.name == name:
            return _only_on(constraint)
    return None


class OnDialectOps(ops.MigrateOperation):
    """Operations run only on one database; rendered as an ``if`` on the connection's dialect."""

    def __init__(self, dialect: str, operations: list[ops.MigrateOperation]) -> None:
        self.dialect = dialect
        self.ops = operations

    def reverse(self) -> OnDialectOps:
        return OnDialectOps(self.dialect, [o.reverse() for o in reversed(self.ops)])  # type: ignore[attr-defined]


@renderers.dispatch_for(OnDialectOps)
def _render_on_dialect(autogen_context: Any, op: OnDialectOps) -> list[str]:
    lines = [f"if op.get_bind().dialect.name == {op.dialect!r}:"]
    for inner in op.ops:
        lines.extend(render_op(autogen_context, inner))
    lines.append("")
    return lines


def _ddl_listeners(table: Table, event: str) -> list[tuple[str | None, str]]:
    found = []
    for listener in getattr(table.dispatch, event):
        if isinstance(listener, ExecutableDDLElement) and hasattr(listener, "statement"):
            found.append((_only_on(listener), str(listener.statement)))
    return found


def _execute(dialect: str | None, sql: str) -> ops.MigrateOperation:
    op = ops.ExecuteSQLOp(sql)
    return op if dialect is None else OnDialectOps(dialect, [op])


def _index_dialect(metadata: MetaData, table_name: str, index_name: str | None) -> str | None:
    table = metadata.tables.get(table_name)
    if table is None or index_name is None:
        return None
    for index in table.indexes:
        if index.name == index_name:
            return _only_on(index)
    return None


def _rewrite(container: Any, metadata: MetaData, upgrade: bool) -> None:
    rewritten: list[Any] = []
    for op in container.ops:
        if isinstance(op, ops.ModifyTableOps):
            _rewrite(op, metadata, upgrade)
            rewritten.append(op)
        elif isinstance(op, ops.CreateIndexOp | ops.DropIndexOp):
            dialect = _index_dialect(metadata, op.table_name, op.index_name)
            rewritten.append(op if dialect is None else OnDialectOps(dialect, [op]))
        elif isinstance(op, ops.CreateTableOp) and upgrade and op.table_name in metadata.tables:
            table = metadata.tables[op.table_name]
            rewritten.extend(_execute(d, sql) for d, sql in _ddl_listeners(table, "before_create"))
            rewritten.append(op)
            rewritten.extend(_execute(d, sql) for d, sql in _ddl_listeners(table, "after_create"))
        else:
            rewritten.append(op)
    container.ops = rewritten


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    metadata = context.opts["target_metadata"]
    for script in directives:
        for upgrade_ops in script.upgrade_ops_list:
            _rewrite(upgrade_ops, metadata, upgrade=True)
        for downgrade_ops in script.downgrade_ops_list:
            _rewrite(downgrade_ops, metadata, upgrade=False)
