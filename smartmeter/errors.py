"""The one error type for problems a user can fix; the CLI prints it without a traceback."""


class LakehouseError(RuntimeError):
    """A problem with a clear cause and remedy."""


class PipelineGapError(LakehouseError):
    """Kafka data the pipeline can no longer read; it stops until someone acknowledges the gap."""
