"""Errors of the contracts layer.

ContractsError
└── BuildError  (compiler missing, compile errors, bad source tree, unsupported output)
"""


class ContractsError(Exception):
    """Base class of every error raised by powerverse.contracts."""


class BuildError(ContractsError):
    """Solidity sources could not be compiled into artifacts."""
