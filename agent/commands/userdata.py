"""trueup userdata: the user data that installs, configures and starts trueup on an instance.

The output is a bash script (or, with ``--format cloud-config``, a ``#cloud-config`` that
writes and runs the same script) for a launch template. On the instance it:

1. installs trueup into /opt/trueup with ``ami/install.sh`` (embedded from this package),
   from ``--wheel`` (a path on the instance, ``s3://`` or ``https://``) or ``--index-url``;
   without either, trueup must already be in the image;
2. writes /etc/trueup/config.toml (source, env, role, run list);
3. installs and enables the units: the shutdown event, and ``trueup watch`` (or the
   ``trueup-run`` timer with ``--units timer``);
4. runs the ``setup`` event once per instance (a marker holds the instance id: running the
   script again, or a reboot, does not repeat it); a reboot asked for by setup happens
   once the units are enabled, and the run after it resumes;
5. starts the units.

Everything is logged to the console and /var/log/trueup/userdata.log. User data is
readable by every process on the instance (IMDS), so values that look like secrets
(passwords in URLs, presigned URLs, access keys) are refused: give the instance a role.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from urllib.parse import parse_qs, urlsplit

from agent.config import Config
from agent.errors import TrueupError

LIMIT = 16384  # EC2's limit for user data, before base64
STATE_MARKER = "/var/lib/trueup/setup.done"
INSTALL_DELIMITER = "TRUEUP_INSTALL_SH_END"
UNITS = {"watch": ["trueup-shutdown.service", "trueup-watch.service"],
         "timer": ["trueup-shutdown.service", "trueup-run.service", "trueup-run.timer"],
         "none": ["trueup-shutdown.service"]}
# query keys of presigned or token-carrying URLs
SECRET_QUERY = re.compile(r"(?i)^(x-amz-(signature|credential|security-token)|signature|"
                          r"awsaccesskeyid|token|access_token|password|passwd|secret|key)$")
ACCESS_KEY = re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b")
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_./:@+=,~%?&-]*$")


def main(ns: argparse.Namespace, cfg: Config) -> int:
    if ns.units_dir:
        from agent.host.amifiles import ami_dir

        print(f"{ami_dir()}/systemd")
        return 0
    text = render(ns)
    size = len(text.encode())
    if size > LIMIT:
        raise TrueupError(f"the user data is {size} bytes, over EC2's limit of {LIMIT}; "
                          "install trueup in the image instead of from user data")
    sys.stdout.write(text)
    return 0


def render(ns: argparse.Namespace) -> str:
    """The user data for ``ns`` (the command line), after refusing secret values."""
    for flag in ("source", "env", "role", "runlist", "wheel", "index_url"):
        _refuse_secrets(f"--{flag.replace('_', '-')}", getattr(ns, flag))
    script = _script(ns)
    if ns.format == "cloud-config":
        return _cloud_config(script)
    return script


def _refuse_secrets(flag: str, value: str) -> None:
    why = ""
    if ACCESS_KEY.search(value):
        why = "holds an AWS access key id"
    elif "://" in value:
        url = urlsplit(value)
        if url.password is not None or (url.username and url.scheme in ("http", "https")):
            why = "holds a user name or password (user:password@)"
        elif any(SECRET_QUERY.match(k) for k in parse_qs(url.query, keep_blank_values=True)):
            why = "is a presigned or token-carrying URL"
    if why:
        raise TrueupError(f"{flag} {why}: user data is readable by every process on the "
                          "instance (IMDS); give the instance a role that can read it, or put "
                          "the credential in the image")
    if not SAFE_VALUE.match(value):
        raise TrueupError(f"{flag} {value!r} holds characters user data does not take "
                          "(letters, digits and _ . / : @ + = , ~ % ? & - only)")


def _toml(values: dict[str, str]) -> str:
    lines = ["# written by trueup user data"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in values.items() if value]
    return "\n".join(lines) + "\n"


def _install_sh() -> str:
    from agent.host.amifiles import ami_file

    with open(ami_file("install.sh")) as fh:
        text = fh.read()
    if INSTALL_DELIMITER in text:  # cannot happen with the shipped script
        raise TrueupError(f"install.sh holds {INSTALL_DELIMITER}; it cannot be embedded")
    return text if text.endswith("\n") else text + "\n"


def _install_step(ns: argparse.Namespace) -> str:
    if not ns.wheel and not ns.index_url:
        return ('[ -x "$TRUEUP" ] || fail "trueup is not in this image: give trueup userdata '
                '--wheel or --index-url"\n')
    parts = ['install_sh=$(mktemp)\n',
             f"cat > \"$install_sh\" <<'{INSTALL_DELIMITER}'\n", _install_sh(),
             f"{INSTALL_DELIMITER}\n"]
    if ns.index_url:
        parts.append(f"sh \"$install_sh\" --index-url '{ns.index_url}' || fail \"install.sh "
                     "failed\"\n")
    else:
        parts.append(f"wheel='{ns.wheel}'\n" + FETCH_WHEEL)
        parts.append('sh "$install_sh" "$wheel" || fail "install.sh failed"\n')
    parts.append('rm -f "$install_sh"\n')
    return "".join(parts)


FETCH_WHEEL = """case $wheel in
s3://*|https://*)
    mkdir -p /var/cache/trueup
    local_wheel=/var/cache/trueup/${wheel##*/}
    case $wheel in
    s3://*) command -v aws >/dev/null || fail "an s3:// wheel needs the aws CLI in the image"
        aws s3 cp --only-show-errors "$wheel" "$local_wheel.part" ;;
    *) curl -fsSL --retry 5 -o "$local_wheel.part" "$wheel" ;;
    esac || fail "could not download $wheel"
    mv -f "$local_wheel.part" "$local_wheel"
    wheel=$local_wheel ;;
