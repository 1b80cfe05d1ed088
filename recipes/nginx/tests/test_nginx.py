"""testinfra checks of the nginx recipe: what nginxinc's role tests (template scenario) check."""

from __future__ import annotations

import re


def _blocks(text: str, opener: str) -> list[str]:
    """The bodies of the ``opener { ... }`` blocks of an nginx file (nested braces kept)."""
    bodies = []
    for match in re.finditer(rf"(?m)^\s*{opener}\s*\{{", text):
        depth, start = 1, match.end()
        for at in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[at], 0)
            if depth == 0:
                bodies.append(text[start:at])
                break
    return bodies


def _top_level(body: str) -> str:
    """``body`` without its nested blocks."""
    while True:
        flat = re.sub(r"\{[^{}]*\}", "", body)
        if flat == body:
            return flat
        body = flat


def _server(host, attributes) -> str:
    text = host.file(f"{attributes['nginx']['conf_dir']}/default.conf").content_string
    (server,) = _blocks(text, "server")
    return server


def test_nginx_is_installed(host):
    assert host.package("nginx").is_installed


def test_nginx_running_and_enabled(host):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled


def test_hosts_file(host):
    hosts = host.file("/etc/hosts")
    assert hosts.exists and (hosts.user, hosts.group) == ("root", "root")


def test_endpoint(host):
    out = host.run("curl -sI http://localhost/")
    assert out.rc == 0 and re.match(r"HTTP/1\.1 200 OK", out.stdout), out.stdout
    assert "Strict-Transport-Security" in out.stdout
    assert "frontend_default on" in host.check_output("curl -s http://localhost/")


def test_generated_files(host, attributes):
    for site in attributes["nginx"]["sites"]:
        assert host.file(f"{attributes['nginx']['conf_dir']}/{site['name']}.conf").exists


def test_default_server(host, attributes):
    server = _server(host, attributes)
    assert len(_blocks(server, "location /")) == 1
    assert len(_blocks(server, "location /backend")) == 1


def test_client_max_body_size(host, attributes):
    server = _server(host, attributes)
    assert re.findall(r"client_max_body_size\s+(\S+);", _top_level(server)) == ["512k"]
    (root,) = _blocks(server, "location /")
    assert re.findall(r"client_max_body_size\s+(\S+);", root) == ["5m"]


def test_limits_drop_in(host, attributes):
    pid = host.check_output("systemctl show -p MainPID --value nginx")
    limits = host.file(f"/proc/{pid}/limits").content_string
    assert re.search(rf"Max open files\s+{attributes['nginx']['nofile']}\s", limits)
