"""External labs: catalogue and service mapping, orders and specimens, results, labels and dental lab cases.

Importing the package registers the core outbox handler of ``core.labs.poll`` (the return path from lab connector
plugins, see ``core.labs.poll``).
"""

from core.labs import poll  # noqa: F401  (registers the core.labs.poll handler)
