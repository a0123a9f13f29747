"""The ``file`` backend: reservations in a local JSON file, no daemon (the README demo).

``[dhcp.file] path`` (default ``dhcp-reservations.json`` next to bmprov.toml) is rewritten
atomically on commit. A site that runs its DHCP server from configuration management exports
from it with ``bmprov dhcp export``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bmprov.dhcp import Reservation
from bmprov.dhcp.table import TableBackend
from bmprov.errors import DriverError
from bmprov.fsutil import write_if_changed

DEFAULT_PATH = "dhcp-reservations.json"


class FileBackend(TableBackend):
    """Reservations in one JSON document: ``{"reservations": [{mac, ip, ...}, ...]}``."""

    kind = "file"

    @property
    def path(self) -> Path:
        """The reservations file."""
        return self.settings.config.resolve(self.settings.sub("file").get("path", DEFAULT_PATH))

    @property
    def table_path(self) -> Path:
        """Rewritten whole on commit."""
        return self.path

    @property
    def lock_path(self) -> Path:
        """``.dhcp-reservations.json.lock`` beside it."""
        return self.path.with_name(f".{self.path.name}.lock")

    @property
    def where(self) -> str:
        """This backend in messages."""
        return f"reservations file {self.path}"

    def open(self) -> None:
        """Lock and load (the lock file needs the file's directory)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DriverError(f"cannot create the directory of {self.where}: {exc}") from None
        super().open()

    def _load(self) -> list[Reservation]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return [Reservation.from_dict(r).checked() for r in data.get("reservations", [])]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError, AttributeError, DriverError) as exc:
            raise DriverError(f"{self.where} is unreadable: {exc}") from None

    def _save(self, reservations: list[Reservation]) -> None:
        doc = {"reservations": [r.to_dict() for r in reservations]}
        try:
            write_if_changed(self.path, json.dumps(doc, indent=1) + "\n")
        except OSError as exc:
            raise DriverError(f"cannot write {self.where}: {exc}") from None
