#!/usr/bin/env python3
"""Writes Tests/ThemisDistillTests/Fixtures/ifd-reference.json: llama.cpp's log-probabilities of
answer tokens after given prefix tokens, the outside reference for IFD.

usage: scripts/ifd-reference.py INPUT.json   (INPUT: the records with token ids, written by
       `THEMIS_WRITE_IFD_INPUT=path swift test --filter IFDTests`); runs with the llama-cpp-python
       of .venv (make bench installs it).
"""
import json, math, os, sys

import llama_cpp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
store = os.environ.get("THEMIS_MODELS") or os.path.expanduser("~/.cache/themis/models")
records = json.load(open(sys.argv[1]))
out = {"llama_cpp_python": llama_cpp.__version__, "records": []}
models = {}
for r in records:
    path = os.path.join(store, r["model_file"])
    if path not in models:
        models[path] = llama_cpp.Llama(model_path=path, n_ctx=2048, n_batch=512, logits_all=True, verbose=False, n_threads=2)
    llm = models[path]

    def logprobs(prefix, answer):
        llm.reset()
        llm.eval(prefix + answer)
        scores = np.array(llm.scores[: len(prefix) + len(answer)], dtype=np.float64)
        result = []
        for j, tok in enumerate(answer):
            row = scores[len(prefix) - 1 + j]
            m = row.max()
            result.append(float(row[tok] - m - math.log(np.exp(row - m).sum())))
        return result

    cond = logprobs(r["conditioned_prefix"], r["answer"])
    uncond = logprobs(r["start"], r["answer"])
    ce_c, ce_u = -sum(cond) / len(cond), -sum(uncond) / len(uncond)
    out["records"].append(dict(r, llama_conditioned=cond, llama_unconditioned=uncond, llama_ifd=ce_c / ce_u))
dest = os.path.join(ROOT, "Tests", "ThemisDistillTests", "Fixtures", "ifd-reference.json")
os.makedirs(os.path.dirname(dest), exist_ok=True)
json.dump(out, open(dest, "w"), indent=1)
print("wrote", dest)
