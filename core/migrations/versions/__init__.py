"""Core schema revisions (ids core_NNNN, branch label 'core')."""
