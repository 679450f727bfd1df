"""What changed, as the panels subscribe to it: every reduction and store merge returns a set of these topics, and
the app refreshes only the panels concerned."""
from __future__ import annotations

TASKS = "tasks"
DISTANCES = "distances"
SEARCHES = "searches"
SPACES = "spaces"
JOBS = "jobs"
EVENTS = "events"


def search_topic(run_id: str) -> str:
    """One search run's own topic (its trajectory or status changed)."""
    return f"search:{run_id}"
