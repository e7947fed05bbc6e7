"""Domain exceptions. Every message says what was wrong and what to do about it.

The CLI and the HTTP API turn these into exit codes and HTTP statuses at the edge; library code
never prints and never exits.
"""


class KbchatError(Exception):
    """A problem the user can fix. str(error) is a complete, plain-language message."""


class BadInput(KbchatError):
    """A file, page or argument that cannot be used as given."""


class NotFound(KbchatError):
    """Something the user named does not exist (a source, an adapter, a file)."""


class ModelMissing(KbchatError):
    """A model package or model path is not installed or not readable."""


class EmptyKnowledgeBase(KbchatError):
    """An operation needs documents and the knowledge base has none."""


class ServiceUnavailable(KbchatError):
    """A service kbchat relies on (the database, Redis) cannot be reached right now."""
