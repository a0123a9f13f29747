"""``bmprov check``: the whole site configuration checked now, not half-way through a run.

The schema is checked whenever ``bmprov.toml`` is loaded; what needs more than the schema
(address pools, the DHCP backend's key and paths, OS profiles and site templates) is checked by
each stage action's :meth:`~bmprov.stages.StageAction.check` just before it moves nodes.
:func:`check_site` runs every one of those checks at once, connecting to nothing, so an edited
config can be tried before the nightly run instead of by it. It also lists the automated nodes
still to install whose OS names no profile (networking would fail them).
"""

from __future__ import annotations

from dataclasses import dataclass

from bmprov import states as st
from bmprov.boot.osprofiles import site_profiles, unknown_os
from bmprov.config import Config
from bmprov.errors import BmprovError, ConfigError
from bmprov.stages import REGISTRY, ActionContext, StageAction
from bmprov.store import MIGRATIONS, StateDB, Store, open_store


@dataclass(frozen=True)
class SiteCheck:
    """One check: what was checked, and the problem found (None when it passed)."""

    name: str
    problem: str | None = None
    detail: str | None = None  # what was found when it passed (the state's backend, version)

    @property
    def ok(self) -> bool:
        """True when the check found nothing wrong."""
        return self.problem is None


def check_site(config: Config) -> list[SiteCheck]:
    """The state file, then every stage action's pre-run check (those that have one). A problem
    two stages share (the same DHCP settings, say) is spelled out once, under the first."""
    results = [SiteCheck("state file")]
    db: Store
    try:
        db = open_store(config)
    except BmprovError as exc:
        results[0] = SiteCheck("state file", str(exc))
        db = StateDB(":memory:")  # the other checks read no node
    else:
        results[0] = SiteCheck("state file", detail=state_summary(db))
    first: dict[str, str] = {}  # problem -> the check that reported it first
    with db:
        ctx = ActionContext(config, db, "check")
        for stage, cls in REGISTRY.items():
            if cls.check is StageAction.check and cls.__init__ is StageAction.__init__:
                continue  # nothing to check before this stage
            name = f"entering {stage}"
            try:
                cls(ctx).check()
            except BmprovError as exc:
                problem = str(exc)
                if problem in first:
                    problem = f"the same problem as {first[problem]}"
                first.setdefault(str(exc), name)
                results.append(SiteCheck(name, problem))
            else:
                results.append(SiteCheck(name))
        if results[0].ok:
            results.append(os_names(config, db))
    return results


def state_summary(db: Store) -> str:
    """``postgresql 15.8, schema 2/2: URL`` (backend, engine version, migrations, where)."""
    return (
        f"{db.backend} {db.backend_version()},"
        f" schema {len(db.applied_migrations())}/{len(MIGRATIONS)}: {db.location}"
    )


TO_INSTALL = (*st.PROVISIONING_PIPELINE[:-1], st.FAILED)  # every stage before deployed
LISTED = 10  # serials named per OS; the rest are counted


def os_names(config: Config, db: Store) -> SiteCheck:
    """Automated nodes still to install whose OS has no profile (networking would fail them)."""
    name = "node OS names"
    try:
        profiles, _ = site_profiles(config)
    except ConfigError as exc:
        return SiteCheck(name, f"not checked: {exc}")
    by_os: dict[str, list[str]] = {}
    for serial, os_name in db.automated_os(TO_INSTALL):
        if os_name not in profiles:
            by_os.setdefault(os_name, []).append(serial)
    if not by_os:
        return SiteCheck(name)
    parts = []
    for os_name, serials in sorted(by_os.items()):
        more = f" and {len(serials) - LISTED} more" if len(serials) > LISTED else ""
        parts.append(f"{', '.join(serials[:LISTED])}{more}: {unknown_os(os_name, profiles)}")
    count = sum(map(len, by_os.values()))
    return SiteCheck(name, f"{count} node(s) name an OS with no profile; " + " | ".join(parts))
