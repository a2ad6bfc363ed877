"""Pull invoices from the billing API into a local ledger."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Invoice:
    id: str
    customer: str
    amount_cents: int


class BillingClient(Protocol):
    def list_invoices(self, since: str, cursor: str | None) -> tuple[list[Invoice], str | None]:
        """Return one page of invoices and the cursor of the next page (None at the end)."""
        ...


class Ledger(Protocol):
    def has(self, invoice_id: str) -> bool: ...

    def add(self, invoice: Invoice) -> None: ...


def sync_invoices(client: BillingClient, ledger: Ledger, since: str) -> int:
    """Add every invoice created since ``since`` to ``ledger``; return how many were new.

    Any error from the client aborts the sync; already-added invoices are kept,
    so running the sync again is safe.
    """
    added = 0
    cursor: str | None = None
    while True:
        invoices, cursor = client.list_invoices(since, cursor)
        for invoice in invoices:
            if not ledger.has(invoice.id):
                ledger.add(invoice)
                added += 1
        if cursor is None:
            return added
