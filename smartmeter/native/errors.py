"""The one error type the native runner raises for problems a user can fix."""


class StackError(RuntimeError):
    """A problem with a clear cause and remedy; the CLI prints it without a traceback."""
