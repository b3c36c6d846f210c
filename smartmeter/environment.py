"""Running the top-level scripts with plain `python3`: when the project's dependencies are missing
from the interpreter, re-run the script in the project's own virtualenv (made by
./initial-setup.sh or ./lakehouse), or say how to get one."""

from __future__ import annotations

import os
import sys
from importlib.util import find_spec
from pathlib import Path

REQUIRED_MODULES = ("confluent_kafka", "psycopg2", "dotenv")


def ensure_dependencies(script: str) -> None:
    if all(find_spec(module) is not None for module in REQUIRED_MODULES):
        return
    root = Path(__file__).resolve().parents[1]
    home = Path(os.environ.get("LAKEHOUSE_HOME", root / ".lakehouse")).expanduser()
    venv = home / "venv"
    venv_python = venv / "bin" / "python"
    if venv_python.is_file() and Path(sys.prefix).resolve() != venv.resolve():
        os.execv(str(venv_python), [str(venv_python), str(root / script), *sys.argv[1:]])
    missing = ", ".join(m for m in REQUIRED_MODULES if find_spec(m) is None)
    sys.exit(f"error: {script} needs {missing}, which {sys.executable} does not have. Run ./initial-setup.sh "
             "(it makes the project's environment, which this script then uses by itself), or install the "
             "requirements into your own virtualenv: pip install -r requirements.txt")
