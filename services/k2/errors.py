"""The one error root of the platform: every K2 error is a K2Error.

The kinds below say what went wrong from the user's side; the command line maps each kind to
one exit code (`k2.cli.failures`), so a script can tell a typo from a stopped stack.
"""


class K2Error(Exception):
    """Base class of every error K2 raises on purpose."""


class ConfigError(K2Error):
    """Configuration is missing or invalid."""


class StackNotFoundError(ConfigError):
    """No `K2_*` variables are set and no local stack is running."""


class ContractError(K2Error):
    """A schema or catalogue entry breaks K2's contract rules."""


class StackError(K2Error):
    """The local stack could not be installed, started, probed or stopped."""


class UsageError(K2Error):
    """The input cannot be used as given: a malformed time, an unknown zone, a bad option."""


class NotFoundError(K2Error):
    """What was asked for does not exist: a table, a snapshot, a symbol."""


class ServiceUnavailableError(K2Error):
    """A service of the stack did not answer (stopped, wrong address, timed out)."""


class AuthenticationError(K2Error):
    """A service refused the credentials it was given."""
