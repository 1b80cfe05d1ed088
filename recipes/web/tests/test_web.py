"""testinfra checks of the web recipe: run against a converged host."""

from __future__ import annotations


def test_nginx_running_and_enabled(host, attributes):
    nginx = host.service("nginx")
    assert nginx.is_running and nginx.is_enabled
    assert host.package(attributes["web"]["package"]).is_installed


def test_site_answers_200_on_the_port(host, attributes):
    port = attributes["web"]["port"]
    assert host.socket(f"tcp://0.0.0.0:{port}").is_listening
    out = host.run(f"curl -s -o /dev/null -w '%{{http_code}}' http://127.0.0.1:{port}/")
    assert out.stdout.strip() == "200"
    headers = host.run(f"curl -sI http://127.0.0.1:{port}/").stdout
    assert "X-Content-Type-Options: nosniff" in headers


def test_index_page(host, attributes):
    page = host.file(f"{attributes['web']['root']}/index.html")
    assert "converged by trueup" in page.content_string
