"""Command palette provider: the app's main actions, plus "open run …" for every search in the store."""
from __future__ import annotations

from functools import partial
from typing import Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from engine.service import protocol as P


class TanasCommands(Provider):
    def _commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.app
        cmds: list[tuple[str, str, Callable[[], object]]] = [
            ("Start engine", "start the engine process for this store (it keeps running after you quit)",
             app.action_start_engine),
            ("Add task", "open the add-task form", app.action_add_task),
            ("Compute distances (fisher)", "queue the Fisher task distances of every pair",
             partial(app.submit, P.ComputeDistances(method="fisher"))),
            ("Compute distances (transfer)", "queue the transform-network distances",
             partial(app.submit, P.ComputeDistances(method="transfer"))),
            ("Build task-aware space", "for the config's target task",
             partial(app.submit, P.BuildSpace(kind="task-aware"))),
            ("Start search (task-aware)", "FUSE on the config's target in its task-aware space",
             partial(app.submit, P.StartSearch(space="task-aware"))),
            ("Start search (standard)", "FUSE on the config's target in the standard space",
             partial(app.submit, P.StartSearch(space="standard"))),
            ("Run pipeline", "the whole pipeline of the config, in the engine", partial(app.submit, P.RunPipeline())),
            ("Reload store", "re-read everything from the store", app.action_reload),
            ("Help", "keys and panels", app.action_help),
        ]
        for tab in ("dictionary", "distances", "space", "fuse", "runs", "events"):
            cmds.append((f"Show {tab}", f"switch to the {tab} tab", partial(app.action_show_tab, tab)))
        for run_id in list(app.model.searches):
            cmds.append((f"Open run {run_id}", "replay this search in the FUSE tab", partial(app.open_run, run_id)))
        return cmds

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            if not title.startswith("Open run"):
                yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
