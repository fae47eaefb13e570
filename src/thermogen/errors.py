"""Exceptions raised by thermogen.

Each one subclasses the built-in exception a caller would already catch
(`ValueError` for bad configuration, `OSError` for files and the Hub), so
``except ValueError`` keeps working while ``except thermogen.errors.ConfigError``
can be precise. Messages name the bad value and what was expected.
"""

from __future__ import annotations


class ThermogenError(Exception):
    """Base class of every error thermogen raises on purpose.

    Example::

        try:
            pipe = DiffusionPipeline.from_pretrained(path)
        except ThermogenError as error:                  # any of the errors below
            print(f"{type(error).__name__}: {error}")
    """


class ConfigError(ThermogenError, ValueError):
    """A config or constructor argument is bad: a missing key, a value of the wrong type or out of range,
    or an unknown class. Schedules, networks, samplers and other components raise it through the checks
    of :mod:`thermogen.checks`.

    Example::

        try:
            DDIMSampler(eta=-1.0)
        except ConfigError as error:                     # also a ValueError
            print(error)                                 # eta=-1.0; expected a finite number >= 0
    """


class PluginError(ThermogenError, LookupError):
    """A registered name is unknown, or the plugin that provides it failed to import.

    Example::

        try:
            registry.get("samplers", "no_such_sampler")
        except PluginError as error:                     # also a LookupError
            print(error)                                 # unknown sampler 'no_such_sampler'; registered samplers: ...
    """


class CheckpointError(ThermogenError, OSError):
    """A weights or state file is missing, corrupted, truncated, or does not fit the model.

    Example::

        try:
            pipe = DiffusionPipeline.from_pretrained("saved")   # saved/model/model.safetensors is truncated
        except CheckpointError as error:                 # also an OSError
            print(error)                                 # cannot read saved/model/model.safetensors (7 bytes) ...
    """


class DatasetError(ThermogenError, OSError):
    """A dataset file or folder is missing, empty, corrupted or truncated.

    Example::

        try:
            MNIST(data_dir="data/mnist", download=False)
        except DatasetError as error:                    # also an OSError
            print(error)                                 # MNIST files missing in data/mnist: train-images-idx3-...
    """


class PretrainedNotFoundError(ThermogenError, OSError):
    """A pretrained pipeline could not be resolved: unknown repo or revision, or offline and not cached.

    Example::

        try:
            pipe = DiffusionPipeline.from_pretrained("org/name", local_files_only=True)
        except PretrainedNotFoundError as error:         # also an OSError
            print(error)                                 # not in cache and offline: 'org/name' at revision 'main' ...
    """


class TrainingDivergedError(ThermogenError, RuntimeError):
    """Training produced a non-finite or exploding loss; the last good checkpoint is kept.

    Example::

        try:
            trainer.train()
        except TrainingDivergedError as error:           # also a RuntimeError; out_dir/checkpoint is the last good one
            print(error)                                 # loss became nan at step 1200; ... lower the learning rate ...
    """


class SaveTargetError(ThermogenError, FileExistsError):
    """A save would replace something it did not write: a regular file, a link, or a folder with foreign files.

    Example::

        try:
            pipe.save_pretrained("notes.txt")            # an existing file
        except SaveTargetError as error:                 # also a FileExistsError
            print(error)                                 # .../notes.txt is a file, not a folder; refusing to ...
    """


class RunLockedError(ThermogenError, BlockingIOError):
    """Another process is training into the same run folder (the message says which).

    Example::

        try:
            with RunLock("runs/ddim"):
                trainer.train()
        except RunLockedError as error:                  # also a BlockingIOError
            print(error)                                 # runs/ddim is in use by another training run (pid 4242 on ...)
    """
