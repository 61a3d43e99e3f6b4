"""``python -m mlkernel.pipeline.worker SPEC.json RESULT.json``: run one step.

The ``process`` executor starts this for every step. It imports as little as possible
(no SQLAlchemy, no rich, no metadata store): it reads the spec, loads the inputs from the
object store, runs the function with stdout and stderr going to the parent (which streams
and stores them), writes the output to the object store and the result as JSON to
RESULT.json. Exit status 0 when the step succeeded, 1 when it raised.
"""

from __future__ import annotations

import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m mlkernel.pipeline.worker SPEC.json RESULT.json", file=sys.stderr)
        return 2
    from mlkernel.pipeline.task import run_spec

    with open(argv[0], encoding="utf-8") as handle:
        spec = json.load(handle)
    result = run_spec(spec)
    sys.stdout.flush()
    sys.stderr.flush()
    with open(argv[1], "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
