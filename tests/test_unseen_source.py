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


def test_tasks_add_from_a_new_source_warns_and_distances_check_names_it(tmp_path):
    import json

    from typer.testing import CliRunner

    from tanas_tui.cli import app
    from tests.synthetic import tiny_project

    path = tmp_path / "tanas.toml"
    path.write_text(tiny_project(store="s.zarr", tasks=("circle", "square")).replace(
        "[dictionary]\n", '[dictionary]\nfisher_body = "shared"\nfisher_form = "domain"\nshared_epochs = 1\n'))
    runner = CliRunner()
    for name in ("circle", "square"):     # the body learns the config's source: sketches
        assert runner.invoke(app, ["tasks", "add", name, "--config", str(path)]).exit_code == 0
    added = runner.invoke(app, ["tasks", "add", "digit-3", "--source", "uci-digits", "--positive", "3", "--limit",
                                "120", "--config", str(path)])
    assert added.exit_code == 0, added.output
    assert "not among the shared body's training sources (sketches)" in added.output
    out = runner.invoke(app, ["distances", "--check", "--json", "--config", str(path)])
    assert json.loads(out.stdout)["unseen_source"] == {"digit-3": "uci-digits"}
    shown = runner.invoke(app, ["distances", "--check", "--config", str(path)])
    assert "digit-3 (uci-digits)" in shown.output and "never trained on" in shown.output
