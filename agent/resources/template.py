"""template: a file rendered by Jinja2 from the recipe's templates/ folder."""

from __future__ import annotations

import os

from agent.errors import RenderError
from agent.resources import SpecError, f
from agent.resources.file import File


class Template(File, kind="template"):
    """A file rendered from a Jinja2 template in the recipe's templates/ folder.

    The template sees ``attributes``, ``facts``, ``secret()`` and each entry
    of ``variables`` as a top-level name. An undefined name is an error, never
    an empty string. The file is rendered before the run changes anything.

    Spec:
        template (str): absolute path of the file to write; the resource's name.
        source (str): template file under templates/ (required); a regular file of at
            most 16 MiB (host.files.MAX_SOURCE_BYTES).
        variables (dict): extra names for the template.
        trim_blocks (bool): drop the newline after a ``{% %}`` tag (default true, as
            Ansible; a bundle's bundle.yml may change the default).
        lstrip_blocks (bool): drop the spaces and tabs before a ``{% %}`` tag on its
            line (default false, as Ansible).
        owner, group, mode, backup, verify, state: as for file.

    Filters beyond Jinja's own: quote, to_yaml, to_nice_yaml, to_json, to_nice_json,
    ternary, b64encode, b64decode, password_hash (see agent.compile.filters).

    As for file, a symbolic link at the path is an error: the template is never
    written through a link or over one (manage the link with link:).

    Example:
        - template: /etc/nginx/sites-enabled/default
          source: site.conf.j2
          variables: {port: 8080}
          mode: "0644"
          notify: service:nginx reload
    """

    FIELDS = {
        "source": f(str, None, "template under the recipe's templates/ folder", required=True),
        "variables": f(dict, None, "extra names for the template"),
        "trim_blocks": f(bool, None, "drop the newline after a {% %} tag (default true)"),
        "lstrip_blocks": f(bool, None, "drop the indentation before a {% %} tag (default "
                           "false)"),
        "owner": File.FIELDS["owner"],
        "group": File.FIELDS["group"],
        "mode": File.FIELDS["mode"],
        "backup": File.FIELDS["backup"],
        "verify": File.FIELDS["verify"],
    }
    EXAMPLES = [
        {"template": "{tmp}/site.conf", "source": "site.conf.j2",
         "variables": {"port": 8080}, "mode": "0644",
         "_templates": {"site.conf.j2": "listen {{ port }};\n"},
         "_expect": {"site.conf": {"content": "listen 8080;\n", "mode": "0644"}}},
    ]
    SENSITIVE_EXAMPLE = {"template": "{tmp}/db.conf", "source": "db.conf.j2",
                         "variables": {"password": "{canary}"}, "sensitive": True,
                         "_templates": {"db.conf.j2": "password={{ password }}\n"},
                         "_setup": {"db.conf": "password=old\n"}}

    def prepare(self) -> None:
        if self.state == "absent":
            return
        rel = self.spec["source"]
        base = os.path.join(self.ctx.recipe_dir, "templates")
        path = os.path.normpath(os.path.join(base, rel))
        if not path.startswith(base + os.sep):
            raise SpecError("source", f"source {rel!r} leaves the recipe's templates/ folder")
        if not os.path.lexists(path):  # there but no regular file: reading it says why
            raise SpecError("source", f"template not found: {path} (put it in the "
                               f"{self.ctx.recipe} recipe's templates/ folder)")
        self.source_path = path  # read for boot-time values by compile.phases
        try:
            options = {key: self.spec[key] for key in ("trim_blocks", "lstrip_blocks")
                       if self.spec[key] is not None}  # else the bundle's defaults
            text = self.ctx.render_file(path, self.spec.get("variables"), **options)
        except RenderError as exc:
            exc.file = path  # type: ignore[attr-defined]
            raise
        self.desired = text.encode()
