"""A minimal client side of ComfyUI's API for benchmarks: /ws sockets and keep-alive POST /prompt
on raw non-blocking sockets, all driven by one selector loop that stamps every frame and response
with time.perf_counter() as it arrives (no thread per socket, no HTTP or WebSocket library)."""
import base64
import json
import os
import selectors
import time

from job_service_bench import connect, split_response


class WebSocketClient:
    """One /ws connection. Server frames are unmasked; pings are answered with a masked pong.
    `messages` holds (arrival time, parsed JSON) for text frames and (arrival time, None) for
    binary ones (previews)."""

    def __init__(self, address, client_id):
        self.client_id = client_id
        self.sock = connect(address)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET /ws?clientId={client_id} HTTP/1.1\r\n"
                           f"Host: {address[0]}:{address[1]}\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise SystemExit(f"/ws closed during the handshake: {buffer[:300]!r}")
            buffer += chunk
        head, _, self.buffer = buffer.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise SystemExit(f"/ws refused the upgrade: {head[:300]!r}")
        self.sock.setblocking(False)
        self.messages = []
        self.closed = False
        self._take_frames(time.perf_counter())

    def on_readable(self):
        chunk = self.sock.recv(1 << 20)
        received_at = time.perf_counter()
        if not chunk:
            self.closed = True
            return
        self.buffer += chunk
        self._take_frames(received_at)

    def _take_frames(self, received_at):
        while (frame := self._next_frame()) is not None:
            opcode, payload = frame
            if opcode == 1:
                self.messages.append((received_at, json.loads(payload)))
            elif opcode == 2:
                self.messages.append((received_at, None))
            elif opcode == 9:
                self._send_frame(0xA, payload)
            elif opcode == 8:
                self.closed = True

    def _next_frame(self):
        data = self.buffer
        if len(data) < 2:
            return None
        length, offset = data[1] & 0x7F, 2
        if length == 126:
            if len(data) < 4:
                return None
            length, offset = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            if len(data) < 10:
                return None
            length, offset = int.from_bytes(data[2:10], "big"), 10
        if len(data) < offset + length:
            return None
        self.buffer = data[offset + length:]
        return data[0] & 0x0F, data[offset:offset + length]

    def _send_frame(self, opcode, payload):
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.setblocking(True)
        self.sock.sendall(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)
        self.sock.setblocking(False)

    def statuses(self):
        """(arrival time, queue_remaining) of the status broadcasts (the greeting excluded)."""
        return [(at, message["data"]["status"]["exec_info"]["queue_remaining"])
                for at, message in self.messages
                if message and message["type"] == "status" and "sid" not in message["data"]]

    def close(self):
        self.sock.close()


class PromptPoster:
    """POST /prompt on one keep-alive connection; the answer is read by the selector loop."""

    def __init__(self, address):
        self.address = address
        self.sock = connect(address)
        self.sock.setblocking(False)
        self.buffer = b""
        self.sent_at = None
        self.answer = None  # (arrival time, status, JSON body) of the last POST

    def send(self, body):
        payload = json.dumps(body).encode()
        request = (f"POST /prompt HTTP/1.1\r\nHost: {self.address[0]}:{self.address[1]}\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                   ).encode() + payload
        self.buffer, self.answer = b"", None
        self.sock.setblocking(True)
        self.sent_at = time.perf_counter()
        self.sock.sendall(request)
        self.sock.setblocking(False)

    def on_readable(self):
        chunk = self.sock.recv(65536)
        received_at = time.perf_counter()
        if not chunk:
            raise SystemExit("the server closed the POST /prompt connection")
        self.buffer += chunk
        response = split_response(self.buffer)
        if response is not None:
            self.answer = (received_at, response[0], json.loads(response[1]))

    def close(self):
        self.sock.close()


class Loop:
    """One selector over the POST connection and every WebSocket client."""

    def __init__(self, poster, clients):
        self.selector = selectors.DefaultSelector()
        for endpoint in (poster, *clients):
            self.selector.register(endpoint.sock, selectors.EVENT_READ, endpoint)

    def run_until(self, done, timeout, what):
        """Handles arriving data until done() is true; SystemExit naming `what` after timeout s."""
        deadline = time.perf_counter() + timeout
        while not done():
            left = deadline - time.perf_counter()
            if left <= 0:
                raise SystemExit(f"timed out after {timeout} s waiting for {what}")
            for key, _ in self.selector.select(timeout=left):
                key.data.on_readable()
                if getattr(key.data, "closed", False):
                    self.selector.unregister(key.fileobj)

    def close(self):
        self.selector.close()
