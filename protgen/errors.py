"""The error types a user sees as one line from the command-line interface."""

__all__ = ["ProtgenError", "StructureError", "DatasetError", "CheckpointError", "ConfigError"]


class ProtgenError(Exception):
    """A user-facing error: the message names the problem (and, where it helps, the fix)."""


class StructureError(ProtgenError):
    """A structure file that cannot be read: missing, empty, truncated, binary or not protein."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class DatasetError(ProtgenError):
    """A training-set directory that is missing, incomplete or of another format version."""


class CheckpointError(ProtgenError):
    """A checkpoint that is missing, corrupt or incompatible with this protgen or model."""


class ConfigError(ProtgenError):
    """A configuration value or file that protgen does not accept."""
