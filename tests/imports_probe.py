"""Run one trueup command line and write every module it imported, and who imported it.

    python tests/imports_probe.py OUT.json [trueup arguments ...]

Without trueup arguments nothing is run: OUT.json then lists the interpreter's own
modules (the floor). For each module imported after start-up, ``importers`` holds where
the import was made from: the module and line of the first frame outside importlib.
Used by tests/test_imports.py.
"""

from __future__ import annotations

import sys

_importers: dict[str, str] = {}


class _Recorder:
    """A meta path finder that finds nothing: it notes who asked for each new module."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name in _importers:
            return None
        frame = sys._getframe(1)
        while frame is not None and (frame.f_code.co_filename.startswith("<frozen")
                                     or frame.f_globals.get("__name__") == __name__):
            frame = frame.f_back
        if frame is None:
            _importers[name] = "the probe"
        else:
            _importers[name] = f"{frame.f_globals.get('__name__', '?')}:{frame.f_lineno}"
        return None


def main() -> None:
    out, args = sys.argv[1], sys.argv[2:]
    before = set(sys.modules)
    sys.meta_path.insert(0, _Recorder())
    code = None
    if args:
        from agent.cli import main as trueup

        code = trueup(args)
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Recorder)]
    after = set(sys.modules)
    import json  # only now: what trueup imported is already recorded

    data = {"floor": sorted(before), "modules": sorted(after - before),
            "importers": _importers, "exit_code": code}
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(data, fh)


if __name__ == "__main__":
    main()
