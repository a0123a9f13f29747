"""The virtual-rack demo (``scripts/demo.sh``): QEMU machines from a sheet to *deployed*.

    .venv/bin/python scripts/lab_demo.py [--nodes 3] [--uefi 1] [--dir demo-lab]

Runs what an operator would (each command printed as ``$ bmprov …``): ``lab up``, ``import``
of the lab's purchases sheet, ``advance`` to *mounting* and *networking* (real reservations;
entering *os_provisioning* sets PXE and powers the machines on through their virtual BMCs, in
waves), then follows every node live — its stage, its installer's sub-stage as ``bmprov
serve`` records the callbacks, and the last line of its serial console — until all are
*deployed*, prints the status table and tears the lab down (also on Ctrl-C, SIGTERM or any
failure).

Exit 0: every node deployed; 1: a node failed or the time ran out; 130: interrupted (the lab is
torn down all the same); 3: this machine cannot run a
lab (not root, a package or network namespaces missing) — the reason is printed and demo.sh
runs the file-only demo instead.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bmprov.config import load_config
from bmprov.errors import InputError
from bmprov.lab import rack
from bmprov.serve.views import Filter, nodes_view
from bmprov.store import open_state

ROOT = Path(__file__).resolve().parent.parent
BMPROV = str(ROOT / ".venv/bin/bmprov")
UNAVAILABLE = 3
STEPS = 6  # powered on, installer stages 1-4, deployed
ANSI = re.compile(r"\x1b\[[0-9;=?]*[A-Za-z]")
STANDIN = re.compile(r"^\[bmprov-standin [0-9.]+s\] ")


def unavailable_reason() -> str | None:
    """Why this machine cannot run a virtual rack, or None when it can."""
    try:
        rack.check_host()  # root and every package (QEMU, OVMF, dhcpd, tftpd...)
    except InputError as exc:
        return str(exc)
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun: the machines' tap devices cannot be made"
    probe = f"bmpL-probe-{os.getpid()}"
    made = subprocess.run(
        ["ip", "netns", "add", probe], capture_output=True, text=True, check=False
    )
    if made.returncode != 0:
        return f"network namespaces are not available here ({made.stderr.strip()})"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def bmprov(*args: str, check: bool = True, quiet: bool = False) -> int:
    print(f"\n\033[1m$ bmprov {' '.join(args)}\033[0m" if sys.stdout.isatty() else
          f"\n$ bmprov {' '.join(args)}", flush=True)  # fmt: skip
    out = subprocess.DEVNULL if quiet else None
    code = subprocess.run([BMPROV, *args], stdout=out, check=False).returncode
    if check and code != 0:
        raise SystemExit(f"bmprov {args[0]} failed (exit {code})")
    return code


def snapshot(config: Path) -> dict[str, dict[str, Any]]:
    """serial → what serve's API shows for the node (stage, install sub-stage, IP)."""
    site = load_config(config)
    with open_state(site.state_path, site.busy_timeout_ms) as db:
        return {n["serial"]: n for n in nodes_view(db, Filter(None, None, None))}


def describe(node: dict[str, Any]) -> tuple[int, str]:
    """(steps done of STEPS, words) for one node."""
    stage, sub = node["stage"], node["install_stage"] or 0
    if stage == "deployed":
        return STEPS, "deployed"
    if stage == "installing":
        return 1 + min(sub, 4), f"installing {sub}/5"
    if stage == "os_provisioning":
        return 1, "os_provisioning (PXE)"
    if stage == "failed":
        return 0, f"failed: {node['stage_reason']}"
    return 0, stage


