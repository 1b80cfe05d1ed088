"""pip: a real virtualenv in the scratch folder, packages from a local wheel folder, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ResourceError
from agent.resources import Context, SpecError
from agent.resources.pip import Pip
from tests.wheels import make_wheel

pytestmark = pytest.mark.slow  # makes a virtualenv (a few seconds)


def make(ctx: Context, name: str, **spec: object) -> Pip:
    res = Pip(name, spec, ctx)
    res.validate()
    res.prepare()
    return res


def test_venv_packages_versions_and_removal_offline(ctx: Context, tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "alpha", "1.0")
    make_wheel(wheels, "alpha", "2.0")
    make_wheel(wheels, "beta", "0.1", requires=("alpha",))
    venv = tmp_path / "venv"
    common = {"virtualenv": str(venv), "find_links": str(wheels), "no_index": True}
    res = make(ctx, "deps", names=["alpha==1.0", "beta"], **common)
    assert [c.field for c in res.check()] == ["virtualenv", "install"]
    res.apply(res.check())
    assert (venv / "bin" / "python").exists()
    assert res.check() == []
    upgrade = make(ctx, "alpha==2.0", **common)
    changes = upgrade.check()
    assert [c.after for c in changes] == ["alpha==2.0"]
    upgrade.apply(changes)
    assert upgrade.check() == []
    req = tmp_path / "requirements.txt"
    req.write_text("alpha==2.0\nbeta\n")
    assert make(ctx, "reqs", requirements=str(req), **common).check() == []
    gone = make(ctx, "beta", state="absent", **common)
    gone.apply(gone.check())
    assert gone.check() == []
    with pytest.raises(ResourceError, match="pip install exited"):  # not in the folder
        make(ctx, "nowhere", **common).check()


@pytest.mark.parametrize(("spec", "field"), [
    ({"pip": "x; rm -rf /", "virtualenv": "/v"}, "pip"),
    ({"pip": "--index-url=http://evil", "virtualenv": "/v"}, "pip"),
    ({"pip": "x", "virtualenv": "relative"}, "virtualenv"),
    ({"pip": "x", "virtualenv": "/v", "find_links": "--pre"}, "find_links"),
])
def test_bad_specs(ctx: Context, spec: dict, field: str) -> None:
    name = spec.pop("pip")
    with pytest.raises(SpecError) as err:
        make(ctx, name, **spec)
    assert err.value.field == field
