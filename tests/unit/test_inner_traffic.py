"""Issue 27: what goes through a tunnel tool is HTTPS by default (inner TLS,
as a browser sends it), plain HTTP where asked (verify --inner http)."""

from __future__ import annotations

import pytest

from tunnelwall.base.errors import SourceError, TunnelwallError
from tunnelwall.harness import spec
from tunnelwall.harness.runner import traffic_url
from tunnelwall.harness.verify import VerifyOptions, child_argv

# Carrying plain HTTP on purpose: stunnel is the HTTP-in-TLS twin of
# stunnel-https. Every other built-in tunnel, the Go tools included (they
# carried plain HTTP until the matrix was re-measured), carries HTTPS, so the
# README's "HTTPS inside" holds for every row.
PLAIN_ON_PURPOSE = {"stunnel"}


def test_every_builtin_tunnel_carries_https_by_default_and_offers_plain_http():
    names = sorted(set(spec.builtin()) - PLAIN_ON_PURPOSE - {"https"})
    assert {"xray-xhttp", "xray-reality", "shadowtls", "amneziawg-2", "hysteria2-salamander"} <= set(names)
    plain = [n for n in names if not traffic_url(spec.load(n), "https").startswith("https://")]
    assert plain == [], plain
    for name in ("xray-xhttp", "xray-reality", "hysteria2", "tuic", "shadowsocks-2022", "shadowtls",
                 "amneziawg", "amneziawg-2", "hysteria2-salamander"):
        s = spec.load(name)
        assert s.insecure and traffic_url(s, "http").startswith("http://"), name


def test_plain_http_where_a_tool_offers_it_and_the_url_otherwise():
    trojan = spec.load("trojan")
    assert traffic_url(trojan, "http") == "http://{web_ip}/bytes/{bytes}"
    kcptun = spec.load("kcptun")                  # the forward's target port is fixed: HTTPS only
    assert kcptun.http_url is None and traffic_url(kcptun, "http") == kcptun.url
    with pytest.raises(TunnelwallError):
        traffic_url(trojan, "ftp")


def test_http_url_is_checked_like_url(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text('name: t\nclient: {run: "true"}\n'
                    'traffic: {url: "https://{web_ip}/", http_url: "http://{nope}/"}\n')
    with pytest.raises(SourceError, match=r"unknown variable \{nope\}"):
        spec.load(str(path))


def test_verify_passes_the_choice_to_its_children():
    import json
    opts = VerifyOptions(tools=["trojan"], inner="http")
    argv = child_argv(opts)
    assert argv[1:3] == ["-m", "tunnelwall.harness.child"]          # the runner as a library, not the CLI
    assert VerifyOptions.from_dict(json.loads(argv[-1])).inner == "http"
    assert json.loads(child_argv(VerifyOptions(tools=["trojan"]))[-1])["inner"] == "https"
    assert opts.matrix_meta()["inner"] == "http"


def test_listens_on_sees_a_listening_socket_and_its_absence():
    import socket

    from tunnelwall.harness.runner import listens_on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert not listens_on(None, port)         # bound, not listening
        sock.listen()
        assert listens_on(None, port)


class _Run:
    """What ToolRun.inner_traffic reads, without a testbed."""

    def __init__(self, name, inner, target):
        from tunnelwall.harness.runner import RunOptions
        self.spec, self.opts, self.target = spec.load(name), RunOptions(inner=inner), target

    def target_node(self):
        return self.target

    class state:                                   # noqa: N801 (stands in for RunState)
        @staticmethod
        def netns_of(node):
            return f"tw-{node}"


@pytest.mark.parametrize("name,asked,target,serving,want", [
    ("trojan", "https", "web", True, "https"),
    ("trojan", "https", "web", False, "http"),        # a user's web server with services: [http]
    ("trojan", "http", "web", True, "http"),
    ("kcptun", "https", None, False, "https"),       # a fixed forward: nothing to ask, HTTPS as asked
])
def test_inner_traffic_falls_back_to_http_only_where_the_target_serves_no_https(monkeypatch, name, asked, target,
                                                                                serving, want):
    from tunnelwall.harness import runner
    asked_ns = []
    monkeypatch.setattr(runner, "listens_on", lambda ns, port: asked_ns.append((ns, port)) or serving)
    inner, why = runner.ToolRun.inner_traffic(_Run(name, asked, target))
    assert inner == want
    assert bool(why) == (want != asked), why
    if why:
        assert why.startswith("web serves no HTTPS") and asked_ns == [("tw-web", 443)]
