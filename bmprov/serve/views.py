"""What the status page and the read API show: per node its stage, install sub-stage, IP, last
event and time in stage, and counts per stage. Built from three queries, whatever the size of
the site; no secret (token, password hash, BMC password, install options) is ever included."""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bmprov.nodes import Node, Selection
from bmprov.states import ALL_STAGES, PROVISIONING_PIPELINE
from bmprov.store import Event, Install, Store

REFRESH_SECONDS = 10
STAGE_ORDER = [*PROVISIONING_PIPELINE, *sorted(ALL_STAGES - set(PROVISIONING_PIPELINE))]


@dataclass(frozen=True)
class Filter:
    """The status page's and ``/api/nodes``' query: site, rack, stage (each optional)."""

    site: str | None = None
    rack: str | None = None
    stage: str | None = None

    def selection(self) -> Selection:
        """The store selection (all nodes when nothing is given)."""
        return Selection(site=self.site, rack=self.rack, from_stage=self.stage, all=True)


def nodes_view(db: Store, flt: Filter, now: datetime | None = None) -> list[dict[str, Any]]:
    """One JSON-ready summary per selected node."""
    moment = now or datetime.now(UTC)
    nodes = db.load_nodes(flt.selection())
    installs = db.current_installs()
    last = db.last_events()
    return [summary(n, installs.get(n.id), last.get(n.id), moment) for n in nodes]


def summary(
    node: Node, install: Install | None, event: Event | None, now: datetime
) -> dict[str, Any]:
    """A node as the API shows it (no install options: they hold the root password hash)."""
    return {
        "serial": node.serial,
        "stage": node.stage,
        "failed_stage": node.failed_stage,
        "stage_reason": node.stage_reason,
        "install_stage": install.progress if install else None,
        "install_stage_at": install.progress_at if install else None,
        "ip": node.ip,
        "macs": list(node.macs),
        "hostname": node.hostname,
        "os": node.os,
        "site": node.site,
        "rack": node.rack,
        "stage_changed_at": node.stage_changed_at,
        "seconds_in_stage": _seconds(node.stage_changed_at, now),
        "last_event": event_dict(event) if event else None,
    }


def event_dict(event: Event) -> dict[str, Any]:
    """An event as the API shows it."""
    return {
        "at": event.at,
        "kind": event.kind,
        "detail": event.detail,
        "source": event.source,
        "install_id": event.install_id,
    }


def counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Stage → number of nodes, in lifecycle order (stages with none left out)."""
    seen = Counter(row["stage"] for row in rows)
    return {stage: seen[stage] for stage in STAGE_ORDER if seen[stage]}


def page(rows: list[dict[str, Any]], flt: Filter) -> str:
    """The status page: counts, then one row per node; reloads itself."""
    e = html.escape
    total = " ".join(
        f'<span class="count"><b>{e(stage)}</b> {n}</span>' for stage, n in counts(rows).items()
    )
    body = "\n".join(_row(row) for row in rows)
    shown = ", ".join(f"{k}={v}" for k, v in vars(flt).items() if v) or "all nodes"
    return _PAGE.format(
        refresh=REFRESH_SECONDS,
        counts=total or "no nodes",
        shown=e(shown),
        n=len(rows),
        rows=body,
        site=e(flt.site or ""),
        rack=e(flt.rack or ""),
        stage=e(flt.stage or ""),
    )


def _row(row: dict[str, Any]) -> str:
    e = html.escape
    event = row["last_event"]
    last = f"{e(event['kind'])} at {e(event['at'])}" if event else ""
    sub = "" if row["install_stage"] is None else str(row["install_stage"])
    stage = row["stage"] + (f" ({row['failed_stage']})" if row["failed_stage"] else "")
    cells = (
        f'<td class="serial">{e(row["serial"])}</td>',
        f'<td class="stage">{e(stage)}</td>',
        f"<td>{e(sub)}</td>",
        f"<td>{e(row['ip'] or '')}</td>",
        f"<td>{e(row['site'] or '')}</td>",
        f"<td>{e(row['rack'] or '')}</td>",
        f"<td>{last}</td>",
        f"<td>{_duration(row['seconds_in_stage'])}</td>",
        f"<td>{e(row['stage_reason'] or '')}</td>",
    )
    return "<tr>" + "".join(cells) + "</tr>"


def _seconds(stamp: str, now: datetime) -> int | None:
    if not stamp:
        return None
    moment = datetime.fromisoformat(stamp)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return max(0, int((now - moment).total_seconds()))


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return ""
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{refresh}">
<title>bmprov status</title>
<style>
body {{ font-family: sans-serif; margin: 1em; }}
table {{ border-collapse: collapse; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; text-align: left; white-space: nowrap; }}
.count {{ margin-right: 1em; }}
</style></head>
<body>
<h1>bmprov status</h1>
<p id="counts">{counts}</p>
<form method="get">site <input name="site" value="{site}"> rack <input name="rack" value="{rack}">
stage <input name="stage" value="{stage}"> <button>filter</button></form>
<p>{n} node(s): {shown}; refreshes every {refresh} s</p>
<table id="nodes">
<tr><th>serial</th><th>stage</th><th>install stage</th><th>IP</th><th>site</th><th>rack</th>
<th>last event</th><th>time in stage</th><th>reason</th></tr>
{rows}
</table></body></html>
"""
