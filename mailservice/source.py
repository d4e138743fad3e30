"""The source code of the DailyQ this server runs, as one archive.

DailyQ is AGPL-3.0-or-later: whoever runs a modified DailyQ as a public
service must offer its users the modified source (section 13). Unless
SOURCE_CODE_URL names another place, the site's footer links /source.tar.gz,
which this module builds from the files the server actually runs, so a
modified deployment offers its own changes without anyone publishing them.
"""

import gzip
import io
import tarfile
from functools import lru_cache
from pathlib import Path

from django.conf import settings

# The project's own folders and files (the fixed top level); anything else in
# the folder (a .env, var/, a virtualenv, collected static files) stays out.
SOURCE_PATHS = (
    "LICENSE",
    "README.md",
    "pyproject.toml",
    ".importlinter",
    "requirements.txt",
    "requirements-dev.txt",
    "requirements-bench.txt",
    "Makefile",
    "Procfile",
    "Dockerfile",
    "docker-compose.yml",
    ".env.example",
    "manage.py",
    "mailservice",
    "subscriptions",
    "mailer",
    "templates",
    "static",
    "locale",
    "docs",
    "bench",
    "loadtest",
    "tests",
    ".ci",
)
# Never archived, wherever they appear: build leftovers and files that hold secrets or data.
EXCLUDED_FOLDERS = {"__pycache__"}
EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".sqlite3", ".pem", ".key")

ARCHIVE_ROOT = "dailyq"


def source_files(root: Path) -> list[Path]:
    """The files of the source under `root`, in a stable order."""
    found: list[Path] = []
    for name in SOURCE_PATHS:
        path = root / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for candidate in candidates:
            relative = candidate.relative_to(root)
            if candidate.is_file() and not candidate.is_symlink() and not _excluded(relative):
                found.append(candidate)
    return found


def _excluded(relative: Path) -> bool:
    name = relative.name
    if EXCLUDED_FOLDERS.intersection(relative.parts[:-1]):
        return True
    if name == ".env" or (name.startswith(".env.") and name != ".env.example"):
        return True
    return name.endswith(EXCLUDED_SUFFIXES)


def build_source_archive(root: Path) -> bytes:
    """A gzipped tar of source_files(root) under one folder, the same bytes for the same files."""
    buffer = io.BytesIO()
    # gzip's own timestamp is 0, so the bytes depend on the files alone.
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in source_files(root):
            info = archive.gettarinfo(str(path), arcname=f"{ARCHIVE_ROOT}/{path.relative_to(root).as_posix()}")
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with path.open("rb") as handle:
                archive.addfile(info, handle)
    return buffer.getvalue()


@lru_cache(maxsize=1)
def source_archive() -> bytes:
    """This server's source, built once per process (the code does not change while it runs)."""
    return build_source_archive(Path(settings.BASE_DIR))
