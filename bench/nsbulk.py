#!/usr/bin/env python3
"""Bulk TCP transfers, timed: the backend and the client of bench/northsouth.sh's bulk rows
and of Tests/IntegrationTests/NorthSouthBulkTests.swift (issue 19: coalesced packets
through a NodePort).

  nsbulk.py serve PORT
      answers each connection's 32-byte request: "get N" sends N bytes, then closes its
      side; "put N" reads N bytes, then answers "ok". A thread per connection.
  nsbulk.py get|put HOST PORT BYTES [DEADLINE]
      one transfer each way of BYTES: prints the seconds it took (from connect to the last
      byte, or to the server's "ok"); exits 1 with what it got when it did not finish within
      DEADLINE seconds (default 60).
"""

import socket
import sys
import threading
import time

BLOCK = b"x" * 65536


def exactly(connection, count):
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


def answer(connection):
    with connection:
        request = exactly(connection, 32).split()
        if len(request) != 2:
            return
        verb, count = request[0], int(request[1])
        if verb == b"get":
            while count > 0:
                connection.sendall(BLOCK[:count])
                count -= min(count, len(BLOCK))
            connection.shutdown(socket.SHUT_WR)
            connection.recv(1)  # the client closes first
        elif verb == b"put":
            while count > 0:
                chunk = connection.recv(min(count, 1 << 20))
                if not chunk:
                    return
                count -= len(chunk)
            connection.sendall(b"ok")


def serve(port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(64)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=answer, args=(connection,), daemon=True).start()


def transfer(verb, host, port, count, deadline):
    start = time.monotonic()

    def remaining():
        return max(0.1, deadline - (time.monotonic() - start))

    connection = socket.create_connection((host, port), timeout=deadline)
    connection.sendall(("%-3s %27d\n" % (verb, count)).encode())
    done, finished = 0, False
    try:
        if verb == "get":
            while True:
                connection.settimeout(remaining())
                chunk = connection.recv(1 << 20)
                if not chunk:
                    break
                done += len(chunk)
            finished = done == count
        else:
            while done < count:
                connection.settimeout(remaining())
                done += connection.send(BLOCK[: count - done])
            connection.shutdown(socket.SHUT_WR)
            connection.settimeout(remaining())
            finished = connection.recv(2) == b"ok"
    except (socket.timeout, OSError):
        finished = False
    elapsed = time.monotonic() - start
    connection.close()
    if not finished:
        sys.exit("%s: %d of %d bytes in %.1f s" % (verb, done, count, elapsed))
    print("%.4f" % elapsed)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) in (5, 6) and sys.argv[1] in ("get", "put"):
        deadline = float(sys.argv[5]) if len(sys.argv) == 6 else 60.0
        transfer(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), deadline)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
