"""The dataset service behind ``k.data`` (being built for the datasets issue)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlkernel.kernel import Kernel


class DataService:
    def __init__(self, kernel: Kernel) -> None:
        self._kernel = kernel
