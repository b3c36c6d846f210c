"""A supervisord event listener: counts each service's unexpected exits (each is followed by a
restart), for `./lakehouse status`. `python -m smartmeter.native.restarts FILE`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from supervisor import childutils


def record(path: Path, process: str) -> None:
    counts = json.loads(path.read_text()) if path.is_file() else {}
    counts[process] = counts.get(process, 0) + 1
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(counts))
    os.replace(partial, path)


def main(path: Path) -> None:
    path.unlink(missing_ok=True)
    while True:
        headers, payload = childutils.listener.wait(sys.stdin, sys.stdout)
        if headers["eventname"] == "PROCESS_STATE_EXITED":
            fields = dict(token.split(":", 1) for token in payload.split())
            if fields.get("expected") == "0":
                record(path, fields["processname"])
        childutils.listener.ok(sys.stdout)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
