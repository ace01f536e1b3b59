"""moto's server, with each DynamoDB request applied atomically, as DynamoDB applies it.

DynamoDB evaluates a conditional write and changes the item as one step, and a strongly
consistent read sees an item before or after a write, never during it. moto's server answers
requests on threads and, inside one request, reads the item, checks the condition and writes
in separate steps, so two concurrent conditional writes to one item can both succeed. One lock
around moto's DynamoDB operations gives the tests the service's documented behaviour; every
other service runs as moto ships it.

Usage: python moto_server.py [moto_server arguments]
"""

import functools
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend
from moto.server import main

OPERATIONS = (
    "put_item",
    "get_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
    "batch_get_item",
    "batch_write_item",
    "transact_get_items",
    "transact_write_items",
)

# Re-entrant: a batch or transaction is made of the single-item operations.
LOCK = threading.RLock()


def atomic(operation):
    @functools.wraps(operation)
    def locked(*args, **kwargs):
        with LOCK:
            return operation(*args, **kwargs)

    return locked


for name in OPERATIONS:
    setattr(DynamoDBBackend, name, atomic(getattr(DynamoDBBackend, name)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
