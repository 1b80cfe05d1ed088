"""testinfra checks of the base recipe: run against a converged host."""

from __future__ import annotations


def test_packages_installed(host, attributes):
    for name in attributes["base"]["packages"]:
        assert host.package(name).is_installed, name


def test_admin_group_and_users(host, attributes):
    group = attributes["base"]["admin_group"]
    assert host.group(group["name"]).exists
    assert host.group(group["name"]).gid == group["gid"]
    for name, spec in attributes["base"]["users"].items():
        user = host.user(name)
        assert user.exists and user.uid == spec["uid"] and user.shell == spec["shell"]
        assert group["name"] in user.groups
        keys = host.file(f"{user.home}/.ssh/authorized_keys")
        assert keys.user == name and keys.mode == 0o600
        assert keys.content_string == spec["ssh_key"] + "\n"
    assert "sudo" in host.user("alice").groups


def test_sshd_config_valid_and_sshd_running(host, attributes):
    sshd = attributes["base"]["sshd"]
    config = host.file("/etc/ssh/sshd_config")
    assert f"PasswordAuthentication {sshd['password_authentication']}" in config.content_string
    assert host.run("/usr/sbin/sshd -t").rc == 0
    assert host.service("ssh").is_running and host.service("ssh").is_enabled


def test_sysctl_live_and_persisted(host, attributes):
    value = str(attributes["base"]["sysctl"]["somaxconn"])
    assert host.sysctl("net.core.somaxconn") == int(value)
    persisted = host.file("/etc/sysctl.d/60-trueup-net.core.somaxconn.conf")
    assert f"net.core.somaxconn = {value}" in persisted.content_string


def test_timezone_and_motd(host, attributes):
    tz = attributes["base"]["timezone"]
    assert host.file("/etc/localtime").linked_to == f"/usr/share/zoneinfo/{tz}"
    assert host.file("/etc/timezone").content_string == tz + "\n"
    assert "converged by trueup" in host.file("/etc/motd").content_string


def test_sudoers_valid(host):
    assert host.run("visudo -c").rc == 0
