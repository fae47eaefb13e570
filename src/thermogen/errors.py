"""Exceptions raised by thermogen.

Each one subclasses the built-in exception a caller would already catch
(`ValueError` for bad configuration, `OSError` for files and the Hub), so
``except ValueError`` keeps working while ``except thermogen.errors.ConfigError``
can be precise. Messages name the bad value and what was expected.
"""

from __future__ import annotations


class ThermogenError(Exception):
    """Base class of every error thermogen raises on purpose."""


class ConfigError(ThermogenError, ValueError):
    """A config or constructor argument is bad: a missing key, a value of the wrong type or out of range,
    or an unknown class. Schedules, networks, samplers and other components raise it through the checks
    of :mod:`thermogen.checks`."""


class PluginError(ThermogenError, LookupError):
    """A registered name is unknown, or the plugin that provides it failed to import."""


class CheckpointError(ThermogenError, OSError):
    """A weights or state file is missing, corrupted, truncated, or does not fit the model."""


class DatasetError(ThermogenError, OSError):
    """A dataset file or folder is missing, empty, corrupted or truncated."""


class PretrainedNotFoundError(ThermogenError, OSError):
    """A pretrained pipeline could not be resolved: unknown repo or revision, or offline and not cached."""


class TrainingDivergedError(ThermogenError, RuntimeError):
    """Training produced a non-finite or exploding loss; the last good checkpoint is kept."""


class SaveTargetError(ThermogenError, FileExistsError):
    """A save would replace something it did not write: a regular file, a link, or a folder with foreign files."""


class RunLockedError(ThermogenError, BlockingIOError):
    """Another process is training into the same run folder (the message says which)."""
