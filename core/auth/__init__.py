"""Authentication and authorisation: passwords, sessions, API tokens, CSRF, roles and permissions.

Routes depend on ``core.auth.deps`` (``current_principal``, ``permission``, ``clinic_permission``).
"""
