"""Full garbage collections kept short on a warm worker.

CPython's full (generation 2) collection walks every tracked object the process holds. A worker's heap is
mostly what its imports built (the Azure SDKs, msgraph, pydantic: about 100,000 objects once an HTTP
function has run, imported lazily on first use), so each full collection took 140-290 ms on the
development machine, about one question in twelve: the whole tail of the availability API's latency.

After an HTTP function's first invocation in a worker (when what it imports lazily has been imported),
`settle` collects once and freezes what is left (`gc.freeze`): those objects move to the permanent
generation, which later collections skip, so a full collection walks only what was made since. The cost is
one full collection on each function's first call (its cold call, already paying for its imports). What
is frozen is never collected as a cycle: a settle freezes only what survived a full collection, in practice
the modules and the worker's clients; an invocation running at that moment keeps its objects frozen (freed
by reference counting as usual, never by the cycle collector), once per function per worker.
"""

from __future__ import annotations

import gc

_settled: set[str] = set()


def settle(function: str) -> bool:
    """On `function`'s first call in this process, collect and freeze the heap; True when it did."""
    if function in _settled:
        return False
    _settled.add(function)
    gc.collect()
    gc.freeze()
    return True
