"""One live search per run folder: an OS lock on ``<run folder>/fuse.lock``.

A search takes the lock (``fcntl.flock``, exclusive, non-blocking) before it touches
the folder's db and holds it while it runs; the file then holds its owner as JSON
(pid, host, start time), so a second search on the folder is refused with one line
naming the owner.  The OS drops the lock of a process that dies, even by SIGKILL:
a file that still names an owner while its lock is free was left by a dead process
and is taken over (with a notice).  A clean release empties the file.  Readers
(``ase-fuse report``, ``plot``, ``ase db``) never take the lock.

flock locks belong to an open file, not to a process, so two searches inside one
process exclude each other as well.
"""

import datetime
import errno
import fcntl
import functools
import json
import os
import socket
import time
from pathlib import Path

from .errors import InputError

LOCK_FILE = "fuse.lock"


def describe_owner(owner):
    """``"pid 123 on host h since 2026-12-01 09:50:02 UTC"`` (or what is known of it)."""
    if not isinstance(owner, dict) or "pid" not in owner:
        return "another process (owner not recorded yet)"
    return (f"pid {owner.get('pid')} on host {owner.get('host', '?')} "
            f"since {owner.get('since', '?')}")


def read_owner(directory):
    """The owner recorded in ``directory``'s lock file (a dict), or None."""
    try:
        text = (Path(directory) / LOCK_FILE).read_text()
    except OSError:
        return None
    return _parse(text)


def _parse(text):
    try:
        owner = json.loads(text) if text.strip() else None
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


class RunLock:
    """The lock on one run folder.

    ``acquire()`` returns None, or a one-line notice when it took over a lock file
    left by a dead process; it raises :class:`InputError` (field ``directory``) when
    a live search holds the folder or the folder cannot be written.  ``release()``
    is idempotent; a lock garbage-collected while held is released.
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd = None
        self._pid = None                 # a forked child inherits the fd, not the lock

    @property
    def held(self):
        return self._fd is not None

    def acquire(self):
        if self._fd is not None:
            return None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise InputError(folder_problem(self.directory) or f"run folder "
                             f"{self.directory} is not writable: {err.strerror}",
                             field="directory") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise InputError(f"cannot lock {self.path}: {err.strerror}",
                                 field="directory") from None
            raise InputError(f"{self.directory} is in use by a running search: "
                             f"{describe_owner(self._owner_of_live_lock())}; one search "
                             "per run folder (wait for it, or stop it with "
                             f"`touch {self.directory / 'STOP'}`)",
                             field="directory") from None
        left = _parse(_read_fd(fd))
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "since": datetime.datetime.now(datetime.timezone.utc)
              .strftime("%Y-%m-%d %H:%M:%S UTC"), "started": time.time()}
        data = json.dumps(me).encode()
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        self._fd, self._pid = fd, os.getpid()
        if left is None:
            return None
        return (f"{self.path} was left by {describe_owner(left)}, which is gone "
                "(its lock was free): taking it over")

    def _owner_of_live_lock(self):
        """The live owner's record; it may be being written right now: a few tries."""
        for _ in range(20):
            owner = read_owner(self.directory)
            if owner is not None:
                return owner
            time.sleep(0.025)
        return None

    def release(self, _getpid=os.getpid, _truncate=os.ftruncate, _close=os.close):
        # (os functions bound early: this also runs from __del__ at interpreter exit)
        fd, self._fd = self._fd, None
        if fd is None:
            return
        if _getpid() == self._pid:       # not in a forked child: the owner's record stays
            try:
                _truncate(fd, 0)          # a clean end: nobody to take over from
            except OSError:
                pass                      # the lock still goes with the close below
        _close(fd)

    def __del__(self):
        self.release()


def releases_lock_on_error(init):
    """Decorate ``__init__``: if it raises, release ``self._lock`` (if taken) first."""
    @functools.wraps(init)
    def wrapper(self, *args, **kwargs):
        try:
            init(self, *args, **kwargs)
        except BaseException:
            lock = self.__dict__.get("_lock")
            if lock is not None:
                lock.release()
            raise
    return wrapper


def reacquire(search):
    """Take the folder's lock again for a search whose earlier ``run()`` released it.

    Refused (InputError) when another search holds it now, or when the db moved on
    since (another search continued the run: this object's state is stale).
    """
    lock = search._lock
    if lock.held:
        return
    lock.acquire()
    state = search.records.load_state() or {}
    with search.records.session() as db:
        rows = db.count()
    if state.get("nsteps", 0) != search.nsteps or rows != search.records.count():
        lock.release()
        raise InputError(f"{search.records.path} moved on since this search last ran "
                         "(another search continued it); continue it with a new "
                         "FuseBasinHopping(..., restart=True) (--restart on the command "
                         "line)", field="directory")


def _read_fd(fd):
    chunks, offset = [], 0
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk:
            return b"".join(chunks).decode("utf-8", "replace")
        chunks.append(chunk)
        offset += len(chunk)


def folder_problem(directory):
    """Why ``directory`` cannot be a run folder because it, or a folder above it, is a
    file (the OS says only "File exists" / "Not a directory"), or None."""
    directory = Path(directory)
    for path in (directory, *directory.parents):
        if path.exists() and not path.is_dir():
            what = "is a file" if path == directory else f"cannot be made: {path} is a file"
            return f"run folder {directory} {what}, not a folder; choose another -o/directory"
    return None
