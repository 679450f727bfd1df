"""The UI's model, reduced from protocol events and merged with store reads; no Textual, no torch.

    topics      what changed (the panels subscribe to these)
    tasks       TaskInfo: a stored task plus its live probe state
    matrix      Matrix: one distance method's matrix
    trajectory  SearchRun: a search's attrs, α trajectory, candidates; the one softmax
    eta         EtaEstimator: time left from measured rates, paused time not counted
    jobs        Jobs / JobInfo: the engine's jobs and their pause / resume / stop state
    state       UiModel: all of the above, the store merges and the queries panels ask
    reducer     reduce(model, event): protocol events applied to the model
    snapshot    the store reads (thread workers), kept apart from the reducer
"""
from tanas_tui.model.jobs import JobInfo
from tanas_tui.model.matrix import Matrix
from tanas_tui.model.state import METHODS, UiModel
from tanas_tui.model.tasks import TaskInfo, genotype_hash, task_definition
from tanas_tui.model.topics import DISTANCES, EVENTS, JOBS, SEARCHES, SPACES, TASKS, search_topic
from tanas_tui.model.trajectory import SearchRun, softmax, softmax_rows

__all__ = ["DISTANCES", "EVENTS", "JOBS", "METHODS", "SEARCHES", "SPACES", "TASKS", "JobInfo", "Matrix", "SearchRun",
           "TaskInfo", "UiModel", "genotype_hash", "search_topic", "softmax", "softmax_rows", "task_definition"]
