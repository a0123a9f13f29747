"""A PXE storm against one ``bmprov serve`` (issue 12): 1,000 simulated installers, 500 at a
time, each fetches its install file and posts its five callbacks, from its own reserved IP.

Targets: 0 errors, 0 lost or duplicated events, callback p50 <= 10 ms and p99 <= 100 ms, and
install-file renders >= 1,000/s. Also measured, for the choice of stack: requests/s of a
trivial form POST on Starlette + uvicorn against the standard library's ``http.server``.

    .venv/bin/python bench/serve_bench.py [--nodes 1000] [--at-once 500] [--think 1.0]

Each installer waits a random 0..``--think`` s between its steps (real installers take
minutes; ``--think 0`` makes it a closed-loop saturation test). The client is a minimal
asyncio HTTP/1.1 client on the same 2 cores, binding 127.0.x.y per node. Ports: serve on
``BMPROV_TEST_PORT_BASE`` + 990 (default 32990), the comparison servers on +991/+992.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bmprov import tokens  # noqa: E402
from bmprov.config import load_config  # noqa: E402
from bmprov.setup_site import init_site  # noqa: E402
from bmprov.store import StateDB  # noqa: E402

BASE = int(os.environ.get("BMPROV_TEST_PORT_BASE", "32000"))
PORT, PORT_STARLETTE, PORT_STDLIB = BASE + 990, BASE + 991, BASE + 992
BMPROV = Path(sys.executable).parent / "bmprov"


async def request(
    port: int, method: str, path: str, body: bytes = b"", source: str = "127.0.0.1"
) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a fresh connection (installers' curl/wget do the same)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if body:
        head += "Content-Type: application/x-www-form-urlencoded\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + body)
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.partition(b"\r\n\r\n")[2]


def make_site(root: Path, count: int) -> tuple[Path, dict[str, tuple[str, str]]]:
    """A site with ``count`` nodes in os_provisioning; serial → (reserved IP, token)."""
    result = init_site(root / "site")
    config_path = result.config_path
    rows = ["Serial,MAC,OS,Notes"]
    for i in range(count):
        mac = f"52:54:00:77:{i // 256:02x}:{i % 256:02x}"
        rows.append(f"BN{i:05d},{mac},rocky9,provisioning_auto")
    (root / "p.csv").write_text("\n".join(rows) + "\n")
    env = {**os.environ, "BMPROV_CONFIG": str(config_path)}
    text = config_path.read_text().replace('subnet = "10.20.0.0/24"', 'subnet = "10.20.0.0/20"')
    config_path.write_text(text)
    for args in (
        ("import", str(root / "p.csv")),
        *(("advance", "--stage", s, "--all") for s in ("mounting", "networking")),
    ):
        subprocess.run([str(BMPROV), *args], env=env, check=True, capture_output=True)
    config = load_config(config_path)
    secret = tokens.load_secret(config)
    out: dict[str, tuple[str, str]] = {}
    with StateDB(config.state_path) as db:
        nodes = db.load_nodes()
        ids = [n.id for n in nodes]
        db.release_addresses(ids)  # loopback addresses: each installer calls from its own
        db.assign_addresses(
            [(n.id, f"127.0.{1 + i // 250}.{1 + i % 250}") for i, n in enumerate(nodes)]
        )
        installs = db.current_installs(ids)
        for i, n in enumerate(nodes):
            ip = f"127.0.{1 + i // 250}.{1 + i % 250}"
            out[n.serial] = (ip, tokens.token_for(secret, installs[n.id]).reveal())
    return config_path, out


async def storm(nodes: dict[str, tuple[str, str]], at_once: int, think: float) -> dict[str, list]:
    gate = asyncio.Semaphore(at_once)
    times: dict[str, list] = {"install": [], "callback": [], "errors": []}

    async def timed(
        kind: str, method: str, path: str, body: bytes, ip: str, stage: int = 0
    ) -> None:
        start = time.perf_counter()
        try:
            status, text = await request(PORT, method, path, body, ip)
        except OSError as exc:
            times["errors"].append(f"{path}: {exc}")
            return
        took = time.perf_counter() - start
        times[kind].append(took)
        if stage:
            times.setdefault(f"stage {stage}", []).append(took)
        if status != 200:
            times["errors"].append(f"{path}: {status} {text[:100]!r}")

    async def installer(serial: str, ip: str, token: str) -> None:
        async with gate:
            await timed("install", "GET", f"/install/{serial}?token={token}", b"", ip)
            for stage in (1, 2, 3, 4, 5):
                if think:
                    await asyncio.sleep(random.uniform(0, think))
                body = urlencode({"stage": stage, "token": token}).encode()
                await timed("callback", "POST", f"/callback/{serial}", body, ip, stage)

    await asyncio.gather(*(installer(s, ip, t) for s, (ip, t) in nodes.items()))
    return times


async def render_rate(nodes: dict[str, tuple[str, str]], seconds: float, conc: int) -> float:
    """Install-file GETs per second, closed loop with ``conc`` clients."""
    items = list(nodes.items())
    done = 0
    end = time.perf_counter() + seconds

    async def client(k: int) -> None:
        nonlocal done
        i = k
        while time.perf_counter() < end:
            serial, (ip, token) = items[i % len(items)]
            status, _ = await request(PORT, "GET", f"/install/{serial}?token={token}", b"", ip)
            assert status in (200, 404), status
            done += 1
            i += conc

    start = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(conc)))
    return done / (time.perf_counter() - start)


def render_in_process(config_path: Path, nodes: dict[str, tuple[str, str]]) -> float:
    """Install files rendered per second by serve's own code path (token check, state reads,
    render), without HTTP: what one core of serve can do."""
    from bmprov.serve.callbacks import Site
    from bmprov.serve.files import OnRequest
    from bmprov.store import open_state

    config = load_config(config_path)
    db = open_state(config.state_path)
    site = Site(config, db, config.settings.serve, tokens.load_secret(config))
    files = OnRequest(site)
    items = list(nodes.items())
    serial, (ip, token) = items[0]
    files.install_file(serial, token, ip)  # the first render runs the pykickstart check
    start = time.perf_counter()
    for serial, (ip, token) in items:
        got = files.install_file(serial, token, ip)
        assert got.text, got.refused
    rate = len(items) / (time.perf_counter() - start)
    db.close()
    return rate


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def start_serve(config_path: Path, log: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BMPROV_CONFIG": str(config_path)}
    proc = subprocess.Popen(
        [str(BMPROV), "serve", "--listen", f"0.0.0.0:{PORT}", "--workers", str(workers)],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            status, _ = asyncio.run(request(PORT, "GET", "/api/nodes/none"))
            if status == 404:
                return proc
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"serve did not start: {log.read_text()}")


def check_events(config_path: Path, serials: list[str]) -> tuple[int, int, int]:
    """(nodes with exactly stages 1-5 once each, lost, duplicated) and how many deployed."""
    config = load_config(config_path)
    good = lost = dup = 0
    with StateDB(config.state_path) as db:
        for serial in serials:
            node = db.node_by_serial(serial)
            assert node is not None
            kinds = [e.kind for e in db.events(node.id) if e.kind.startswith("stage")]
            want = [f"stage {i}" for i in range(1, 6)]
            lost += sum(1 for k in want if k not in kinds)
            dup += len(kinds) - len(set(kinds))
            good += kinds == want and node.stage == "deployed"
    return good, lost, dup


def compare_stacks(n: int = 3000, conc: int = 50) -> dict[str, float]:
    """req/s of a trivial form POST: Starlette+uvicorn vs http.server (threading)."""
    code = {
        "starlette": (
            "from starlette.applications import Starlette\n"
            "from starlette.responses import JSONResponse\nfrom starlette.routing import Route\n"
            "import uvicorn\n"
            "async def cb(r):\n    b = await r.body()\n    return JSONResponse({'ok': True})\n"
            "app = Starlette(routes=[Route('/cb', cb, methods=['POST'])])\n"
            f"uvicorn.run(app, host='127.0.0.1', port={PORT_STARLETTE}, log_level='error',"
            " access_log=False)\n"
        ),
        "http.server": (
            "from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer\n"
            "class H(BaseHTTPRequestHandler):\n"
            "    def do_POST(self):\n"
            "        self.rfile.read(int(self.headers['Content-Length']))\n"
            "        body = b'{\"ok\": true}'\n        self.send_response(200)\n"
            "        self.send_header('Content-Length', str(len(body)))\n"
            "        self.end_headers()\n        self.wfile.write(body)\n"
            "    def log_message(self, *a): pass\n"
            f"ThreadingHTTPServer(('127.0.0.1', {PORT_STDLIB}), H).serve_forever()\n"
        ),
    }
    out = {}
    for name, port in (("starlette", PORT_STARLETTE), ("http.server", PORT_STDLIB)):
        proc = subprocess.Popen([sys.executable, "-c", code[name]])
        try:
            time.sleep(1.5)

            async def run(port: int = port) -> float:
                count = 0

                async def client() -> None:
                    nonlocal count
                    while count < n:
                        count += 1
                        await request(port, "POST", "/cb", b"stage=1&token=x")

                start = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(conc)))
                return n / (time.perf_counter() - start)

            out[name] = asyncio.run(run())
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--at-once", type=int, default=500)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1, help="serve's worker processes")
    parser.add_argument("--no-compare", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        config_path, nodes = make_site(root, args.nodes)
        print(f"site: {args.nodes} nodes in os_provisioning ({time.perf_counter() - t0:.1f} s)")
        log = root / "serve.log"
        print(f"install-file renders in-process: {render_in_process(config_path, nodes):.0f}/s")
        proc = start_serve(config_path, log, args.workers)
        try:
            rate = asyncio.run(render_rate(nodes, 5.0, 20))
            print(f"install-file renders: {rate:.0f}/s (closed loop, 20 clients, 5 s)")
            t0 = time.perf_counter()
            times = asyncio.run(storm(nodes, args.at_once, args.think))
            wall = time.perf_counter() - t0
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        cb, inst = times["callback"], times["install"]
        print(
            f"storm: {args.nodes} installers, {args.at_once} at a time, think 0..{args.think} s:"
            f" {wall:.1f} s wall, {len(inst)} install files, {len(cb)} callbacks,"
            f" {len(times['errors'])} errors"
        )
        for e in times["errors"][:5]:
            print(f"  error: {e}")
        print(
            f"callback latency: p50 {pct(cb, 0.5):.1f} ms, p90 {pct(cb, 0.9):.1f} ms,"
            f" p99 {pct(cb, 0.99):.1f} ms, max {max(cb) * 1000:.1f} ms;"
            f" install file p50 {pct(inst, 0.5):.1f} ms, p99 {pct(inst, 0.99):.1f} ms"
        )
        print(
            "  per stage p50/p99 ms: "
            + ", ".join(
                f"{k} {pct(times[k], 0.5):.0f}/{pct(times[k], 0.99):.0f}"
                for k in sorted(times)
                if k.startswith("stage")
            )
        )
        good, lost, dup = check_events(config_path, list(nodes))
        print(
            f"events: {good}/{args.nodes} nodes deployed with stages 1-5 once each;"
            f" {lost} lost, {dup} duplicated; serve exit {code} after SIGTERM"
        )
        text = log.read_text()
        leaked = sum(1 for _, t in nodes.values() if t in text)
        print(f"serve log: {len(text.splitlines())} lines, {leaked} tokens in it")
    if not args.no_compare:
        rates = compare_stacks()
        print(
            "trivial form POST, 50 clients: "
            + ", ".join(f"{k} {v:.0f} req/s" for k, v in rates.items())
        )


if __name__ == "__main__":
    main()
