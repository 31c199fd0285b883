"""Property-based fuzzing of the /v1 API from the service's own GET /v1/openapi.json.

Schemathesis generates requests that fit the document (positive) and that break it (negative)
for every operation, round after round until the time is up. Path parameters are filled with the
ids that exist (jobs, models, artifacts) as often as with generated ones, so handlers get past
their 404s. A 5xx answer (the not_a_server_error check), a crash or a request without an answer
in time is a failure; answers that do not match the document (status code, content type, schema,
negative data accepted) are reported as notes only.

Usage: openapi_fuzz.py --base-url URL --state STATE_JSON --seconds N [--seed N] [--pid PID]
                       [--results JSON] [--server-log FILE]"""
import random

import hypothesis
import hypothesis.errors
import requests
from hypothesis import HealthCheck, Phase, strategies as st

import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               positive_data_acceptance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from fuzz_common import Recorder, ServerDown, run_fuzzer_from_command_line

REPORTED_CHECKS = [status_code_conformance, content_type_conformance, response_headers_conformance,
                   response_schema_conformance, negative_data_rejection, positive_data_acceptance]
EXAMPLES_PER_RUN = 6  # examples per operation and generation mode in one round
STREAM_SECONDS = 2.0  # how long an event stream is read


def failure_text(error):
    failures = list(getattr(error, "exceptions", None) or [error])
    first = failures[0]
    title = getattr(first, "title", None) or type(first).__name__
    message = getattr(first, "message", None) or str(first)
    return title, " ".join(str(message).split())[:300]


