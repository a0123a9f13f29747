"""Install tokens: derived (never stored), one open install per node, every refusal mode."""

from __future__ import annotations

import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from bmprov import tokens
from bmprov.errors import ConfigError
from bmprov.importing import import_sheet
from bmprov.nodes import get_node
from bmprov.store import Event
from bmprov.store.schema import tables
from tests.conftest import Site, write_csv

BOTH_BACKENDS = True  # state-using tests run on SQLite and PostgreSQL (conftest)


def _nodes(site: Site, db, n: int = 2):
    rows = [[f"SN{i}", f"02:31:00:00:00:{i:02x}"] for i in range(1, n + 1)]
    import_sheet(db, site.config, write_csv(site.dir / "s.csv", [["serial", "mac"], *rows]))
    return [get_node(db, f"SN{i}") for i in range(1, n + 1)]


def test_secret_is_made_once_0600_and_reused(site: Site) -> None:
    first = tokens.load_secret(site.config)
    path = site.dir / tokens.DEFAULT_SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.load_secret(site.config) == first
    assert first.reveal().decode() not in repr(first) + str(first)


def test_secret_from_env_and_bad_sources(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    site.write_config('[serve]\nsecret_env = "BMPROV_TEST_SECRET"')
    monkeypatch.setenv("BMPROV_TEST_SECRET", "tiny-Qz9")
    with pytest.raises(ConfigError, match=r"\$BMPROV_TEST_SECRET is unset or shorter") as err:
        tokens.load_secret(site.config)
    assert "tiny-Qz9" not in str(err.value)
    monkeypatch.setenv("BMPROV_TEST_SECRET", "x" * 40)
    assert tokens.load_secret(site.config).reveal() == b"x" * 40


def test_token_is_derived_and_verifies(site: Site) -> None:
    secret = tokens.load_secret(site.config)
    with site.db() as db:
        a, b = _nodes(site, db)
        installs = db.open_installs([(a.id, a.serial, "rocky9"), (b.id, b.serial, None)], "9999")
        token = tokens.token_for(secret, installs[a.id]).reveal()
        assert token == tokens.token_for(secret, db.install(installs[a.id].id)).reveal()
        assert token.split(".")[0] == str(installs[a.id].id)
        assert tokens.verify(db, secret, "SN1", token).id == installs[a.id].id
        state = repr([db.dump_table(t) for t in tables()]).encode()  # every stored row
        if site.backend == "sqlite":  # and the bytes of the file (free pages, WAL) too
            path = site.config.state_path
            state += path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
        assert token.encode() not in state and token.split(".")[1].encode() not in state


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("missing", 401, "missing"),
        ("malformed", 401, "malformed"),
        ("unknown", 403, "unknown"),
        ("wrong", 403, "wrong"),
        ("other node", 403, "another node"),
        ("superseded", 403, "superseded"),
        ("completed", 403, "completed"),
        ("expired", 403, "expired"),
    ],
)
def test_every_refusal(site: Site, case: str, status: int, reason: str) -> None:
    secret = tokens.load_secret(site.config)
    with site.db() as db:
        a, b = _nodes(site, db)
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat(timespec="seconds")
        installs = db.open_installs([(a.id, a.serial, None), (b.id, b.serial, None)], later)
        token = tokens.token_for(secret, installs[a.id]).reveal()
        serial, now = "SN1", None
        if case == "missing":
            token = ""
        elif case == "malformed":
            token = "not-a-token"
        elif case == "unknown":
            token = "999." + token.split(".")[1]
        elif case == "wrong":
            token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        elif case == "other node":
            serial = "SN2"
        elif case == "superseded":
            db.open_installs([(a.id, a.serial, None)], later)
        elif case == "completed":
            assert db.end_installs([a.id], "completed") == 1
        elif case == "expired":
            now = datetime.now(UTC) + timedelta(hours=2)
        with pytest.raises(tokens.Refused) as err:
            tokens.verify(db, secret, serial, token, now)
        assert err.value.status == status and reason in err.value.reason
        assert token.split(".")[-1] not in str(err.value) or case in ("missing", "malformed")


def test_one_open_install_progress_forward_only_and_events(site: Site) -> None:
    with site.db() as db:
        (a,) = _nodes(site, db, 1)
        first = db.open_installs([(a.id, a.serial, None)], "9999")[a.id]
        second = db.open_installs([(a.id, a.serial, None)], "9999")[a.id]
        assert db.install(first.id).end_reason == "superseded"
        assert db.current_installs() == {a.id: second}
        assert db.record_progress(second.id, 2) is True
        assert db.record_progress(second.id, 2) is False  # duplicate: harmless
        assert db.record_progress(second.id, 1) is False  # out of order: only forward
        assert db.record_progress(first.id, 3) is False  # superseded: nothing changes
        assert db.install(second.id).progress == 2
        db.add_events([Event(a.id, "callback", "stage 2", "10.0.0.5", second.id)])
        (event,) = db.events(a.id)
        assert (event.kind, event.detail, event.source, event.install_id) == (
            "callback",
            "stage 2",
            "10.0.0.5",
            second.id,
        )
        assert event.at and event.id
        with pytest.raises(Exception, match="append-only"):
            db.conn.execute("UPDATE events SET kind = 'x'")


def test_concurrent_creation_keeps_one_secret(site: Site) -> None:
    path = site.dir / tokens.DEFAULT_SECRET_FILE
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                tokens.load_secret(site.config)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    assert len(path.read_bytes().strip()) >= 40
    assert tokens.load_secret(site.config).reveal() == path.read_bytes().strip()
