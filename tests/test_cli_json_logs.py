"""Machine output and logs: every --json command prints one JSON document on failure too;
-v logs each batch step, -vv each peer exchange; no secret ever reaches a log line."""

from __future__ import annotations

import json

import pytest
from passlib.hash import sha512_crypt

from tests.conftest import write_csv

ROOT_PASSWORD = "Unguessable-Root9"  # a plain cell: stored and rendered only as its hash
HEADER = ["serial", "mac", "os", "hostname", "notes", "root password"]
ROWS = [
    ["SN1", "52:54:00:00:00:01", "rocky9", "web1", "provisioning_auto", ROOT_PASSWORD],
    ["SN2", "52:54:00:00:00:02", "debian12", "web2", "provisioning_auto", ROOT_PASSWORD],
    ["SN3", "", "rocky9", "web3", "provisioning_auto", ""],
]


def _json(run) -> dict:
    docs = run.stdout.strip()
    return json.loads(docs)  # exactly one document, or this raises


def test_refused_import_prints_its_problems_as_json(site, cli) -> None:
    sheet = write_csv(
        site.dir / "bad.csv", [HEADER, ["Default string", "zz", "rocky9", "w1", "", ""]]
    )
    run = cli("import", sheet, "--json")
    assert run.exit_code == 2
    doc = _json(run)
    assert doc["ok"] is False and doc["exit_code"] == 2
    assert "nothing was imported" in doc["error"]
    columns = {(p["row"], p["column"]) for p in doc["problems"]}
    assert (2, "serial") in columns
    assert all(p["file"] == str(sheet) for p in doc["problems"])
    assert "placeholder serial" in run.stderr  # people still read stderr


@pytest.mark.parametrize(
    "args",
    [
        ("nodes", "show", "NOPE", "--json"),
        ("history", "NOPE", "--json"),
        ("nodes", "list", "--stage", "bogus", "--json"),
        ("advance", "--stage", "bogus", "--all", "--json"),
        ("advance", "--stage", "mounting", "--json"),  # no selection
        ("advance", "--stagex", "mounting", "--json"),  # a usage error
        ("power", "status", "-s", "NOPE", "--json"),
        ("boot", "pxe", "-s", "NOPE", "--json"),
        ("pxe", "clear", "NOPE", "--json"),
        ("pxe", "render", "--yes", "--json"),
        ("ks", "validate", "NOPE", "--all", "--json"),
        ("dhcp", "list", "--json", "--bogus"),
        ("import", "missing.csv", "--json"),
        ("init", ".", "--interface", "eth9", "--json"),
    ],
)
def test_every_json_command_fails_with_one_json_document(site, cli, args) -> None:
    run = cli(*args)
    assert run.exit_code == 2, (run.stdout, run.stderr)
    doc = _json(run)
    assert doc["ok"] is False and doc["exit_code"] == 2 and doc["error"]


def test_check_json_prints_one_document_when_it_fails(site, cli) -> None:
    site.config_path.write_text(
        site.config_path.read_text().replace('subnet = "10.20.0.0/24"', 'subnet = "127.0.0.0/8"')
    )
    run = cli("check", "--json")
    assert run.exit_code == 2
    assert "checks" in _json(run)


def test_verbose_logs_steps_and_exchanges_and_never_a_secret(site, cli) -> None:
    sheet = write_csv(site.dir / "nodes.csv", [HEADER, *ROWS])
    runs = [cli("-vv", "import", sheet), cli("-vv", "advance", "--stage", "mounting", "--all")]
    net = cli("-vv", "advance", "--stage", "networking", "--all")
    runs += [net, cli("-vv", "pxe", "render", "--force"), cli("-vv", "ks", "validate", "--json")]
    logs = net.stderr
    for step in ("selected", "allocate: 2 address(es)", "reserve: 2 reservation(s) on file"):
        assert f"INFO bmprov.networking: networking: {step}" in logs or step in logs, logs
    assert "SN3 failed at allocate: no MAC address known yet" in logs  # each node's result
    assert "DEBUG bmprov.dhcp.table:" in logs and "writing 2 reservation(s)" in logs
    with site.db() as db:
        stored = db.query("SELECT install_options FROM nodes WHERE serial = 'SN1'")[0][0]
    hashed = json.loads(stored)["root_password_hash"]
    assert sha512_crypt.verify(ROOT_PASSWORD, hashed)
    for run in runs:
        for text in (run.stdout, run.stderr):
            assert ROOT_PASSWORD not in text
            assert hashed not in text
            assert hashed.split("$")[-1] not in text  # not even the hash's digest
    quiet = cli("-v", "advance", "--stage", "networking", "--all")
    assert "INFO" in quiet.stderr and "DEBUG" not in quiet.stderr
    assert cli("advance", "--stage", "networking", "--all").stderr == ""
