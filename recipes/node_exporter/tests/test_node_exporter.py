"""testinfra checks of the node_exporter recipe: what cloudalchemy's role tests check, and more."""

from __future__ import annotations


def test_textfile_directory(host, attributes):
    conf = attributes["node_exporter"]
    folder = host.file(conf["textfile_dir"])
    assert folder.exists and folder.is_directory
    assert folder.user == conf["user"]


def test_unit_file_and_binary(host):
    for path in ("/etc/systemd/system/node_exporter.service", "/usr/local/bin/node_exporter"):
        found = host.file(path)
        assert found.exists and found.is_file, path


def test_service_enabled_and_running(host):
    unit = host.service("node_exporter")
    assert unit.is_enabled and unit.is_running


def test_listening_on_its_address(host, attributes):
    assert host.socket(f"tcp://{attributes['node_exporter']['listen']}").is_listening


def test_metrics_include_the_textfile_metric(host, attributes):
    listen = attributes["node_exporter"]["listen"]
    out = host.check_output(
        "python3 -c 'import sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())' "
        f"http://{listen}/metrics")
    assert "node_exporter_build_info" in out
    assert "\ntrueup_managed 1" in out


def test_the_service_account_owns_nothing_of_root(host, attributes):
    user = host.user(attributes["node_exporter"]["user"])
    assert user.exists and user.home == "/" and user.shell == "/usr/sbin/nologin"
    root = host.file("/")
    assert (root.user, root.group, root.mode) == ("root", "root", 0o755)
    assert not host.service("prometheus-node-exporter").is_running
