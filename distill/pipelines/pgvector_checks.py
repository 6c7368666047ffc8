"""A pgvector store checked against its server before any work: each failure is one line that names the fix."""

from __future__ import annotations

import re
from typing import Any

from distill.errors import DistillError

WIDTH_SQL = (
    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a JOIN pg_class c ON a.attrelid = c.oid "
    "JOIN pg_namespace n ON c.relnamespace = n.oid WHERE n.nspname = %s AND c.relname = %s AND a.attname = 'embedding'"
)


def _env_vars(store: Any) -> str:
    names = getattr(store.connection_string, "_env_vars", None) or ("PG_CONN_STR",)
    return " or ".join(f"${n}" for n in names)


def _cause(error: BaseException) -> str:
    while error.__cause__ is not None:
        error = error.__cause__
    return " ".join(str(error).split())


def check_pgvector(store: Any, where: str, embedder_width: int | None = None) -> None:
    """Connect ``store`` (a ``PgvectorDocumentStore``), create its table if missing and compare vector widths."""
    import psycopg
    from haystack.document_stores.errors import DocumentStoreError

    variable = _env_vars(store)
    try:
        store.connection_string.resolve_value()
    except ValueError:
        raise DistillError(
            f"{where}: the PostgreSQL connection string is not set: export {variable.lstrip('$')}="
            "postgresql://USER:PASSWORD@HOST:5432/DATABASE (it is read from the environment, never from the YAML)"
        ) from None
    table = f"{store.schema_name}.{store.table_name}"
    try:
        store._ensure_db_setup()
    except (DocumentStoreError, psycopg.Error) as e:
        cause = _cause(e)
        if "vector" in cause and ("extension" in cause or "type not found" in cause):
            raise DistillError(
                f"{where}: the database in {variable} has no pgvector extension ({cause}): run `CREATE EXTENSION "
                "vector;` in it as a superuser (pgvector must be installed on the server), or let the store create "
                "it (create_extension: true) with a superuser's connection string"
            ) from None
        if isinstance(e, DocumentStoreError) and "connect" in str(e):
            raise DistillError(
                f"{where}: cannot connect to PostgreSQL with {variable} ({cause}): check the host, port, user, "
                f"password and database in {variable} and that the server is running"
            ) from None
        raise DistillError(f"{where}: PostgreSQL refused table {table} ({cause})") from None
    row = store._cursor.execute(WIDTH_SQL, (store.schema_name, store.table_name)).fetchone()
    match = re.search(r"\((\d+)\)", str(row[0])) if row else None
    if match is None:
        return
    width = int(match.group(1))
    expected, what = (
        (embedder_width, "the pipeline's embedder makes")
        if embedder_width
        else (store.embedding_dimension, "the store's embedding_dimension says")
    )
    if width != expected:
        raise DistillError(
            f"{where}: table {table} holds {width}-d vectors but {what} {expected}-d: give this pipeline a table of "
            f"its own with embedding_dimension: {expected} (`distill swap` names one per student; a query-only "
            "student, --keep-index, must have the teacher's width)"
        )