esac
"""


def _script(ns: argparse.Namespace) -> str:
    from agent import __version__

    config = _toml({"source": ns.source, "env": ns.env, "role": ns.role,
                    "runlist": ns.runlist})
    units = UNITS[ns.units]
    enable = [u for u in units if u != "trueup-run.service"]
    return "".join([
        HEAD.format(version=__version__),
        _install_step(ns),
        CONFIG.format(config=config),
        UNITS_STEP.format(units=" ".join(units), enable=" ".join(enable)),
        SETUP.format(marker=STATE_MARKER, enable=" ".join(enable)),
    ])


HEAD = """#!/bin/bash
# trueup user data (trueup userdata {version}): install trueup, write its configuration,
# enable its units, run the setup event once per instance. Safe to run again.
set -euo pipefail
umask 022
mkdir -p /var/log/trueup
exec > >(tee -a /var/log/trueup/userdata.log) 2>&1
echo "trueup-userdata: start $(date -u +%FT%TZ)"
fail() {{ echo "trueup-userdata: FAILED: $*"; exit 1; }}
TRUEUP=/opt/trueup/venv/bin/trueup
"""

CONFIG = """mkdir -p /etc/trueup
cat > /etc/trueup/config.toml.new <<'TRUEUP_CONFIG_END'
{config}TRUEUP_CONFIG_END
mv -f /etc/trueup/config.toml.new /etc/trueup/config.toml
"""

UNITS_STEP = """units=$("$TRUEUP" userdata --units-dir)
for unit in {units}; do
    install -m 0644 "$units/$unit" "/etc/systemd/system/$unit.new"
    mv -f "/etc/systemd/system/$unit.new" "/etc/systemd/system/$unit"
done
systemctl daemon-reload
systemctl enable {enable}
"""

SETUP = """iid=$(cat /var/lib/cloud/data/instance-id 2>/dev/null || hostname)
rc=0
if [ "$(cat {marker} 2>/dev/null || true)" = "$iid" ]; then
    echo "trueup-userdata: setup already ran on $iid"
else
    "$TRUEUP" run --event setup --lock-timeout 1800 || rc=$?
    if [ "$rc" = 0 ] || [ "$rc" = 194 ]; then
        mkdir -p "$(dirname {marker})"
        echo "$iid" > {marker}.new && mv -f {marker}.new {marker}
    fi
fi
if [ "$rc" = 194 ]; then
    echo "trueup-userdata: setup asked for a reboot; rebooting (the next run resumes)"
    systemctl reboot
    exit 0
fi
systemctl start --no-block {enable}
echo "trueup-userdata: done (setup exit $rc) $(date -u +%FT%TZ)"
exit "$rc"
"""


def _cloud_config(script: str) -> str:
    import yaml

    class Literal(str):
        pass

    def literal(dumper: yaml.SafeDumper, value: Literal) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")

    dumper = type("Dumper", (yaml.SafeDumper,), {})
    dumper.add_representer(Literal, literal)
    doc = {"write_files": [{"path": "/var/lib/trueup-userdata/userdata.sh",
                            "permissions": "0700", "content": Literal(script)}],
           "runcmd": [["bash", "/var/lib/trueup-userdata/userdata.sh"]]}
    return "#cloud-config\n" + yaml.dump(doc, Dumper=dumper, sort_keys=False, width=1000)
