"""Render records (:mod:`bmprov.boot.digests`): a clean node is checked by a read and a hash,
never rendered; any change of a rendering input is still found as stale, an edited or deleted
file still as drift; the records live in the state on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bmprov.boot import digests, tokenctx
from bmprov.boot.writer import NodeFileWriter
from bmprov.lifecycle import advance
from bmprov.nodes import Selection
from bmprov.reconcile import reconcile
from bmprov.resources import data_dir
from bmprov.stages import ActionContext
from bmprov.store import FileDigest, Store
from tests.conftest import Site, raw_sql
from tests.test_reconcile import load, snapshot
from tests.test_store_backends import add

BOTH_BACKENDS = True


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Serials of the nodes a reconcile renders for comparison."""
    seen: list[str] = []
    install, local = NodeFileWriter._render_install, NodeFileWriter._render_local

    def counted_install(self, node, ip, entries=True):  # type: ignore[no-untyped-def]
        seen.append(node.serial)
        return install(self, node, ip, entries)

    def counted_local(self, node):  # type: ignore[no-untyped-def]
        seen.append(node.serial)
        return local(self, node)

    monkeypatch.setattr(NodeFileWriter, "_render_install", counted_install)
    monkeypatch.setattr(NodeFileWriter, "_render_local", counted_local)
    yield seen


def check(site: Site, fix: bool = False) -> set[tuple[str, str | None]]:
    with site.db() as db:
        report = reconcile(site.config, db, fix=fix, bmc=False)
    return {(f.kind, f.node) for f in report.findings if f.plane == "boot"}


def test_store_round_trip_and_upsert(store: Store) -> None:
    add(store, 2)
    ids = [n.id for n in store.load_nodes()]
    first = FileDigest("k1", ("/a/x", "/a/y"), "d1")
    store.save_file_digests([(ids[0], first), (ids[1], FileDigest("k", ("/b",), "d"))])
    store.save_file_digests([(ids[1], FileDigest("k2", ("/c",), "d2")), (999_999, first)])
    assert store.file_digests() == {ids[0]: first, ids[1]: FileDigest("k2", ("/c",), "d2")}


def test_clean_nodes_are_hashed_not_rendered(site: Site, renders: list[str]) -> None:
    load(site)  # networking records what its (forked or threaded) writer rendered
    renders.clear()
    with site.db() as db:
        assert len(db.file_digests()) == 3
    before = snapshot(site)
    assert check(site) == set()
    assert renders == []
    assert snapshot(site) == before
    with site.db() as db:  # without the records: every node rendered, as before they existed
        db.file_digests = dict  # type: ignore[method-assign]
        assert reconcile(site.config, db, bmc=False).findings == []
    assert sorted(renders) == ["SN1", "SN2", "SN3"]


def site_template(site: Site) -> None:
    """A site pxelinux install entry that renders other bytes than the shipped one."""
    root = site.dir / "tpl"
    (root / "pxe_templates" / "pxelinux").mkdir(parents=True)
    shipped = data_dir("pxe_templates") / "pxelinux" / "install.j2"
    edited = shipped.read_text() + "# site edit\n"
    (root / "pxe_templates" / "pxelinux" / "install.j2").write_text(edited)
    text = site.config_path.read_text()
    site.config_path.write_text(text.replace("dirs = []", f'dirs = ["{root}"]', 1))


def new_hostname(site: Site) -> None:
    with site.db() as db:
        raw_sql(db, "UPDATE nodes SET hostname = 'renamed' WHERE serial = 'SN2'")


def new_token(site: Site) -> None:
    with site.db() as db:
        tokenctx.open_for(site.config, db, db.load_nodes(Selection(serials=("SN2",))))


def new_code(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(digests, "code_digest", lambda: "another bmprov")


ALL = {"SN1", "SN2", "SN3"}


@pytest.mark.parametrize(
    ("change", "stale", "rendered"),
    [
        (site_template, ALL, ALL),
        (new_hostname, {"SN2"}, {"SN2"}),
        (new_token, {"SN2"}, {"SN2"}),
        (new_code, set(), ALL),  # rendered again (other inputs), same bytes: nothing to report
    ],
)
def test_a_changed_input_is_rendered_and_found_stale(
    site: Site,
    renders: list[str],
    monkeypatch: pytest.MonkeyPatch,
    change,  # type: ignore[no-untyped-def]
    stale: set[str],
    rendered: set[str],
) -> None:
    load(site)
    renders.clear()
    if change is new_code:
        change(site, monkeypatch)
    else:
        change(site)
    before = snapshot(site)
    found = check(site)
    assert {node for kind, node in found if kind == "stale"} == stale
    assert {kind for kind, _ in found} <= {"stale"}
    assert set(renders) == rendered
    assert snapshot(site) == before  # read-only
    check(site, fix=True)
    renders.clear()
    assert check(site) == set()  # --fix recorded what it rendered: clean, by hash
    assert renders == []


def test_edited_or_deleted_files_are_drift_despite_records(site: Site, renders: list[str]) -> None:
    load(site)
    renders.clear()
    http = site.dir / "http"
    install = next(http.rglob("SN1.cfg"))
    install.write_text(install.read_text().replace("reboot", "poweroff") + "\n# hand edit\n")
    next(http.rglob("mac-02-31-00-00-07-02.ipxe")).unlink()
    assert check(site) == {("edited", "SN1"), ("missing", "SN2")}
    assert sorted(renders) == ["SN1", "SN2"]  # only the nodes whose digest differs
    check(site, fix=True)
    renders.clear()
    assert check(site) == set()
    assert renders == []


def test_deployed_nodes_are_recorded_by_the_deployed_hook(site: Site, renders: list[str]) -> None:
    load(site)
    with site.db() as db:
        ctx = ActionContext(site.config, db, "t")
        for stage in ("installing", "deployed"):
            advance(ctx, Selection(all=True), stage)
    renders.clear()
    assert check(site) == set()
    assert renders == []
    leftover = site.dir / "http" / "ks" / "SN1.cfg"
    leftover.write_text("# an install file put back by hand\n")
    assert check(site) == {("install_file_left", "SN1")}
    check(site, fix=True)
    assert not leftover.exists()
    assert check(site) == set()
