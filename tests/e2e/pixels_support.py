"""DGX-Pixels clients for the tests, the fuzzer and the benchmark: the ZeroMQ endpoint's addresses
on free loopback ports, and a client with a REQ socket for requests and a SUB socket for updates,
speaking MessagePack as the original's Python client does (pyzmq + msgpack)."""
import time
import uuid

import msgpack
import zmq

from backends import free_port

REPLY_TIMEOUT_S = 5.0  # the original client gives up on its socket after 5 s without a reply
STAGES = ("initializing", "loading_models", "encoding", "sampling", "decoding", "post_processing")
JOB_ENDS = ("job_complete", "job_error")  # the last update of a job, after job_finished


class NoReply(Exception):
    """A request was not answered within REPLY_TIMEOUT_S."""


class Endpoint:
    """The REQ-REP and PUB-SUB addresses of a service's ZeroMQ endpoint: as given, else on free
    loopback ports."""

    def __init__(self, req_address=None, pub_address=None):
        self.req_address = req_address or f"tcp://127.0.0.1:{free_port()}"
        self.pub_address = pub_address or f"tcp://127.0.0.1:{free_port()}"

    def flags(self):
        """The command-line flags that turn the endpoint on at these addresses."""
        return ["--zmq", "--zmq-req-addr", self.req_address, "--zmq-pub-addr", self.pub_address]

    def environment(self):
        """The environment variables that turn the endpoint on at these addresses."""
        return {"DREAMFORGE_ZMQ": "1", "DREAMFORGE_ZMQ_REQ_ADDR": self.req_address,
                "DREAMFORGE_ZMQ_PUB_ADDR": self.pub_address}


def generate_request(job_id=None, **fields):
    """A generate request for a small, fast job on the tiny model, under a new id unless given."""
    request = {"type": "generate", "id": job_id or str(uuid.uuid4()),
               "prompt": "a pixel-art lighthouse", "model": "tiny", "size": [64, 64], "steps": 3,
               "cfg_scale": 7.0}
    request.update(fields)
    return request


def pack(message, **options):
    """The MessagePack frame of `message` as the original's clients write it (str, not bin)."""
    return msgpack.packb(message, use_bin_type=True, **options)


def unpack(frame):
    return msgpack.unpackb(frame, raw=False)


class PixelsClient:
    """A DGX-Pixels client of one endpoint. Updates of other jobs than the one waited for are kept
    for later, so a test can follow several jobs one after another."""

    def __init__(self, endpoint, subscribe=True):
        self.endpoint = endpoint
        self.context = zmq.Context()
        self.req = self._request_socket()
        self.sub = self._subscribed_socket() if subscribe else None
        self.kept = []  # (received at, update) of jobs not waited for yet

    def _request_socket(self):
        socket = self.context.socket(zmq.REQ)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.RCVTIMEO, int(REPLY_TIMEOUT_S * 1000))
        socket.connect(self.endpoint.req_address)
        return socket

    def _subscribed_socket(self, timeout=30):
        """A SUB socket to every update, returned once it is connected to the PUB socket."""
        socket = self.context.socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        socket.connect(self.endpoint.pub_address)
        connected = monitor.poll(timeout * 1000)
        socket.disable_monitor()
        monitor.close()
        if not connected:
            raise AssertionError(f"no PUB socket at {self.endpoint.pub_address} within {timeout} s")
        time.sleep(0.2)  # the subscription reaches the PUB socket just after the handshake
        return socket

    def close(self):
        self.context.destroy(linger=0)

    # --- requests ---------------------------------------------------------------------------------

    def exchange(self, frames):
        """Sends one request (bytes: one frame; a list: a multipart message) and returns the reply's
        frames. Raises NoReply after REPLY_TIMEOUT_S; the REQ socket is then replaced, as the
        original client does, so the client can go on."""
        if isinstance(frames, (bytes, bytearray)):
            self.req.send(frames)
        else:
            self.req.send_multipart(frames)
        try:
            return self.req.recv_multipart()
        except zmq.Again:
            self.req.close()
            self.req = self._request_socket()
            raise NoReply(f"no reply within {REPLY_TIMEOUT_S} s") from None

    def request_raw(self, frame):
        """The raw bytes of the one-frame reply to one frame."""
        reply = self.exchange(frame)
        assert len(reply) == 1, f"a reply of {len(reply)} frames: {reply!r}"
        return reply[0]

    def request(self, message, **pack_options):
        """The decoded reply to `message`."""
        return unpack(self.request_raw(pack(message, **pack_options)))

    def cancel(self, job_id):
        return self.request({"type": "cancel", "job_id": job_id})

    # --- updates ----------------------------------------------------------------------------------

    def _receive(self, deadline):
        """The next update as (monotonic receive time, message); AssertionError at the deadline."""
        timeout_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
        if not self.sub.poll(timeout_ms):
            raise AssertionError("no update arrived in time")
        frames = self.sub.recv_multipart()
        received = time.monotonic()
        assert len(frames) == 1, f"an update of {len(frames)} frames: {frames!r}"
        return received, unpack(frames[0])

    def updates_until(self, job_id, last, timeout=180, on_update=None):
        """The updates of job `job_id` as [(monotonic receive time, message)], up to and including
        the first for which last(message) holds. `on_update(message)` sees each of them as it
        arrives (to open a preview's file while it is fresh)."""
        deadline = time.monotonic() + timeout
        taken = []
        while True:
            mine = [entry for entry in self.kept if entry[1].get("job_id") == job_id]
            if mine:
                entry = mine[0]
                self.kept.remove(entry)
            else:
                try:
                    entry = self._receive(deadline)
                except AssertionError:
                    seen = [m["type"] for _, m in taken]
                    raise AssertionError(f"job {job_id}: no further update within {timeout} s; "
                                         f"so far {seen}") from None
                if entry[1].get("job_id") != job_id:
                    self.kept.append(entry)
                    continue
            if on_update:
                on_update(entry[1])
            taken.append(entry)
            if last(entry[1]):
                return taken

    def updates_of(self, job_id, timeout=180, on_update=None):
        """The job's updates up to its last one (job_complete or job_error)."""
        return self.updates_until(job_id, lambda m: m["type"] in JOB_ENDS, timeout, on_update)
