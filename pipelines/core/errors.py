"""The one error type a user can cause; the CLI prints it as a single line."""


class PipelineError(Exception):
    """A problem with the user's data, params or files, stated in one line."""

    def __init__(self, message: str):
        super().__init__(message.splitlines()[0] if message else "unknown error")
