"""qmail-remote's client in pure Python, for hosts without a C compiler.

Run as ``PYTHON -I -S /path/to/pyclient.py HOST SENDER RECIP...`` with ``QMAIL_HOME``
set (and ``QREMOTE_SOCKET`` when the worker listens elsewhere than
``QMAIL_HOME/queue/lock/qremote.sock``). It speaks the protocol of
``qremote/worker/protocol.py``, like the C client ``qmail-remote.c``: it passes its
stdin and stdout to the worker and exits 0 once acknowledged; when no worker takes the
delivery it delivers in-process, in this same interpreter.

Start-up is kept to the minimum: isolated mode, no ``site``, and only modules built
into the interpreter or shipped with it (``posix``, ``_socket``), not ``os`` or
``socket``. ``site`` and qremote are imported only for the in-process fallback.
Nothing is ever written to stderr; the exit status is 0, or 111 (qmail-rspawn:
temporary failure) when even the fallback cannot run.
"""

import _socket
import posix
import sys

VERSION = 1
DELIVER = b"D"
ACK = b"A"
MAX_ARGS = 0xFFFF
MAX_REQUEST = 1 << 20
SUN_PATH_MAX = 107


def request(args):
    """The deliver request for ``args`` (bytes), or None when it cannot travel."""
    if len(args) > MAX_ARGS:
        return None
    head = bytes([VERSION]) + DELIVER + len(args).to_bytes(2, "big")
    data = head + b"".join(len(a).to_bytes(4, "big") for a in args) + b"".join(args)
    return data if len(data) <= MAX_REQUEST else None


def connect(path):
    """A socket connected to the worker at ``path`` (bytes); OSError when none."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        if sock.fileno() < 2:  # stdin or stdout closed: it would travel as one of them
            raise OSError("a standard descriptor is closed")
        if len(path) <= SUN_PATH_MAX:
            sock.connect(path)
        else:  # too long for sun_path: through a descriptor of the directory
            parent, _, name = path.rpartition(b"/")
            dir_fd = posix.open(parent or b"/", posix.O_PATH | posix.O_DIRECTORY)
            try:
                sock.connect(b"/proc/self/fd/%d/%s" % (dir_fd, name))
            finally:
                posix.close(dir_fd)
        creds = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)
        uid = int.from_bytes(creds[4:8], sys.byteorder)
        if uid not in (0, posix.geteuid()):
            raise OSError("foreign listener")
    except BaseException:
        sock.close()
        raise
    return sock


def hand_over(path, args):
    """True when the worker at ``path`` acknowledged the delivery of ``args``."""
    data = request(args)
    if data is None:
        return False
    try:
        sock = connect(path)
    except OSError:
        return False
    try:
        fds = (0).to_bytes(4, sys.byteorder) + (1).to_bytes(4, sys.byteorder)
        sent = sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
        while sent < len(data):
            sent += sock.send(data[sent:])
        return sock.recv(1) == ACK  # no timeout: giving up could deliver twice
    except OSError:
        return False
    finally:
        sock.close()


def in_process():
    """Deliver in this interpreter, as ``python -I -m qremote.remote`` would."""
    import site

    site.main()  # -S skipped it: the installation's site-packages
    from qremote.remote import main

    main()  # exits 0, always


def run():
    """The client's whole job."""
    try:
        null = posix.open("/dev/null", posix.O_WRONLY)
        posix.dup2(null, 2)
        posix.close(null)
    except OSError:
        pass
    encoding, errors = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()
    args = [a.encode(encoding, errors) for a in sys.argv[1:]]
    environ = posix.environ
    home = environ.get(b"QMAIL_HOME") or b"/var/qmail"
    path = environ.get(b"QREMOTE_SOCKET") or home + b"/queue/lock/qremote.sock"
    if args != [b"--self-test"] and hand_over(path, args):  # install's test: in-process
        posix._exit(0)
    in_process()


if __name__ == "__main__":
    try:
        run()
    except BaseException:
        posix._exit(111)
    posix._exit(111)
