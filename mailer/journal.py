"""Each mail's outcome, kept from the moment SES answers until its batch writes it down.

A send batch writes its outcomes and cursor moves to the database in one
statement at its end (sending.batch.send_delivery_batch). Before it starts the
next send it appends the last one's outcome to the journal of its claim: a
Redis hash, or, on the embedded default (no Redis, one machine), an
append-only file under VAR_DIR/journal. A worker killed mid-batch leaves its
journal behind; the sweeper writes down what it holds
(sending.recovery.sweep_expired_claims), so only the mail being sent at that instant
stays of unknown fate.

A journal counts only whole. Its "begin" entry is written before the batch
claims its rows, and an entry is appended only while "begin" is there (one
Lua call): a Redis restarted without persistence loses the hash, the next
append fails, and the batch writes what it knows to the database at once and
begins again. A claim without its journal tells the sweeper nothing. A file
entry survives the process, not the machine (no fsync, like SQLite's
synchronous=NORMAL).
"""

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from redis.exceptions import NoScriptError, RedisError

logger = logging.getLogger(__name__)

# A journal no sweeper read (its batch wrote its outcomes down and died before
# deleting it, or beat stopped for days) expires.
KEEP_SECONDS = 7 * 24 * 3600

# KEYS[1]: the claim's hash; ARGV: field, entry. Appends only to a journal
# that still has its begin entry (a hash Redis lost is not made again).
_APPEND = """
if redis.call('HEXISTS', KEYS[1], 'begin') == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


@dataclass(slots=True)
class Outcome:
    """How one delivery's send ended: what sending.batch.record_outcomes writes."""

    id: int
    subscription_id: int
    status: str
    reason: str = ""
    ses_message_id: str = ""
    sent_at: datetime | None = None
    attempts: int = 0
    next_position: int | None = None  # where the reader's sequence goes on, once this one was sent

    def dumps(self) -> str:
        sent_at = self.sent_at.isoformat() if self.sent_at else None
        return json.dumps(
            [self.id, self.subscription_id, self.status, self.reason, self.ses_message_id, sent_at,
             self.attempts, self.next_position]
        )  # fmt: skip

    @classmethod
    def loads(cls, text: str) -> "Outcome":
        id_, subscription_id, status, reason, message_id, sent_at, attempts, next_position = json.loads(text)
        sent_at = datetime.fromisoformat(sent_at) if sent_at else None
        return cls(id_, subscription_id, status, reason, message_id, sent_at, attempts, next_position)


class Journal:
    """The journal of one claim (one send batch). begin() and append() answer
    whether the journal holds what was given; on False the caller writes the
    outcomes to the database itself."""

    def __init__(self, claim: str):
        self.claim = claim

    def begin(self) -> bool:
        raise NotImplementedError

    def append(self, outcome: Outcome) -> bool:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError


class RedisJournal(Journal):
    def begin(self) -> bool:
        try:
            with _redis().pipeline() as pipe:  # MULTI/EXEC: a fresh hash with its begin entry, or nothing
                pipe.delete(_key(self.claim)).hset(_key(self.claim), "begin", "1").expire(
                    _key(self.claim), KEEP_SECONDS
                )
                pipe.execute()
        except RedisError as exc:
            logger.warning("send journal unavailable (%s): outcomes go to the database one by one", exc)
            return False
        return True

    def append(self, outcome: Outcome) -> bool:
        try:
            return _append(_key(self.claim), outcome.id, outcome.dumps()) == 1
        except (RedisError, OSError):
            _drop_connection()
            return False

    def discard(self) -> None:
        discard_journal(self.claim)


class FileJournal(Journal):
    def __init__(self, claim: str):
        super().__init__(claim)
        self._file: int | None = None

    def begin(self) -> bool:
        self._close()
        try:
            path = _path(self.claim)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
            os.write(self._file, b"begin\n")
        except OSError as exc:
            logger.warning("send journal unavailable (%s): outcomes go to the database one by one", exc)
            self._close()
            return False
        return True

    def append(self, outcome: Outcome) -> bool:
        if self._file is None:
            return False
        try:
            # One write of one line: it reaches the file whole or not at all
            # when the process dies, and the kernel keeps it after.
            os.write(self._file, (outcome.dumps() + "\n").encode())
        except OSError:
            return False
        return True

    def discard(self) -> None:
        self._close()
        discard_journal(self.claim)

    def _close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None


