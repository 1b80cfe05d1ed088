"""pip: Python packages (or a requirements file) installed into a virtualenv it creates."""

from __future__ import annotations

import json
import os
import re

from agent.errors import ResourceError
from agent.model import Change
from agent.resources import STRLIST, Resource, SpecError, f

# a requirement as pip reads it, without anything a shell or pip option could make of it
_REQ = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?"
                  r"((===?|~=|!=|<=?|>=?)[A-Za-z0-9.*+!_-]+(,(===?|~=|!=|<=?|>=?)"
                  r"[A-Za-z0-9.*+!_-]+)*)?$")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class Pip(Resource, kind="pip"):
    """Python packages in a virtualenv, which is created (``python -m venv``) if missing.

    What is missing is asked of pip itself (``pip install --dry-run --report``): the
    resource is converged when pip would install nothing, so a version specifier or
    a requirements file is honoured exactly as pip reads it. ``find_links`` and
    ``no_index`` install offline from a folder of wheels. State absent uninstalls
    the named packages (the virtualenv stays).

    Spec:
        pip (str): a requirement (``requests`` or ``requests==2.31.0``), or a label
            when ``names`` or ``requirements`` is given.
        names (list): several requirements, installed together.
        requirements (str): absolute path of a requirements file on the host.
        virtualenv (str): absolute path of the virtualenv (required).
        python (str): the interpreter that creates it (default python3).
        index_url (str): the package index (default pip's).
        find_links (str): a folder or URL of archives to install from.
        no_index (bool): never use a package index.
        state (str): present (default) or absent.

    Example:
        - pip: exporter-deps
          names: [prometheus-client==0.17.1, requests]
          virtualenv: /opt/exporter/venv
        - pip: app-requirements
          requirements: /srv/app/requirements.txt
          virtualenv: /srv/app/venv
          find_links: /srv/app/wheels
          no_index: true
    """

    FIELDS = {
        "names": f(STRLIST, None, "several requirements"),
        "requirements": f(str, None, "absolute path of a requirements file on the host"),
        "virtualenv": f(str, None, "absolute path of the virtualenv", required=True),
        "python": f(str, "python3", "interpreter that creates the virtualenv"),
        "index_url": f(str, None, "package index URL"),
        "find_links": f(str, None, "folder or URL of archives to install from"),
        "no_index": f(bool, False, "never use a package index"),
    }
    SYSTEM = True
    EXAMPLES = [{"pip": "trueup-example", "virtualenv": "/srv/trueup-example/venv",
                 "find_links": "/srv/wheels", "no_index": True,
                 "_wheels": {"trueup_example": "1.0"}}]
    SENSITIVE_EXAMPLE = {"pip": "label", "names": ["pkg-{canary}"],
                         "virtualenv": "/opt/v", "sensitive": True}

    def validate(self) -> None:
        names = self.spec["names"]
        labelled = bool(names) or self.spec["requirements"] is not None
        self.names = ([names] if isinstance(names, str) else list(names or [])) \
            if labelled else [self.name]
        for req in self.names:
            if not isinstance(req, str) or not _REQ.match(req.replace(" ", "")):
                raise SpecError("names" if labelled else "pip",
                                f"{req!r} is not a requirement such as pkg or pkg==1.2")
        for key in ("virtualenv", "requirements"):
            value = self.spec[key]
            if value is not None and not os.path.isabs(value):
                raise SpecError(key, f"{key} must be an absolute path, not {value!r}")
        find = self.spec["find_links"]
        if find is not None and find.startswith("-"):
            raise SpecError("find_links", "find_links is a folder or URL")
        if self.state == "absent" and self.spec["requirements"] is not None:
            raise SpecError("requirements", "state absent uninstalls names, not a requirements "
                            "file")
        venv = self.spec["virtualenv"]
        self.bin = f"{venv}/bin/python"

    def _options(self) -> list[str]:
        out = []
        if self.spec["index_url"]:
            out += ["--index-url", self.spec["index_url"]]
        if self.spec["find_links"]:
            out += ["--find-links", self.spec["find_links"]]
        if self.spec["no_index"]:
            out.append("--no-index")
        return out

    def _targets(self) -> list[str]:
        if self.spec["requirements"] is not None:
            return ["-r", self.spec["requirements"], *self.names]
        return list(self.names)

    def _pip(self, *args: str, timeout: float = 900) -> str:
        argv = [self.bin, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
        done = self.ctx.system.run(argv, timeout=timeout, env={"PIP_NO_COLOR": "1"})
        if not done.ok:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise ResourceError(f"pip {args[0]} exited with status {done.returncode}: "
                                + " | ".join(tail))
        return done.stdout

    def check(self) -> list[Change]:
        has_venv = self.ctx.system.exists(self.bin)
        if self.state == "absent":
            if not has_venv:
                return []
            installed = {_normal(p["name"]) for p in json.loads(
                self._pip("list", "--format=json") or "[]")}
            gone = [n for n in self.names if _normal(re.split(r"[\[<>=!~ ]", n)[0])
                    in installed]
            return [Change("uninstall", ", ".join(gone), None)] if gone else []
        if not has_venv:
            return [Change("virtualenv", None, self.spec["virtualenv"]),
                    Change("install", None, " ".join(self._targets()))]
        report = json.loads(self._pip("install", "--dry-run", "--quiet", "--report", "-",
                                      *self._options(), *self._targets()) or "{}")
        missing = [f"{item['metadata']['name']}=={item['metadata']['version']}"
                   for item in report.get("install", [])]
        return [Change("install", None, ", ".join(missing))] if missing else []

    def apply(self, changes: list[Change]) -> None:
        fields = {c.field for c in changes}
        if "virtualenv" in fields:
            done = self.ctx.system.run([self.spec["python"], "-m", "venv",
                                        self.spec["virtualenv"]], timeout=300)
            if not done.ok:
                raise ResourceError(f"cannot create the virtualenv {self.spec['virtualenv']}: "
                                    f"{(done.stderr or done.stdout).strip()[-300:]}")
        if "install" in fields:
            self._pip("install", "--quiet", *self._options(), *self._targets())
        if "uninstall" in fields:
            self._pip("uninstall", "--yes", *[re.split(r"[\[<>=!~ ]", n)[0]
                                              for n in self.names])
