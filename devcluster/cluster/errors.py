"""Errors raised by the embedded cluster, each with a message that says what to do."""


class ClusterError(RuntimeError):
    """The local cluster could not be built, started, inspected or stopped."""
