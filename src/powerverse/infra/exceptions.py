"""Errors of the provider agent.

InfraError
 ├── ToolMissing          a system tool (qemu, bwrap, qemu-img...) is not installed
 ├── DriverError          a VM or task operation failed
 │    ├── InstanceNotFound
 │    ├── InstanceExists
 │    ├── InvalidInstanceState   (e.g. resume of a running VM)
 │    └── UnsupportedOperation
 ├── SandboxError         a task could not be started (its own failures are results)
 ├── StorageError         images, volumes, objects
 │    └── NotFound
 ├── AuthError            a refused API request (bad, replayed, expired or foreign signature)
 └── ConfigError          a malformed provider configuration or template
"""

from __future__ import annotations


class InfraError(Exception):
    """Base class of every provider-agent error."""


class ToolMissing(InfraError):
    """A required system tool is not installed."""


class DriverError(InfraError):
    """A VM or task operation failed."""


class InstanceNotFound(DriverError):
    """No instance with that id on this host."""


class InstanceExists(DriverError):
    """An instance with that id already exists."""


class InvalidInstanceState(DriverError):
    """The operation does not apply to the instance's current state."""


class UnsupportedOperation(DriverError):
    """The driver (or this host) cannot do that."""


class SandboxError(InfraError):
    """A task could not be started in the sandbox."""


class StorageError(InfraError):
    """An image, volume or object operation failed."""


class NotFound(StorageError):
    """No image, volume or object with that id."""


class AuthError(InfraError):
    """An API request was refused: bad, replayed, expired or foreign signature."""


class ConfigError(InfraError):
    """A malformed provider configuration or orchestration template."""
