#!/usr/bin/env python3
"""Prints `themis judge` output records (JSON Lines on stdin) as one readable line each, and
passes the summary lines through."""
import json
import sys

for line in sys.stdin:
    line = line.rstrip("\n")
    try:
        r = json.loads(line)
    except ValueError:
        print(line)  # summary lines
        continue
    if not isinstance(r, dict):
        print(line)
        continue
    if r.get("status") != "ok":
        print(f"{r.get('id')}: ERROR {r.get('error')}")
        continue
    if r.get("mode") == "pairwise":
        verdict = f"verdict {r.get('verdict')} (orders {r.get('verdicts_by_order')}, consistent {r.get('consistent')})"
    else:
        expected = r.get("expected_score")
        verdict = f"rating {r.get('rating')}" + (f" (expected {expected:.2f})" if expected is not None else "")
    label = f", human label {r['label']}" if "label" in r else ""
    explanation = " ".join((r.get("explanation") or "").split())[:100]
    print(f"{r.get('id')} [{r.get('mode')}, {r.get('scenario')} ({r.get('scenario_source')})]: {verdict}{label}")
    if explanation:
        print(f"    {explanation}")
