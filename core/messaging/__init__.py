"""Messages to patients: reminder rules, templates, planning, delivery through vendor plugins, replies.

Modules: ``planner`` (rules -> planned messages, in the caller's transaction), ``listener`` (plans on every
appointment change), ``delivery`` (the outbox handlers that send and poll, vendor callbacks and replies),
``templates`` (placeholders, validation, rendering), ``segments`` (SMS length and parts), ``recipients``
(channels, guardians, opt-outs, address checks) and ``service`` (what the API does).
"""
