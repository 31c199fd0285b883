"""A fuzzer of the DGX-Pixels endpoint (ZeroMQ + MessagePack) of a running service.

First a fixed corpus of hostile frames, in an order the seed picks: empty and random bytes,
reserved type bytes, headers that declare 2**32-1 elements or string bytes the frame does not
hold, nesting 100000 deep, ext and bin values, a frame over 1 MiB, multipart messages, and each
request with every field replaced by odd values (huge and negative integers, NaN, infinities, long
and invalid strings, arrays of the wrong length). Then random frames until the time is up: the
requests with bytes flipped, inserted, deleted or cut, or with fields dropped, replaced or added.
A generate that is accepted is cancelled at once (the cancel is fuzzed as well), so the service's
worker is not left with hours of work.

A failure is a request without exactly one reply within 5 s (the original client gives up after
that), a reply that is not a MessagePack map with "type" first and a known type (an error
without a message string included), an update on the PUB socket that is not such a map, a crash
of the service, or an endpoint that does not answer ping at the end. Each is printed with the
frame that reproduces it; FUZZ_SEED replays a run.

The endpoint's addresses come from DREAMFORGE_ZMQ_REQ_ADDR and DREAMFORGE_ZMQ_PUB_ADDR, the
variables the service was started with.

Usage: pixels_fuzz.py --base-url URL --state STATE_JSON --seconds N [--seed N] [--pid PID]
                      [--results JSON] [--server-log FILE]"""
import math
import os
import random
import struct
import time

import msgpack

from fuzz_common import Exchange, Recorder, ServerDown, run_fuzzer_from_command_line
from pixels_support import Endpoint, NoReply, PixelsClient, generate_request, pack

REPLY_TYPES = {"error", "job_accepted", "job_error", "job_cancelled", "model_list", "status_info",
               "pong"}
UPDATE_TYPES = {"job_started", "progress", "preview", "job_finished", "job_complete", "job_error"}
DEEP = 100000
ODD_VALUES = [None, True, False, 0, -1, 1.5, 2 ** 31, 2 ** 63 - 1, 2 ** 64 - 1, -(2 ** 63),
              math.nan, math.inf, -math.inf, -0.0, 1e308, "", " ", "x" * 5000, "\u0000", "a\u0000b",
              "é\U0001F600", "../../../../etc/passwd", "${jndi}", b"", b"\x00\xff", [], [64],
              [1, 2, 3], [64, 64], [-64, 64], [2 ** 31, 2 ** 31], [64.5, 64.5], ["64", "64"],
              [None, None], {}, {"type": "ping"}, [[[[[]]]]], msgpack.ExtType(5, b"abc"),
              msgpack.ExtType(127, b"\x00" * 12)]
ODD_TYPES = ["", "PING", "Ping", " ping", "ping\u0000", "generate ", "job_accepted", "pong",
             "error", "x" * 300]


def hostile_frames():
    """(name, frames) of the fixed corpus that no request template yields."""
    frames = {
        "empty frame": b"",
        "nil": b"\xc0",
        "reserved type byte": b"\xc1",
        "map32 declaring 2**32-1 pairs": b"\xdf\xff\xff\xff\xff" + pack("type") + pack("ping"),
        "array32 declaring 2**32-1 items": b"\xdd\xff\xff\xff\xff\xc0",
        "str32 declaring 4 GiB": b"\x81\xa4type\xdb\xff\xff\xff\xff" + b"ping",
        "bin32 declaring 4 GiB": b"\x81\xa4type\xc6\xff\xff\xff\xff" + b"ping",
        "ext32 declaring 4 GiB": b"\x81\xa4type\xc9\xff\xff\xff\xff\x01" + b"ping",
        "arrays nested 100000 deep": b"\x91" * DEEP + b"\xc0",
        "maps nested 100000 deep": b"\x81\xa1a" * DEEP + b"\xc0",
        "type as bin": b"\x81\xc4\x04type\xa4ping",
        "type twice": b"\x82\xa4type\xa4ping\xa4type\xa6status",
        "integer keys": pack({1: 2, 3: 4}),
        "float32 NaN type": b"\x81\xa4type\xca" + struct.pack(">f", math.nan),
        "timestamp ext": b"\x81\xa4type\xd6\xff" + b"\x00" * 4,
        "two values in one frame": pack({"type": "ping"}) * 2,
        "frame over 1 MiB": pack({"type": "ping", "padding": "x" * ((1 << 20) + 1)}),
        "10000 keys": pack({f"k{i}": i for i in range(10000)} | {"type": "ping"}),
        "multipart of two pings": [pack({"type": "ping"})] * 2,
        "multipart with an empty frame": [b"", pack({"type": "ping"})],
        "multipart of 50 frames": [b"\xc0"] * 50,
    }
    return list(frames.items())