def console_tail(path: Path) -> str:
    """The last meaningful line of a machine's serial console."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    lines = [STANDIN.sub("", ANSI.sub("", line).strip()) for line in text.splitlines()]
    lines = [line for line in lines if len(line) > 3 and line.isprintable()]
    return lines[-1][:40] if lines else ""


def follow(lab: Path, machines: list[dict[str, Any]], timeout: float) -> bool:
    """Every node's progress until all are deployed (True), one failed or time ran out."""
    config = lab / "bmprov.toml"
    deadline = time.monotonic() + timeout
    start = time.monotonic()

    def done(nodes: dict[str, dict[str, Any]]) -> bool | None:
        stages = {n["stage"] for n in nodes.values()}
        if "failed" in stages:
            return False
        return True if stages == {"deployed"} else None

    if sys.stdout.isatty():
        columns = (TextColumn("{task.fields[name]}"), BarColumn(bar_width=10),
                   TimeElapsedColumn(), TextColumn("{task.description}"))  # fmt: skip
        with Progress(*columns, refresh_per_second=4) as bars:
            tasks = {m["serial"]: bars.add_task("", total=STEPS,
                                                name=f"{m['serial']} {m['firmware']:<4}")
                     for m in machines}  # fmt: skip
            while True:
                nodes = snapshot(config)
                for m in machines:
                    steps, words = describe(nodes[m["serial"]])
                    tail = console_tail(Path(m["console"]))
                    text = words if steps == STEPS else f"{words:<22} [dim]{escape(tail)}[/dim]"
                    bars.update(tasks[m["serial"]], completed=steps, description=text)
                result = done(nodes)
                if result is not None or time.monotonic() > deadline:
                    return bool(result)
                time.sleep(0.5)
    seen: dict[str, str] = {}
    while True:
        nodes = snapshot(config)
        for m in machines:
            _, words = describe(nodes[m["serial"]])
            if seen.get(m["serial"]) != words:
                seen[m["serial"]] = words
                print(f"[{time.monotonic() - start:6.1f} s] {m['serial']} ({m['firmware']}): "
                      f"{words}", flush=True)  # fmt: skip
        result = done(nodes)
        if result is not None or time.monotonic() > deadline:
            return bool(result)
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--uefi", type=int, default=1)
    parser.add_argument("--dir", default=os.environ.get("DEMO_LAB_DIR", "demo-lab"))
    parser.add_argument("--port-base", default=os.environ.get("DEMO_PORT_BASE", "16230"))
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    reason = unavailable_reason()
    if reason:
        print(f"virtual rack unavailable on this machine: {reason}", flush=True)
        return UNAVAILABLE
    lab = Path(args.dir).resolve()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    t0 = time.monotonic()
    ok = interrupted = False
    try:
        bmprov("lab", "up", "--nodes", str(args.nodes), "--uefi", str(args.uefi),
               "--dir", str(lab), "--port-base", str(args.port_base), quiet=True)  # fmt: skip
        status = rack.status(lab) or {}
        machines = status.get("machines", [])
        print(f"{len(machines)} QEMU machines, each with a virtual IPMI BMC; dhcpd, in.tftpd "
              f"and bmprov serve in namespace {status.get('netns')}", flush=True)  # fmt: skip
        c = ("--config", str(lab / "bmprov.toml"))
        bmprov(*c, "import", str(lab / "purchases.csv"))
        bmprov(*c, "advance", "--stage", "mounting", "--all")
        bmprov(*c, "advance", "--stage", "networking", "--all")
        print("\nfollowing the machines (stage as bmprov serve records the installer's "
              "callbacks | serial console):", flush=True)  # fmt: skip
        ok = follow(lab, machines, args.timeout)
        bmprov(*c, "nodes", "list", check=False)
        took = time.monotonic() - t0
        print(f"\n{'every node deployed' if ok else 'NOT every node deployed'} "
              f"in {took:.0f} s", flush=True)  # fmt: skip
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted", flush=True)
    finally:
        bmprov("lab", "down", "--dir", str(lab), check=False, quiet=True)
        print(f"lab torn down (site files and logs stay in {lab})", flush=True)
    return 130 if interrupted else 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
