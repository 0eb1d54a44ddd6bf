"""User-facing errors: one sentence that names the file, the value and the fix."""


class TrtpipeError(Exception):
    """A problem the user can fix. The CLI prints the message alone and exits with status 2."""


class ConfigError(TrtpipeError):
    """The configuration is invalid."""


class ProfileError(TrtpipeError):
    """A shape lies outside the optimization profile an engine was built for."""


class DynamicExportError(TrtpipeError):
    """An export declared dynamic does not behave dynamically."""


class ParityError(TrtpipeError):
    """An artifact's outputs do not match PyTorch within tolerance."""


class BackendUnavailable(TrtpipeError):
    """The backend's library or hardware is missing on this machine."""


class EngineMismatch(TrtpipeError):
    """An engine meets a library version or device it was not built for."""
