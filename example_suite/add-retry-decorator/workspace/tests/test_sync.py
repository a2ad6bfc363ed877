import pytest

from errors import PermanentError
from sync import Invoice, sync_invoices

PAGES: dict[str | None, tuple[list[Invoice], str | None]] = {
    None: ([Invoice("inv-1", "acme", 1200), Invoice("inv-2", "globex", 560)], "p2"),
    "p2": ([Invoice("inv-3", "acme", 99)], None),
}


class FakeClient:
    def __init__(self, fail_on: str | None = "never") -> None:
        self.fail_on = fail_on

    def list_invoices(self, since: str, cursor: str | None) -> tuple[list[Invoice], str | None]:
        if cursor == self.fail_on:
            raise PermanentError("HTTP 404")
        return PAGES[cursor]


class MemoryLedger:
    def __init__(self) -> None:
        self.invoices: dict[str, Invoice] = {}

    def has(self, invoice_id: str) -> bool:
        return invoice_id in self.invoices

    def add(self, invoice: Invoice) -> None:
        self.invoices[invoice.id] = invoice


def test_sync_reads_every_page() -> None:
    ledger = MemoryLedger()
    assert sync_invoices(FakeClient(), ledger, since="2024-01-01") == 3
    assert sorted(ledger.invoices) == ["inv-1", "inv-2", "inv-3"]


def test_sync_is_idempotent() -> None:
    ledger = MemoryLedger()
    sync_invoices(FakeClient(), ledger, since="2024-01-01")
    assert sync_invoices(FakeClient(), ledger, since="2024-01-01") == 0


def test_errors_abort_but_keep_progress() -> None:
    ledger = MemoryLedger()
    with pytest.raises(PermanentError):
        sync_invoices(FakeClient(fail_on="p2"), ledger, since="2024-01-01")
    assert sorted(ledger.invoices) == ["inv-1", "inv-2"]
