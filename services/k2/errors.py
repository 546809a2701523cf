"""The one error root of the platform: every K2 error is a K2Error."""


class K2Error(Exception):
    """Base class of every error K2 raises on purpose."""


class ConfigError(K2Error):
    """Configuration is missing or invalid."""


class ContractError(K2Error):
    """A schema or catalogue entry breaks K2's contract rules."""


class StackError(K2Error):
    """The local stack could not be installed, started, probed or stopped."""
