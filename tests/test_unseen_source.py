"""A task whose source the shared body never trained on gets a notice (a warning event and `unseen_source` on the
task), naming the body's sources and what a refit costs; tasks of the body's sources get none."""
from __future__ import annotations

import dataclasses

from engine.data.tasks import TaskDef
from engine.runtime.reporting import RecordingReporter
from engine.similarity.dictionary import Dictionary
from store import Store
from tests.test_dictionary import SOURCES, TASKS, _builder, _cfg


def test_a_task_from_a_source_outside_the_shared_body_gets_a_notice(tmp_path):
    alpha = [t for t in TASKS if t.source == "alpha"]
    cfg = dataclasses.replace(_cfg(fisher_body="shared", shared_epochs=1, fisher_form="domain"), tasks=tuple(alpha))
    with Store.open(tmp_path / "d.zarr", "w", create=True) as st:
        rep = RecordingReporter()
        dic = Dictionary(st, cfg, "cpu", reporter=rep, task_builder=_builder, source_loader=SOURCES.__getitem__)
        ids = dic.ensure(alpha)
        assert all(st.task(i)["body_sources"] == ["alpha"] and st.task(i)["unseen_source"] is False for i in ids)
        assert not [d for e, d in rep.events if e == "warning" and d.get("code") == "unseen_source"]
        beta = dic.add_task(TaskDef(name="beta-a", source="beta", positive=("a",)))
        assert st.task(beta)["unseen_source"] is True and st.task(beta)["body_sources"] == ["alpha"]
        notes = [d["message"] for e, d in rep.events if e == "warning" and d.get("code") == "unseen_source"]
        assert len(notes) == 1
        assert "'beta-a'" in notes[0] and "'beta'" in notes[0] and "(alpha)" in notes[0] and "3 tasks" in notes[0]
