"""The tanas artifact store: one Zarr v3 directory (default `tanas-store.zarr`), the project's source of truth.

Only `store.layout` knows paths and array names; everything else goes through `Store`. Imports numpy, zarr and
the standard library only.

    from store import Store
    with Store.open("tanas-store.zarr", mode="w", create=True) as st:     # takes runs/lock
        st.add_task("a1b2", {"name": "mnist-3", "source": "mnist-5k"})
        st.save_probe("a1b2", {"fc.weight": w}) ; st.save_fisher("a1b2", fisher_vec)
        st.add_distance_task("fisher", "a1b2") ; st.set_distance("fisher", "a1b2", "a1b2", 0.0)
        with st.create_search("run-1", {"target": "a1b2"}, candidates=4) as writer:
            writer.append(alpha, round=0, step_kind=1, loss_train=0.7, loss_val=0.8, val_acc=accs)
    rec = Store.open("tanas-store.zarr").read_search("run-1")              # read-only, no lock; cut at committed

Errors: StoreError (base; missing or foreign store, read-only, bad input), StoreLocked (another writer; `.pid`),
StoreIncompatible (another major format version), NotFound (no such task / run / matrix entry).
"""
from store.distances import DistanceMatrix
from store.errors import NotFound, StoreCorrupt, StoreError, StoreIncompatible, StoreLocked
from store.layout import FORMAT
from store.search import SearchRecord, SearchWriter
from store.store import Store

__all__ = [
    "Store",
    "SearchWriter",
    "SearchRecord",
    "DistanceMatrix",
    "StoreError",
    "StoreLocked",
    "StoreIncompatible",
    "StoreCorrupt",
    "NotFound",
    "FORMAT",
]
