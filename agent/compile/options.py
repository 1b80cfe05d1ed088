"""What a run asks for (the command line's options) and what compiling it gives.

Plain data, kept apart from the compiler: a run that loads a stored catalog
(agent.compile.stored) needs these and nothing of agent.compile.prepare.
"""

from __future__ import annotations

from agent.model import Record


class Options(Record):
    """What the command line asked for."""

    __slots__ = ("source", "runlist", "event", "phase", "noop", "detailed_exitcodes", "json",
                 "diff", "assignments", "attributes_file", "lock_timeout", "splay")
    DEFAULTS = {"source": "", "runlist": "", "event": "", "phase": "all", "noop": False,
                "detailed_exitcodes": False, "json": False, "diff": False, "assignments": [],
                "attributes_file": "", "lock_timeout": None, "splay": 0.0}


class Prepared(Record):
    """A bundle loaded, rendered and validated: ready to converge.

    ``reads`` says what compiling read beyond the bundle and the options:
    ``{"secrets": n, "instance": n, "volatile": bool}`` (secret() and facts.ec2 reads, a
    random value in a template); agent.compile.stored keeps no catalog that read any.
    """

    __slots__ = ("bundle", "runlist", "recipes", "catalog", "attributes", "fact_host", "reads")
    DEFAULTS = {"reads": None}
