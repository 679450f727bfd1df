"""A dictionary task as the panels show it: its stored record plus the live state events add (probe epochs, the
Fisher pass), and the genotype hash the UI prints beside it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from engine.data.tasks import task_rule
from engine.space.genotype import Genotype

if TYPE_CHECKING:
    from store.records import TaskRecord

# store.records is imported where it is used: importing it loads the `store` package and zarr, which the first
# paint of the UI does not need (the store is read after it, in a thread).

DEFINITION_KEYS = ("name", "source", "positive", "classes", "other", "balance", "limit", "val_fraction",
                   "test_fraction", "seed")


def genotype_hash(genotype: Any) -> str:
    """The genotype's stable hash (`Genotype.hash`), or "" for something that is not a valid genotype."""
    if not isinstance(genotype, Mapping):
        return ""
    if isinstance(genotype.get("hash"), str):
        return genotype["hash"]
    try:
        return Genotype.from_dict(genotype).hash
    except (KeyError, TypeError, ValueError):   # GenotypeError is a ValueError
        return ""


def task_definition(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """The TaskDef fields of a stored task (flat attrs or a nested "definition")."""
    source = attrs.get("definition") if isinstance(attrs.get("definition"), Mapping) else attrs
    out = {k: source[k] for k in DEFINITION_KEYS if k in source}
    out.setdefault("name", attrs.get("name"))
    return out


@dataclass
class TaskInfo:
    """A stored task: its attrs (`TaskRecord`) plus the live probe line."""
    id: str
    attrs: dict[str, Any]
    progress: str = ""        # live probe training line, cleared when the probe is done
    live_status: str = ""     # a state the store does not record ("fisher"), from task_status events

    @property
    def record(self) -> TaskRecord:
        from store.records import TaskRecord

        return TaskRecord.from_attrs(self.attrs)

    @property
    def name(self) -> str:
        return self.record.name or self.id

    @property
    def source(self) -> str:
        return str(self.record.source or task_definition(self.attrs).get("source") or "")

    @property
    def rule(self) -> str:
        """The rule the store recorded, else the same words from the definition."""
        record = self.record
        return record.rule if isinstance(record.rule, str) and record.rule else task_rule(task_definition(self.attrs))

    @property
    def samples(self) -> int | None:
        record = self.record
        parts = [p for p in (record.n_train, record.n_val, record.n_test) if isinstance(p, int)]
        return sum(parts) if parts else None

    @property
    def val_acc(self) -> float | None:
        value = self.record.val_acc
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def representative(self) -> bool | None:
        value = self.record.representative
        return bool(value) if value is not None else None

    @property
    def genotype(self) -> dict | None:
        g = self.record.best_genotype
        return g if isinstance(g, Mapping) else None

    @property
    def genotype_hash(self) -> str:
        return str(self.record.genotype_hash or genotype_hash(self.genotype))

    @property
    def status(self) -> str:
        return self.progress or self.live_status or str(self.record.status or "")

    @property
    def role(self) -> str:
        return str(self.record.role or "base")
