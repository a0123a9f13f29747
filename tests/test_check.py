"""``bmprov check``: the site's configuration checked before a run, connecting to nothing."""

from __future__ import annotations

import json

from bmprov.sitecheck import check_site
from tests.conftest import Site
from tests.test_hostile_config import omapi_site


def test_a_fresh_site_passes(cli, site: Site) -> None:
    run = cli("check", "--json")
    assert run.exit_code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True
    names = [c["name"] for c in report["checks"]]
    assert names[0] == "state file" and "entering networking" in names
    assert all(c["ok"] for c in report["checks"])


def test_every_problem_is_listed_then_exit_2(cli, site: Site) -> None:
    site.write_config('[[pools]]\nname = "bad"\nsubnet = "10.231.9.1/24"')
    site.config.state_path.unlink()
    run = cli("check")
    assert run.exit_code == 2
    assert "problem state file" in run.stdout and "run `bmprov init` first" in run.stdout
    assert "host bits set" in run.stdout
    assert "entering decommissioning: the same problem as entering networking" in run.stdout
    assert f"Error: {site.config_path}: 3 check(s) found a problem" in run.stderr


def test_a_missing_omapi_key_is_found_without_contacting_dhcpd(site: Site, tmp_path) -> None:
    omapi_site(site, tmp_path / "missing.key")  # its server is 127.0.0.1:1, never contacted
    [state, *stages] = check_site(site.config)
    assert state.ok
    assert next(c.name for c in stages if not c.ok) == "entering networking"
    assert "missing.key" in (stages[0].problem or "")