class PixelsFuzzer:
    """Sends hostile frames to the REQ-REP socket and reads the PUB socket meanwhile."""

    def __init__(self, args, state):
        self.recorder = Recorder("pixels", args.base_url, args.pid, args.seed, args.seconds,
                                 args.server_log)
        self.seed = args.seed
        self.rng = random.Random(args.seed)
        self.models = state.get("model_ids") or ["tiny"]
        self.job_ids = ["no-such-job"]
        self.client = PixelsClient(Endpoint(os.environ["DREAMFORGE_ZMQ_REQ_ADDR"],
                                            os.environ["DREAMFORGE_ZMQ_PUB_ADDR"]))
        self.updates = 0

    # --- requests to mutate ------------------------------------------------------------------

    def templates(self):
        """The valid requests, one of each type."""
        return [{"type": "ping"}, {"type": "status"}, {"type": "list_models"},
                {"type": "cancel", "job_id": self.rng.choice(self.job_ids)},
                generate_request(model=self.rng.choice(self.models), steps=self.rng.randint(1, 3),
                                 prompt=f"fuzz {self.rng.randrange(10 ** 6)}",
                                 seed=self.rng.randrange(2 ** 32))]

    def odd_field_cases(self):
        """Every field of every request replaced by each odd value, and the type by odd strings."""
        cases = []
        for template in self.templates():
            for key in template:
                for value in ODD_VALUES if key != "type" else ODD_TYPES:
                    cases.append((f"{template['type']}.{key} odd", pack({**template, key: value})))
        return cases

    def random_case(self):
        """One random frame: a request with its bytes or its fields mutated, or random bytes."""
        template = self.rng.choice(self.templates())
        kind = self.rng.choice(("bytes", "bytes", "fields", "random"))
        if kind == "random":
            return "random bytes", self.rng.randbytes(self.rng.choice((1, 8, 64, 512)))
        if kind == "fields":
            return f"{template['type']} fields mutated", pack(self.mutate_fields(template))
        return f"{template['type']} bytes mutated", self.mutate_bytes(pack(template))

    def mutate_fields(self, message):
        message = dict(message)
        for _ in range(self.rng.randint(1, 3)):
            action = self.rng.choice(("drop", "replace", "add", "reorder"))
            key = self.rng.choice(list(message) or ["type"])
            if action == "drop":
                message.pop(key, None)
            elif action == "replace":
                message[key] = self.rng.choice(ODD_VALUES)
            elif action == "add":
                message[f"extra_{self.rng.randrange(100)}"] = self.rng.choice(ODD_VALUES)
            else:
                keys = list(message)
                self.rng.shuffle(keys)
                message = {k: message[k] for k in keys}
        return message

    def mutate_bytes(self, frame):
        data = bytearray(frame)
        for _ in range(self.rng.randint(1, 4)):
            at = self.rng.randrange(len(data) + 1)
            action = self.rng.choice(("flip", "insert", "delete", "cut", "type byte", "repeat"))
            if action == "flip" and data:
                data[min(at, len(data) - 1)] ^= 1 << self.rng.randrange(8)
            elif action == "insert":
                data[at:at] = self.rng.randbytes(self.rng.randint(1, 8))
            elif action == "delete":
                del data[at:at + self.rng.randint(1, 8)]
            elif action == "cut":
                del data[at:]
            elif action == "type byte" and data:
                data[min(at, len(data) - 1)] = self.rng.choice(
                    (0xC1, 0xC4, 0xC6, 0xC9, 0xCA, 0xCB, 0xCF, 0xD3, 0xD9, 0xDB, 0xDD, 0xDF, 0xFF))
            elif action == "repeat":
                data[at:at] = data[at:at + self.rng.randint(1, 16)]
        return bytes(data)

    # --- sending and judging -----------------------------------------------------------------

    def send(self, route, frames):
        """Sends one request; records what is wrong with its reply; returns the reply decoded (None
        when there was no good one)."""
        recorder = self.recorder
        exchange = Exchange("ZMQ", "REQ", (), frames, route, route)
        recorder.requests += 1
        recorder.recent.append(exchange)
        started = time.monotonic()
        try:
            reply = self.client.exchange(frames)
        except NoReply as error:
            exchange.error = error
            recorder.statuses[route]["no reply"] += 1
            recorder.check_alive(exchange, route)
            recorder.fail(route, "timeout: no reply within 5 s", exchange,
                          context=list(recorder.recent)[:-1])
            return None
        finally:
            exchange.seconds = time.monotonic() - started
        message, problem = self.judge_reply(reply)
        exchange.status = message["type"] if message else "bad reply"
        recorder.statuses[route][exchange.status] += 1
        recorder.check_alive(exchange, route)
        if problem:
            recorder.fail(route, problem, exchange, repr(reply)[:300])
        return message

    @staticmethod
    def judge_reply(frames):
        """(the reply decoded, what is wrong with it or "")."""
        if len(frames) != 1:
            return None, f"a reply of {len(frames)} frames"
        message, problem = decoded_map(frames[0])
        if problem:
            return None, "reply " + problem
        if message["type"] not in REPLY_TYPES:
            return None, f"reply of unknown type {message['type']!r}"
        if message["type"] == "error" and not isinstance(message.get("message"), str):
            return None, "error reply without a message string"
        return message, ""

    def drain_updates(self):
        """Reads the updates published meanwhile; records those that are not well-formed."""
        while self.client.sub.poll(0):
            frames = self.client.sub.recv_multipart()
            self.updates += 1
            message, problem = decoded_map(frames[0]) if len(frames) == 1 else (None, "multipart")
            if not problem and message["type"] not in UPDATE_TYPES:
                problem = f"of unknown type {message['type']!r}"
            if problem:
                exchange = Exchange("ZMQ", "SUB", (), frames, "update", "update")
                self.recorder.fail("PUB update", "update " + problem, exchange, repr(frames)[:300])

    def run_case(self, route, frames):
        reply = self.send(route, frames)
        if reply and reply["type"] == "job_accepted" and isinstance(reply.get("job_id"), str):
            self.job_ids.append(reply["job_id"])
            cancel = self.send("cancel after job_accepted",
                               pack({"type": "cancel", "job_id": reply["job_id"]}))
            if cancel and cancel["type"] not in ("job_cancelled", "job_error"):
                self.recorder.fail("cancel after job_accepted", f"answered {cancel['type']}")
        self.drain_updates()

    def final_ping(self):
        reply = self.send("final ping", pack({"type": "ping"}))
        if reply is not None and reply != {"type": "pong"}:
            self.recorder.fail("final ping", f"answered {reply!r} instead of pong")

    def run(self):
        print(f"[pixels] seed {self.seed}", flush=True)
        try:
            cases = hostile_frames() + self.odd_field_cases()
            self.rng.shuffle(cases)
            print(f"[pixels] {len(cases)} hostile frames, then random ones until the time is up",
                  flush=True)
            for route, frames in cases:
                if self.recorder.out_of_time():
                    break
                self.run_case(route, frames)
            while not self.recorder.out_of_time():
                self.run_case(*self.random_case())
            self.final_ping()
        except ServerDown:
            pass
        print(f"[pixels] {self.updates} updates read on the PUB socket", flush=True)
        self.client.close()
        self.recorder.summary()
        return self.recorder


def decoded_map(frame):
    """(the frame decoded, "") for one MessagePack map whose first key is the string "type" with a
    string value, else (None, what is wrong)."""
    try:
        pairs = msgpack.unpackb(frame, raw=False, object_pairs_hook=list, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as error:
        return None, f"not MessagePack ({type(error).__name__})"
    if not isinstance(pairs, list) or not pairs or not all(isinstance(p, tuple) for p in pairs):
        return None, "not a non-empty map"
    if pairs[0][0] != "type" or not isinstance(pairs[0][1], str):
        return None, "without a string type as its first key"
    return dict(pairs), ""


if __name__ == "__main__":
    run_fuzzer_from_command_line(PixelsFuzzer, __doc__)