class OpenApiFuzzer:
    def __init__(self, args, state):
        self.base = args.base_url.rstrip("/")
        self.state = state
        self.rng = random.Random(args.seed)
        self.recorder = Recorder("openapi", self.base, args.pid, args.seed, args.seconds, args.server_log)
        self.schema = schemathesis.openapi.from_url(f"{self.base}/v1/openapi.json", timeout=20)
        self.operations = [result.ok() for result in self.schema.get_all_operations()]
        self.created_jobs = []
        self.unsatisfiable = set()  # (operation, mode) that have nothing to generate (e.g. nothing to negate)

    # --- strategies ---------------------------------------------------------------------------

    def strategies(self, operation, mode):
        """Cases for `operation`: generated ones, and as many with real ids in the path."""
        free = operation.as_strategy(generation_mode=mode)
        path = operation.path
        fixed = []
        if path.startswith("/v1/jobs/{id}"):
            ids = self.state["job_ids"] + self.state["prompt_ids"] + self.created_jobs[-2:]
            fixed = [operation.as_strategy(generation_mode=mode, path_parameters={"id": i}) for i in ids[:4]]
        elif path == "/v1/models/{id}":
            fixed = [operation.as_strategy(generation_mode=mode, path_parameters={"id": i})
                     for i in self.state["model_ids"][:2]]
        elif path.startswith("/v1/files/"):
            for artifact in self.state["artifacts"][:2]:
                key = artifact["path"].split("/v1/files/", 1)[1]
                fixed.append(operation.as_strategy(generation_mode=mode, path_parameters={"key": key}))
                fixed.append(operation.as_strategy(generation_mode=mode, path_parameters={"key": key},
                                                   query={"expires": artifact["expires"], "sig": artifact["sig"]}))
        return st.one_of([free] + fixed) if fixed else free

    # --- one case -----------------------------------------------------------------------------

    def prepare(self, case, mode):
        """The exact request for `case`, or None when the client cannot send it (e.g. a header
        value that is not latin-1)."""
        if (case.operation.path == "/v1/jobs" and case.method.upper() == "POST" and mode.is_positive
                and isinstance(case.body, dict) and self.rng.random() < 0.6):
            case.body["model_id"] = self.rng.choice(self.state["model_ids"])  # get past "no such model"
        kwargs = case.as_transport_kwargs(base_url=self.base)
        kwargs.pop("timeout", None)
        kwargs.pop("allow_redirects", None)
        kwargs.pop("verify", None)
        try:
            prepared = requests.Request(**{k: v for k, v in kwargs.items()
                                           if k in ("method", "url", "headers", "files", "data", "params",
                                                    "auth", "cookies", "json")}).prepare()
            target = prepared.path_url
            headers = []
            for name, value in prepared.headers.items():
                if name.lower() in ("host", "origin"):
                    continue  # the service is reached as 127.0.0.1:PORT, never cross-site
                if isinstance(value, str):
                    value.encode("latin-1")
                headers.append((name, value))
        except (ValueError, UnicodeError, requests.RequestException, TypeError):
            return None
        body = prepared.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        return prepared, target, headers, body

    def exercise(self, case, mode):
        if self.recorder.out_of_time():
            return
        ready = self.prepare(case, mode)
        if ready is None:
            return
        prepared, target, headers, body = ready
        label = f"{case.method.upper()} {case.operation.path}"
        is_stream = case.operation.path.endswith("/events")
        exchange = self.recorder.send(case.method.upper(), target, headers, body, route=label,
                                      kind=f"schemathesis {mode.value}",
                                      stream_seconds=STREAM_SECONDS if is_stream else None, judge=False)
        if exchange.status is None:
            return
        if case.operation.path == "/v1/jobs" and exchange.status in (200, 202):
            self.cancel_if_large(exchange)
        headers = {}
        for name, value in exchange.response_headers.items():
            headers.setdefault(name, []).append(value)
        response = schemathesis.Response(status_code=exchange.status, headers=headers,
                                         content=exchange.response_body, request=prepared,
                                         elapsed=exchange.seconds, verify=True,
                                         stream_cut_short=is_stream)
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (Exception, BaseExceptionGroup):  # a 5xx: the one kind of finding that fails the run
            self.recorder.judge(exchange, label)
        if exchange.status >= 500 or is_stream:
            return
        for check in REPORTED_CHECKS:
            try:
                case.validate_response(response, checks=[check])
            except (Exception, BaseExceptionGroup) as error:
                title, message = failure_text(error)
                self.recorder.note(label, f"{check.__name__}: {title}", exchange,
                                   f"HTTP {exchange.status}: {message}")

    def cancel_if_large(self, exchange):
        """A fuzzed job that the worker would take long over is canceled at once."""
        import json
        try:
            job = json.loads(exchange.response_body)
        except ValueError:
            return
        job_id = job.get("id") if isinstance(job, dict) else None
        if not isinstance(job_id, str):
            return
        self.created_jobs.append(job_id)
        spec = job.get("spec") or job.get("params") or {}
        def number(name, fallback):
            value = spec.get(name, fallback) if isinstance(spec, dict) else fallback
            return value if isinstance(value, (int, float)) else fallback
        work = number("width", 512) * number("height", 512) * number("steps", 20) * number("count", 1)
        if work > 64 * 64 * 4 * 2 or job.get("type") == "workflow":
            self.recorder.send("POST", f"/v1/jobs/{job_id}/cancel", [("Content-Type", "application/json")], b"",
                               route="POST /v1/jobs/{id}/cancel", kind="cleanup")

    # --- rounds -------------------------------------------------------------------------------

    def run_operation(self, operation, mode, seed):
        key = (operation.method, operation.path, mode)
        if key in self.unsatisfiable:
            return
        strategy = self.strategies(operation, mode)

        @hypothesis.settings(max_examples=EXAMPLES_PER_RUN, deadline=None, database=None,
                             phases=[Phase.generate], suppress_health_check=list(HealthCheck),
                             print_blob=False, verbosity=hypothesis.Verbosity.quiet)
        @hypothesis.seed(seed)
        @hypothesis.given(case=strategy)
        def run(case):
            self.exercise(case, mode)

        try:
            run()
        except ServerDown:
            raise
        except hypothesis.errors.Unsatisfiable:  # e.g. nothing in the operation can be made invalid
            self.unsatisfiable.add(key)
        except Exception as error:  # the generator could not make a case: not the service's fault
            if self.recorder.down:
                raise ServerDown(self.recorder.down)
            self.recorder.note(f"{operation.method.upper()} {operation.path}", "not fuzzed this round",
                               detail=f"{type(error).__name__}: {str(error)[:200]}")

    def run(self):
        print(f"[openapi] seed {self.recorder.seed}; {len(self.operations)} operations from /v1/openapi.json",
              flush=True)
        round_number = 0
        try:
            while not self.recorder.out_of_time():
                order = list(self.operations)
                self.rng.shuffle(order)
                for index, operation in enumerate(order):
                    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                        if self.recorder.out_of_time():
                            break
                        self.run_operation(operation, mode, self.recorder.seed * 1000003 + round_number * 131 + index)
                round_number += 1
        except ServerDown:
            pass
        self.recorder.summary()
        return self.recorder


if __name__ == "__main__":
    run_fuzzer_from_command_line(OpenApiFuzzer, __doc__)
