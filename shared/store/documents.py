"""A JSON document kept whole in one state-table item (``body``), beside the attributes its owner
adds (``updated_at``, ``expires_at``, ...): the backfill's and the reconciliation's checkpoints,
the poller's cursor, the latest reconciliation run and an on-demand run's outcome.
"""

from __future__ import annotations

from shared import aws


class StoredDocument:
    def __init__(self, table_name: str, pk: str, sk: str) -> None:
        self._table = table_name
        self._key = {"pk": {"S": pk}, "sk": {"S": sk}}

    def read(self) -> str | None:
        """The document's JSON text, or None when it was never written (or was deleted)."""
        item = (
            aws.client("dynamodb")
            .get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
            .get("Item")
        )
        return None if item is None else str(item["body"]["S"])

    def write(self, body: str, **attributes: dict[str, str]) -> None:
        """Replace the document; ``attributes``: more of the item, as DynamoDB values."""
        aws.client("dynamodb").put_item(
            TableName=self._table, Item={**self._key, **attributes, "body": {"S": body}}
        )

    def delete(self) -> None:
        aws.client("dynamodb").delete_item(TableName=self._table, Key=self._key)
