"""Fixture plugins that own tables, for the migration tests."""
