"""The return path from lab connector plugins: the core outbox topic ``core.labs.poll``.

A lab plugin queues ``ctx.enqueue(LAB_POLL_TOPIC, {})`` whenever results may be waiting (its MLLP listener stored
a message, its periodic job ran, an order was delivered). The worker hands the item to ``poll`` below (a core
handler: the plugin never imports the core), which

1. brings the clinic's orders in line with their deliveries (acknowledged / rejected, see ``orders.reconcile``);
2. calls the plugin's connectors' ``fetch_results`` and stores every lab message whole or not at all, in one
   transaction (``results.store_results``);
3. only after that commit calls ``confirm_results`` with the receipts stored or refused, so a crash in between
   leaves the results with the connector, which hands them out again.

A ``RetryableError`` from the connector (the lab is down) retries the item later, as for any outbox work.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from core.db import transaction
from core.labs import orders, results
from core.outbox import core_handlers
from plugin_sdk.providers import LAB_POLL_TOPIC, LabConnector

if TYPE_CHECKING:
    from core.app_context import Praxis
    from plugin_sdk.context import OutboxMessage

log = logging.getLogger(__name__)


def connectors_of(praxis: Praxis, plugin: str) -> list[LabConnector]:
    found: list[LabConnector] = []
    for result in praxis.runtime.collect("praxis_lab_connectors"):
        if result.plugin == plugin:
            found += [c for c in result.value or [] if isinstance(c, LabConnector)]
    return found


def poll(praxis: Praxis, message: OutboxMessage, plugin: str) -> dict[str, Any]:
    clinic_id = message.clinic_id
    if clinic_id is None:
        return {"skipped": "no clinic"}
    with transaction(praxis.engine) as session:
        reconciled = orders.reconcile(session, clinic_id, plugin)
    stored = refused = changed = 0
    ctx = praxis.runtime.context(plugin, clinic_id)
    for connector in connectors_of(praxis, plugin):
        fetched = connector.fetch_results(ctx)
        if not fetched:
            continue
        with transaction(praxis.engine) as session:
            report = results.store_results(session, praxis.runtime, clinic_id, fetched, source=plugin)
        for receipt, reason in report.refused.items():
            log.warning("lab results from %s refused (clinic %s, %s): %s", plugin, clinic_id, receipt, reason)
        receipts = [r for r in report.receipts if not r.startswith("placer:")]
        if receipts:
            connector.confirm_results(ctx, receipts)
        stored, refused, changed = stored + len(report.stored), refused + len(report.refused), changed + report.changed
    return {"reconciled": reconciled, "messages_stored": stored, "messages_refused": refused, "results": changed}


core_handlers.register(LAB_POLL_TOPIC, poll)
