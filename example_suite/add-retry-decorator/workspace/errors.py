"""Exceptions raised while talking to the billing API."""


class SyncError(Exception):
    """Base class for every failure during an invoice sync."""


class TransientError(SyncError):
    """A failure that may go away if the request is repeated (timeout, HTTP 503)."""


class PermanentError(SyncError):
    """A failure that will not go away on retry (bad credentials, HTTP 404)."""