def open_journal(claim: str) -> Journal:
    """A new claim's journal: in Redis when there is one, else in a file on this machine."""
    return RedisJournal(claim) if settings.REDIS_URL else FileJournal(claim)


def read_journal(claim: str) -> dict[int, Outcome] | None:
    """The outcomes a claim's journal holds by delivery id; None when it has none to trust."""
    if settings.REDIS_URL:
        entries = {key.decode(): value.decode() for key, value in _redis().hgetall(_key(claim)).items()}
        if "begin" not in entries:
            return None
        lines = [value for key, value in entries.items() if key != "begin"]
    else:
        try:
            text = _path(claim).read_text()
        except FileNotFoundError:
            return None
        first, _newline, rest = text.partition("\n")
        if first != "begin":
            return None
        lines = rest.splitlines()
    outcomes = {}
    for line in lines:
        try:
            outcome = Outcome.loads(line)
        except (ValueError, TypeError):
            continue  # a line cut off as the process died: that mail stays unknown
        outcomes[outcome.id] = outcome
    return outcomes


def discard_journal(claim: str) -> None:
    if settings.REDIS_URL:
        try:
            _redis().delete(_key(claim))
        except RedisError as exc:  # it expires on its own
            logger.warning("send journal %s not deleted: %s", claim, exc)
    else:
        _path(claim).unlink(missing_ok=True)


def prune_journals() -> int:
    """Delete the journal files no sweeper will read (a batch killed after
    writing its outcomes down, before deleting its journal); Redis expires
    its own. Returns how many were deleted."""
    if settings.REDIS_URL:
        return 0
    folder = Path(settings.VAR_DIR) / "journal"
    if not folder.is_dir():
        return 0
    cutoff = time.time() - KEEP_SECONDS
    pruned = 0
    for path in folder.glob("*.log"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                pruned += 1
        except FileNotFoundError:
            continue
    return pruned


def _key(claim: str) -> str:
    return f"{settings.CACHES['default'].get('KEY_PREFIX', '')}:send-journal:{claim}"


def _path(claim: str) -> Path:
    if not claim.isalnum():  # claims are uuid hex: never a path of their own
        raise ValueError(f"not a claim: {claim!r}")
    return Path(settings.VAR_DIR) / "journal" / f"{claim}.log"


_clients: dict[str, object] = {}
_clients_lock = threading.Lock()
_APPEND_SHA = hashlib.sha1(_APPEND.encode()).hexdigest()  # noqa: S324 (Redis names scripts by SHA-1)
# Each sending thread appends over a connection of its own: redis-py's client
# call costs four times the CPU of the command itself, once per mail.
_connections = threading.local()


def _redis():
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        import redis

        with _clients_lock:
            client = _clients.setdefault(url, redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5))
    return client


def _drop_connection() -> None:
    made = _connections.__dict__.pop("connection", None)
    if made is not None:
        made[1].disconnect()


def _append(key: str, field: int, entry: str) -> int:
    made = getattr(_connections, "connection", None)
    if made is None or made[0] != (os.getpid(), settings.REDIS_URL):
        made = ((os.getpid(), settings.REDIS_URL), _redis().connection_pool.make_connection())
        _connections.connection = made
    connection = made[1]
    try:
        connection.send_command("EVALSHA", _APPEND_SHA, 1, key, field, entry)
        return connection.read_response()
    except NoScriptError:  # a restarted Redis has forgotten the script
        connection.send_command("SCRIPT", "LOAD", _APPEND)
        connection.read_response()
        connection.send_command("EVALSHA", _APPEND_SHA, 1, key, field, entry)
        return connection.read_response()
