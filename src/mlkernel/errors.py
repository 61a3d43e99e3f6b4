"""The exception tree of mlkernel.

Every error a user can cause is an :class:`MLKernelError`. Each subclass carries the
exit code the CLI returns and the HTTP status the REST API answers with; the entry
points translate them in exactly one place (``cli.main`` and the server's handler).
Messages are one line and name the fix.

::

    MLKernelError                      exit 1   HTTP 500
    ├── UsageError                     exit 2   HTTP 400   bad arguments or input
    │   ├── InvalidNameError           exit 2   HTTP 400   a name or reference that cannot be used
    │   └── ConfigError                exit 3   HTTP 500   mlkernel.toml is wrong
    ├── NotFoundError                  exit 4   HTTP 404   an unknown project, artifact, run or alias
    ├── ConflictError                  exit 5   HTTP 409   the operation clashes with what exists
    ├── IntegrityError                 exit 6   HTTP 500   an object file is missing or altered
    ├── StorageError                   exit 7   HTTP 503   the metadata database cannot be used
    └── PermissionDeniedError          exit 8   HTTP 403   the caller may not do this
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConflictError",
    "IntegrityError",
    "InvalidNameError",
    "MLKernelError",
    "NotFoundError",
    "PermissionDeniedError",
    "StorageError",
    "UsageError",
]


class MLKernelError(Exception):
    """Root of every error mlkernel raises on purpose."""

    exit_code: int = 1
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(MLKernelError):
    exit_code = 2
    http_status = 400


class InvalidNameError(UsageError):
    pass


class ConfigError(UsageError):
    exit_code = 3
    http_status = 500


class NotFoundError(MLKernelError):
    exit_code = 4
    http_status = 404


class ConflictError(MLKernelError):
    exit_code = 5
    http_status = 409


class IntegrityError(MLKernelError):
    exit_code = 6
    http_status = 500


class StorageError(MLKernelError):
    exit_code = 7
    http_status = 503


class PermissionDeniedError(MLKernelError):
    exit_code = 8
    http_status = 403
