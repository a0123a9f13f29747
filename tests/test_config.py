"""bmprov.toml: discovery, schema validation naming the key, init and --detect."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bmprov.config import load_config, parse_config
from bmprov.errors import ConfigError


def test_starter_config_is_valid_and_points_at_the_state_file(cli, tmp_path: Path) -> None:
    run = cli("init", tmp_path / "s", "--json")
    assert run.exit_code == 0
    info = json.loads(run.stdout)
    config = load_config(Path(info["config"]))
    assert config.state_path == tmp_path / "s" / "bmprov.sqlite"
    assert Path(info["state"]).exists()
    text = Path(info["config"]).read_text()
    assert text.count("#") > 5  # commented


def test_init_keeps_an_existing_config(cli, tmp_path: Path) -> None:
    cli("init", tmp_path)
    (tmp_path / "bmprov.toml").write_text('state = "other.sqlite"\n')
    run = cli("init", tmp_path)
    assert "kept existing" in run.stdout
    assert (tmp_path / "other.sqlite").exists()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('stat = "x"', "(top level): unknown key(s): stat"),
        ("[import]\nmarker_field = 7", "import.marker_field: "),
        ('[network]\nserver_address = "x"\nbogus = 1', "network: unknown key(s): bogus"),
        ("state = [", "not valid TOML"),
    ],
)
def test_invalid_config_names_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(tmp_path / "bmprov.toml", toml)


def test_config_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "bmprov.toml").write_text('state = "a.sqlite"\n')
    (tmp_path / "b.toml").write_text('state = "b.sqlite"\n')
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.delenv("BMPROV_CONFIG", raising=False)
    assert load_config().state_path.name == "a.sqlite"
    monkeypatch.setenv("BMPROV_CONFIG", str(tmp_path / "b.toml"))
    assert load_config().state_path.name == "b.sqlite"
    assert load_config(tmp_path / "a" / "bmprov.toml").state_path.name == "a.sqlite"
    monkeypatch.setenv("BMPROV_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="BMPROV_CONFIG"):
        load_config()


def test_bad_config_via_cli_exit_2(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bmprov.toml"
    bad.write_text('[import]\nmarker_pattern = ""\n')
    run = cli("--config", bad, "nodes", "list")
    assert run.exit_code == 2
    assert "import.marker_pattern" in run.stderr


def test_init_detect_reads_the_interface(cli, tmp_path: Path) -> None:
    ns = f"bmp-init-{tmp_path.name[-6:]}".replace("_", "")[:15]
    if subprocess.run(["ip", "netns", "add", ns], check=False).returncode != 0:
        pytest.skip("cannot create a network namespace here")
    try:
        subprocess.run(
            ["ip", "-n", ns, "link", "add", "prov0", "type", "veth", "peer", "name", "prov1"],
            check=True,
        )
        subprocess.run(["ip", "-n", ns, "addr", "add", "10.233.7.2/24", "dev", "prov0"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "prov0", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "link", "set", "prov1", "up"], check=True)
        subprocess.run(["ip", "-n", ns, "route", "add", "default", "via", "10.233.7.1"], check=True)
        out = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                ns,
                str(Path(__import__("sys").executable).parent / "bmprov"),
                "init",
                str(tmp_path),
                "--detect",
                "--interface",
                "prov0",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        network = load_config(tmp_path / "bmprov.toml").section("network")
        assert network["interface"] == "prov0"
        assert network["server_address"] == "10.233.7.2"
        assert network["subnet"] == "10.233.7.0/24"
        assert network["gateway"] == "10.233.7.1"
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


def test_init_detect_unknown_interface(cli, tmp_path: Path) -> None:
    run = cli("init", tmp_path, "--detect", "--interface", "nope0")
    assert run.exit_code == 2
    assert "nope0" in run.stderr


def test_config_repr_never_shows_its_contents(tmp_path: Path) -> None:
    config = parse_config(tmp_path / "bmprov.toml", '[bmc]\npassword = "S3cretPassw0rd"\n')
    assert "S3cretPassw0rd" not in repr(config)
    assert "S3cretPassw0rd" not in str(config)
