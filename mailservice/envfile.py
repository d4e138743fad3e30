"""The .env file, read by every entry point before settings load.

manage.py, wsgi.py, asgi.py and the Celery app each call `load_env_file()`,
and `make run` starts its process runner through `python -m
mailservice.envfile`, so every process of a run sees the same values. A
variable already in the environment wins over the file. DAILYQ_ENV_FILE names
another file (the tests point it at their own, or at /dev/null).
"""

import os
import sys
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
ENV_FILE_VARIABLE = "DAILYQ_ENV_FILE"


def env_file_path() -> Path:
    named = os.environ.get(ENV_FILE_VARIABLE, "").strip()
    return Path(named) if named else BASE_DIR / ".env"


def load_env_file() -> Path | None:
    """Put the file's variables into os.environ, leaving those already set; return the file read.

    The project's .env may be absent; a file named by DAILYQ_ENV_FILE must exist.
    """
    path = env_file_path()
    if not path.exists():
        if os.environ.get(ENV_FILE_VARIABLE, "").strip():
            raise ImproperlyConfigured(f"{ENV_FILE_VARIABLE}={str(path)!r}: no such file.")
        return None
    load_dotenv(path, override=False, encoding="utf-8")
    return path


def main(argv: list[str]) -> None:
    """`python -m mailservice.envfile COMMAND [ARGS...]`: run a command with the .env loaded."""
    if not argv:
        sys.exit("usage: python -m mailservice.envfile COMMAND [ARGS...]")
    load_env_file()
    os.execvp(argv[0], argv)  # noqa: S606 (the command is the caller's own, as with `env`)


if __name__ == "__main__":
    main(sys.argv[1:])
