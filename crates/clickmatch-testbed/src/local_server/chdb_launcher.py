"""Serves ClickHouse 26.9 on loopback for clickmatch's tests (local_server/chdb.rs runs this).

PyPI's chdb-core embeds ClickHouse's clickhouse-local, which opens the real HTTP and native
(TCP) handlers on request. Run in the folder holding config.xml (listen_host, http_port,
tcp_port, ...): `python3 chdb_launcher.py VERSION`; the data goes to ./data. One server per
process. It serves until this process's stdin reaches its end (the parent closed it, or died):
a thread waiting for that writes a line into the FIFO that the serving query reads.

Exit status: 0 after a requested stop; 2 when chdb-core VERSION cannot be imported; 1 when the
server stopped by itself (clickhouse-local's error, e.g. a port in use, is on stderr).
"""

import os
import signal
import sys
import threading

NOT_INSTALLED = 2


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the parent stops this server.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    version = sys.argv[1]
    install = f"python3 -m pip install --no-deps chdb-core=={version}"
    try:
        import chdb
        from chdb import _chdb
    except ImportError as e:
        print(f"chdb-core is not importable by {sys.executable} ({e}): {install}", file=sys.stderr)
        return NOT_INSTALLED
    if chdb.__version__ != version:
        print(f"chdb-core {chdb.__version__} is installed, {version} is needed: {install}",
              file=sys.stderr)
        return NOT_INSTALLED

    here = os.getcwd()
    fifo = os.path.join(here, "stop.fifo")
    if os.path.lexists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    stopping = threading.Event()

    def stop_at_end_of_input() -> None:
        sys.stdin.buffer.read()
        stopping.set()
        # Blocks until the serving query has opened the FIFO for reading.
        with open(fifo, "w") as f:
            f.write("stop\n")

    threading.Thread(target=stop_at_end_of_input, daemon=True).start()
    quoted = fifo.replace("\\", "\\\\").replace("'", "\\'")
    # Returns when the FIFO has been read to its end, or at once on an error (printed to stderr
    # by clickhouse-local; the result carries no error).
    _chdb.query(
        "SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; "
        f"SELECT * FROM file('{quoted}', 'LineAsString')",
        "TSV",
        path=os.path.join(here, "data"),
    )
    if not stopping.is_set():
        print("clickhouse-local stopped serving before it was asked to", file=sys.stderr)
        return 1
    return 0


sys.exit(main())
