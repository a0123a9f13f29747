"""The Jinja environment: cached templates, finalize guard, filters, errors with template+line."""

from __future__ import annotations

import pytest

from bmprov.boot.render import Renderer, RenderError, bootarg, hostname, ks_token, shquote
from tests.bootutil import edit_config


@pytest.fixture
def renderer(site) -> Renderer:
    (site.dir / "tpl/kickstart").mkdir(parents=True)
    edit_config(site, "dirs = []", 'dirs = ["tpl"]')
    return Renderer(site.config, "kickstart")


def put(site, name: str, text: str) -> None:
    (site.dir / "tpl/kickstart" / name).write_text(text)


def test_templates_compiled_once(renderer, site) -> None:
    put(site, "t.j2", "x {{ a }}\n")
    assert renderer.template("t.j2") is renderer.template("t.j2")
    assert renderer.render("t.j2", {"a": 1}) == "x 1\n"  # keep_trailing_newline


def test_site_dir_searched_first(renderer, site) -> None:
    shipped = renderer.render("autoinstall-meta-data.j2", {"serial": "S", "hostname": "h"})
    assert shipped.startswith("instance-id: bmprov-S")
    put(site, "autoinstall-meta-data.j2", "site {{ serial }}\n")
    fresh = Renderer(site.config, "kickstart")
    assert fresh.render("autoinstall-meta-data.j2", {"serial": "S"}) == "site S\n"


def test_guard_refuses_control_characters(renderer, site) -> None:
    put(site, "g.j2", "line1\nvalue {{ v }}\n")
    with pytest.raises(RenderError) as info:
        renderer.render("g.j2", {"v": "a\n%pre"})
    assert info.value.line == 2
    assert str(info.value).endswith("g.j2 line 2: a value contains a control character ('\\n')")


def test_undefined_is_an_error_naming_line(renderer, site) -> None:
    put(site, "u.j2", "a\nb\n{{ missing }}\n")
    with pytest.raises(RenderError, match=r"u\.j2 line 3: 'missing' is undefined"):
        renderer.render("u.j2", {})


def test_error_in_included_template_names_it(renderer, site) -> None:
    put(site, "outer.j2", "x\n{% include 'inner.j2' %}\n")
    put(site, "inner.j2", "\n\n{{ v | ks_token }}\n")
    with pytest.raises(RenderError, match=r"inner\.j2 line 3: .* is not a plain word"):
        renderer.render("outer.j2", {"v": "a b"})


def test_syntax_error_names_template_and_line(renderer, site) -> None:
    put(site, "s.j2", "ok\n{% if %}\n")
    with pytest.raises(RenderError, match=r"s\.j2 line 2: "):
        renderer.render("s.j2", {})


def test_missing_template(renderer) -> None:
    with pytest.raises(RenderError, match="not found"):
        renderer.render("nope.j2", {})


@pytest.mark.parametrize("bad", ["a b", 'a"', "a'", "a#", "a%", "a\\b", "a;b", "a`b`", "\n"])
def test_ks_token_and_bootarg_refuse(bad: str) -> None:
    with pytest.raises(ValueError):
        ks_token(bad)
    with pytest.raises(ValueError):
        bootarg(bad)


def test_filters_accept_plain_values() -> None:
    assert ks_token("$6$salt$hash./") == "$6$salt$hash./"
    assert (
        bootarg("inst.ks=http://10.0.0.1:8080/ks/SN1.cfg")
        == "inst.ks=http://10.0.0.1:8080/ks/SN1.cfg"
    )
    assert shquote("it's") == "'it'\"'\"'s'"
    assert hostname("Web1.Example.NET") == "web1.example.net"
    with pytest.raises(ValueError):
        hostname("web_1")


def test_digest_changes_with_templates(renderer, site) -> None:
    before = renderer.digest()
    put(site, "new.j2", "x")
    assert renderer.digest() != before
