"""The project configuration: `tanas.toml` sections as frozen dataclasses (sections.py, each field with its rule
beside it: rules.py), and the one resolution of the effective config (loader.py).

Precedence: command-line override > `TANAS_*` environment variable > config file > built-in default. A job's config
is resolved once, where the command runs (`load_config`), and travels to the engine as plain data
(`Config.snapshot()`), which the engine turns back into a Config with `config_from_plain`: the engine never reads the
file or its own environment for a job's settings.
"""
from __future__ import annotations

from engine.config.loader import (ENV_PREFIX, TASK_FIELDS, config_digest, config_from_plain, config_summary,
                                  load_config, task_definition)
from engine.config.rules import SEED_LIMIT, problems
from engine.config.sections import (SECTIONS, SPACE_CHOICES, Config, ConfigError, DictionarySection, EngineSection,
                                    ExecutorSection, ProjectSection, SearchSection, SourceSection, SpaceSection,
                                    TransferSection, diff_snapshots)

__all__ = [
    "Config", "ConfigError", "DictionarySection", "ENV_PREFIX", "EngineSection", "ExecutorSection", "ProjectSection",
    "SEED_LIMIT", "SECTIONS", "SPACE_CHOICES", "SearchSection", "SourceSection", "SpaceSection", "TASK_FIELDS",
    "TransferSection", "config_digest", "config_from_plain", "config_summary", "diff_snapshots", "load_config",
    "problems", "task_definition",
]
