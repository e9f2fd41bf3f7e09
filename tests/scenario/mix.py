#!/usr/bin/env python3
"""A known mix of conntrack entries, made inside a test's network namespace (loopback only).

  --established N  TCP connections from 127.0.1.1 held open (ESTABLISHED)
  --churn N        short TCP connections from 127.0.1.3, closed by both ends (TIME_WAIT)
  --checks N       UDP health checks from 127.0.1.4 answered by an echo server (REPLIED)

Prints "ready" once every connection is made and closed as intended, then holds the
established ones until it is killed. Unreplied UDP comes from ctbpf-loadgen.
"""
import argparse
import signal
import socket
import threading

TCP_PORT, UDP_PORT = 7070, 7071


def tcp_server(listener):
    def serve(conn):
        # Close when the client does: both FINs exchanged, the entry goes to TIME_WAIT.
        while conn.recv(4096):
            pass
        conn.close()

    while True:
        conn, _ = listener.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def udp_echo(sock):
    while True:
        data, peer = sock.recvfrom(4096)
        sock.sendto(data, peer)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--established", type=int, default=0)
    ap.add_argument("--churn", type=int, default=0)
    ap.add_argument("--checks", type=int, default=0)
    a = ap.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", TCP_PORT))
    listener.listen(1024)
    threading.Thread(target=tcp_server, args=(listener,), daemon=True).start()
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", UDP_PORT))
    threading.Thread(target=udp_echo, args=(echo,), daemon=True).start()

    held = []
    for _ in range(a.established):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.1.1", 0))
        s.connect(("127.0.0.1", TCP_PORT))
        held.append(s)
    for _ in range(a.churn):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.1.3", 0))
        s.connect(("127.0.0.1", TCP_PORT))
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # the server's FIN: both directions closed
        s.close()
    for _ in range(a.checks):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.1.4", 0))
        s.settimeout(5)
        s.sendto(b"ping", ("127.0.0.1", UDP_PORT))
        s.recvfrom(16)
        s.close()
    print("ready", flush=True)
    signal.pause()


if __name__ == "__main__":
    main()
