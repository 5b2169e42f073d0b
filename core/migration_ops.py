"""Migration operations the apps share: SQL files for PostgreSQL, indexes built without blocking.

SQL that lives in the database (functions, triggers) is written as a ``.sql`` file beside the
migration that applies it, named like it, and never edited once released: a change is a new file
and a new migration, so that ``makemigrations --check`` and review both see it.
"""

from pathlib import Path

from django.db import migrations


class PostgreSQLFile(migrations.RunSQL):
    """Run the ``.sql`` file ``name`` of the migrations package ``package`` on PostgreSQL only
    (SQLite has no functions: the portable code paths do without)."""

    def __init__(self, package, name, reverse_name=None):
        """``reverse_name``: a file, or a list of files run in order (e.g. one that drops what
        ``name`` made, then the earlier migration's file that made what it replaced)."""
        folder = Path(package).resolve().parent
        sql = (folder / name).read_text()
        names = [reverse_name] if isinstance(reverse_name, str) else reverse_name or []
        reverse = "\n".join((folder / item).read_text() for item in names) or None
        super().__init__(sql, reverse)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class AddIndexConcurrently(migrations.AddIndex):
    """``AddIndex`` that on PostgreSQL builds the index with ``CREATE INDEX CONCURRENTLY``: writers
    go on while a large table is indexed. Its migration must be ``atomic = False``."""

    atomic = False

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        model = to_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.add_index(model, self.index, concurrently=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        model = from_state.apps.get_model(app_label, self.model_name)
        if self.allow_migrate_model(schema_editor.connection.alias, model):
            schema_editor.remove_index(model, self.index, concurrently=True)
