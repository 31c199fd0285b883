"""Prints what the fuzzers found: requests tried per fuzzer and in all, every distinct failure with
the request that reproduces it, and the notes (answers that are wrong but not failures).

Usage: report.py RESULTS_JSON... ; exits 1 when any fuzzer recorded a failure."""
import json
import os
import sys

NOTES_SHOWN = int(os.environ.get("FUZZ_NOTES_SHOWN", "15"))


def show_request(request, indent="      "):
    if not request:
        return
    print(f"{indent}method:  {request['method']}")
    print(f"{indent}path:    {request['path']}")
    print(f"{indent}headers: {request['headers']}")
    print(f"{indent}body:    {request['body']}")
    if request.get("kind") and indent != "      ":
        print(f"{indent}case:    {request['kind']}")


def main():
    results = []
    for path in sys.argv[1:]:
        try:
            with open(path, encoding="utf-8") as source:
                results.append(json.load(source))
        except (OSError, ValueError):
            pass
    total = sum(r["requests"] for r in results)
    print("== fuzzing summary")
    for r in results:
        print(f"   {r['fuzzer']:8} {r['requests']:6} requests in {r['seconds']:5.0f} s (seed {r['seed']})"
              + (f"; stopped: {r['down']}" if r["down"] else ""))
    print(f"   {'total':8} {total:6} requests")
    if os.environ.get("FUZZ_VERBOSE"):
        for r in results:
            print(f"== answers of the {r['fuzzer']} fuzzer by route")
            for route, counts in r.get("statuses", {}).items():
                print(f"   {route[:70]:70} " + " ".join(f"{status}:{count}" for status, count in counts.items()))
    failures = [f for r in results for f in r["failures"]]
    notes = [n for r in results for n in r["notes"]]
    if notes:
        print(f"== {len(notes)} distinct notes (not failures)")
        for note in notes[:NOTES_SHOWN]:
            print(f"   [{note['fuzzer']}] {note['route']}: {note['what']} (x{note['count']})"
                  + (f" - {note['detail'][:200]}" if note.get("detail") else ""))
        if len(notes) > NOTES_SHOWN:
            print(f"   ... and {len(notes) - NOTES_SHOWN} more (FUZZ_NOTES_SHOWN shows more)")
    if not failures:
        print("== no failures")
        return 0
    print(f"== {len(failures)} distinct failures")
    for number, failure in enumerate(failures, 1):
        print(f"-- {number}. [{failure['fuzzer']}] {failure['route']}: {failure['outcome']}"
              f" (seen {failure['count']}x; seed {failure['seed']})")
        if failure.get("detail"):
            print(f"      answer:  {failure['detail']}")
        if failure.get("kind"):
            print(f"      case:    {failure['kind']}")
        show_request(failure.get("request"))
        context = failure.get("context") or []
        if context:
            print("      earlier requests, oldest first (one of them may have stored what broke this one):")
        for previous in context:
            print("      -")
            show_request(previous, indent="        ")
    return 1


if __name__ == "__main__":
    sys.exit(main())
