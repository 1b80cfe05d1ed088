"""The spec model: a kind's FIELDS become a frozen Spec with defaults applied, built by the
catalog; a resource never changes its spec, even when a secret makes it sensitive."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import pytest

from agent.aws.secrets import SecretStore
from agent.compile.catalog import Catalog
from agent.compile.loader import Bundle
from agent.compile.phases import BootReads
from agent.compile.prepare import Options, prepare
from agent.config import Config
from agent.engine.backups import Backups
from agent.host.facts import Facts
from agent.host.system import System
from agent.resources import COMMON_FIELDS, Resource, Spec, f, load_all
from tests.helpers import write_bundle

KINDS = load_all()
CANARY = "spec-canary-4e7b1d09"  # the value of the secret /spec/token


def _catalog(tmp_path: Path, recipe: str, templates: dict[str, str] | None = None) -> Catalog:
    bundle = write_bundle(tmp_path / "bundle", {"r": recipe}, templates=templates)
    prepared = prepare(Options(source=str(bundle), runlist="r"),
                       Config(state_dir=str(tmp_path / "state")), Bundle(str(bundle)), System(),
                       Backups(str(tmp_path / "backups")), Facts(),
                       SecretStore({"/spec/token": CANARY}))
    return prepared.catalog


# --- Spec on its own ----------------------------------------------------------------------

FIELDS = {"mode": f(str, None, "octal"), "backup": f(bool, True, "keep"),
          "returns": f((list, int), [0], "exit codes")}


def test_every_declared_field_is_present_with_its_default() -> None:
    spec = Spec(FIELDS, {"mode": "0644"})
    assert dict(spec) == {"mode": "0644", "backup": True, "returns": [0]}
    assert list(spec) == list(FIELDS) and len(spec) == 3
    assert spec.mode == "0644" and spec.backup is True and spec["returns"] == [0]


def test_given_tells_what_the_recipe_set_even_when_it_equals_the_default() -> None:
    spec = Spec(FIELDS, {"backup": True})
    assert spec.given("backup")
    assert not spec.given("mode") and "mode" in spec  # declared, so present, but not given
    assert not spec.given("nonsense")


def test_a_spec_cannot_be_changed() -> None:
    spec = Spec(FIELDS, {"mode": "0644"})
    with pytest.raises(AttributeError, match="read-only"):
        spec.mode = "0600"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="read-only"):
        spec.other = 1  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="read-only"):
        del spec.mode
    with pytest.raises(TypeError):
        spec["mode"] = "0600"  # type: ignore[index]
    assert not hasattr(spec, "setdefault") and not hasattr(spec, "update")
    assert spec.mode == "0644"


def test_replace_makes_a_new_spec_and_leaves_the_old_one_alone() -> None:
    spec = Spec(FIELDS, {"mode": "0644"})
    new = spec.replace(backup=False)
    assert new is not spec and new.backup is False and new.mode == "0644"
    assert spec.backup is True
    assert not new.given("backup") and new.given("mode")  # an override is not the recipe's
    with pytest.raises(KeyError, match="nonsense"):
        spec.replace(nonsense=1)


def test_undeclared_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="'colour'"):
        Spec(FIELDS, {"colour": "red"})
    with pytest.raises(AttributeError, match="no field 'colour'"):
        _ = Spec(FIELDS).colour


def test_a_list_default_is_copied_into_each_spec() -> None:
    first, second = Spec(FIELDS), Spec(FIELDS)
    first["returns"].append(3)
    assert second["returns"] == [0] and FIELDS["returns"].default == [0]


def test_a_spec_survives_copy_and_pickle() -> None:
    spec = Spec(FIELDS, {"mode": "0644"})
    for twin in (copy.copy(spec), copy.deepcopy(spec), pickle.loads(pickle.dumps(spec))):
        assert twin == spec and twin.given("mode") and not twin.given("backup")


def test_repr_shows_only_what_was_given() -> None:
    assert repr(Spec(FIELDS, {"mode": "0644"})) == "Spec({'mode': '0644'})"


# --- Spec of each kind ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(KINDS))
def test_each_kind_spec_holds_its_fields_then_the_common_ones(kind: str) -> None:
    cls = KINDS[kind]
    spec = cls.make_spec({})
    assert list(spec) == [*cls.FIELDS, *COMMON_FIELDS]
    for key, fld in cls.SPEC_FIELDS.items():
        assert spec[key] == fld.default, (kind, key)


def test_a_kind_may_not_redeclare_a_common_field() -> None:
    with pytest.raises(RuntimeError, match="retries"):
        class Bad(Resource):
            FIELDS = {"retries": f(int, 5)}


def test_a_resource_made_from_a_plain_mapping_gets_a_spec() -> None:
    res = KINDS["file"]("/etc/motd", {"content": "hi\n"}, None)  # type: ignore[arg-type]
    assert isinstance(res.spec, Spec)
    assert res.spec.backup is True and res.spec.given("content") and not res.sensitive
    assert res.get("backup") is True and res.get("nonsense") is None


# --- the catalog builds it -------------------------------------------------------------------

def test_the_catalog_applies_field_defaults(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, f"""\
        resources:
          - file: {tmp_path}/motd
            content: "hi"
          - command: stamp
            run: [/bin/true]
          - cron: nightly
            schedule: "@daily"
            run: /bin/true
        """)
    by = catalog.by_ident
    motd = by[f"file:{tmp_path}/motd"]
    assert motd.res.spec["backup"] is True and not motd.res.spec.given("backup")
    assert motd.retries == COMMON_FIELDS["retries"].default == 0
    assert motd.retry_delay == COMMON_FIELDS["retry_delay"].default == 1
    assert by["command:stamp"].res.returns == {0}
    cron = by["cron:nightly"].res
    assert cron.spec.user == "root"
    assert cron.desired.decode().splitlines()[-1] == "@daily root /bin/true"


def test_the_catalog_keeps_what_the_recipe_set(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, f"""\
        resources:
          - file: {tmp_path}/motd
            content: "hi"
            backup: 2
            retries: "3"
            retry_delay: 0.5
          - command: grep
            run: [/bin/true]
            returns: [0, 1]
          - cron: nightly
            schedule: "@daily"
            run: /bin/true
            user: deploy
        """)
    by = catalog.by_ident
    motd = by[f"file:{tmp_path}/motd"]
    assert motd.res.spec.backup == 2 and motd.retries == 3 and motd.retry_delay == 0.5
    assert by["command:grep"].res.returns == {0, 1}
    assert by["cron:nightly"].res.desired.decode().endswith("@daily deploy /bin/true\n")


# --- a secret makes a resource sensitive without changing its spec --------------------------

def test_a_secret_in_a_value_gives_a_new_spec_without_backup(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, f"""\
        resources:
          - file: {tmp_path}/token
            content: "{{{{ secret('/spec/token') }}}}"
          - file: {tmp_path}/kept
            content: "{{{{ secret('/spec/token') }}}}"
            mode: "0640"
            backup: true
          - file: {tmp_path}/plain
            content: "nothing secret"
        """)
    token = catalog.by_ident[f"file:{tmp_path}/token"].res
    assert token.sensitive and token.spec.sensitive
    assert token.spec.backup is False and not token.spec.given("backup")
    assert token.mode == 0o600 and not token.spec.given("mode")
    kept = catalog.by_ident[f"file:{tmp_path}/kept"].res
    assert kept.sensitive and kept.spec.backup is True and kept.mode == 0o640
    plain = catalog.by_ident[f"file:{tmp_path}/plain"].res
    assert not plain.sensitive and plain.spec.backup is True and plain.mode is None


def test_a_secret_read_by_a_template_gives_a_new_spec_without_backup(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, f"""\
        resources:
          - template: {tmp_path}/db.conf
            source: db.conf.j2
        """, templates={"r/db.conf.j2": "token={{ secret('/spec/token') }}\n"})
    (node,) = catalog.nodes
    assert node.res.sensitive and node.res.spec.backup is False and node.res.mode == 0o600
    assert node.res.desired == f"token={CANARY}\n".encode()


def test_a_cron_that_holds_a_secret_keeps_no_backup(tmp_path: Path) -> None:
    catalog = _catalog(tmp_path, """\
        resources:
          - cron: push
            schedule: "@hourly"
            run: "/usr/local/bin/push --token {{ secret('/spec/token') }}"
        """)
    (node,) = catalog.nodes
    assert node.res.sensitive and node.res.spec.backup is False


def test_settle_returns_overrides_and_changes_nothing(tmp_path: Path) -> None:
    res = KINDS["file"](f"{tmp_path}/x", {"content": "a"}, None)  # type: ignore[arg-type]
    res.validate()
    before = (res.spec, dict(res.spec), res.sensitive, res.mode)
    reads = BootReads("all")
    mark = reads.mark()
    assert reads.settle(res, mark) == {}
    reads.read("secret('/spec/token')")
    overrides = reads.settle(res, mark)
    assert overrides == {"sensitive": True, "mode": "0600", "backup": False}
    assert (res.spec, dict(res.spec), res.sensitive, res.mode) == before


def test_settle_leaves_out_fields_the_kind_does_not_have(tmp_path: Path) -> None:
    res: Any = KINDS["line"](f"{tmp_path}/x", {"text": "a"}, None)  # type: ignore[arg-type]
    reads = BootReads("all")
    mark = reads.mark()
    reads.read("secret('/spec/token')")
    assert reads.settle(res, mark) == {"sensitive": True}
