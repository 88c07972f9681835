#!/usr/bin/env python3
"""Writes the committed seed corpus of the fuzz targets (Fuzz/corpus/<target>/).

The GGUF seed is a miniature of the real SmolLM2 file made with the `gguf` package: its first
300 tokens, the merges among them, its hyper-parameters and chat template, and one small f32
tensor, so the fuzzer starts from a file the whole loader path accepts. Run from the repository
root: python3 Fuzz/make-seeds.py [path to SmolLM2-135M-Instruct.Q4_1.gguf]
"""
import json
import os
import sys

import numpy as np
from gguf import GGUFReader, GGUFWriter

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
models = os.environ.get("THEMIS_MODELS") or os.path.expanduser("~/.cache/themis/models")
source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(models, "SmolLM2-135M-Instruct.Q4_1.gguf")


def write(target, name, data):
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def field(reader, key):
    f = reader.fields[key]
    if f.types[0].name == "STRING":
        return bytes(f.parts[f.data[0]]).decode()
    if f.types[0].name == "ARRAY":
        if f.types[1].name == "STRING":
            return [bytes(f.parts[i]).decode() for i in f.data]
        return [int(f.parts[i][0]) for i in f.data]
    return f.parts[f.data[0]][0].item()


def gguf_seed():
    r = GGUFReader(source)
    n = 300
    tokens = field(r, "tokenizer.ggml.tokens")[:n]
    types = field(r, "tokenizer.ggml.token_type")[:n]
    vocab = set(tokens)
    merges = [m for m in field(r, "tokenizer.ggml.merges") if m.replace(" ", "", 1) in vocab
              and all(p in vocab for p in m.split(" ", 1))][:120]
    path = os.path.join(root, "gguf", "smollm2-miniature")  # no .gguf: the repository ignores model files
    w = GGUFWriter(path, "llama")
    for key in ["llama.context_length", "llama.embedding_length", "llama.feed_forward_length", "llama.attention.head_count",
                "llama.attention.head_count_kv", "llama.rope.dimension_count"]:
        w.add_uint32(key, int(field(r, key)))
    w.add_uint32("llama.block_count", 1)
    w.add_uint32("llama.vocab_size", n)
    w.add_float32("llama.rope.freq_base", float(field(r, "llama.rope.freq_base")))
    w.add_float32("llama.attention.layer_norm_rms_epsilon", float(field(r, "llama.attention.layer_norm_rms_epsilon")))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(field(r, "tokenizer.ggml.pre"))
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(field(r, "tokenizer.chat_template"))
    w.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


gguf_seed()
write("tokenizer", "text", b"\x00Hello, world! The quick brown fox 123 \xe2\x80\x94 caf\xc3\xa9 \xf0\x9f\x98\x80")
write("tokenizer", "special", b"\x04<|im_start|>user\nHi<|im_end|>\n<|endoftext|>")
write("tokenizer", "ids", b"\x01" + b"".join(i.to_bytes(4, "little", signed=True) for i in [1, 504, 3575, 2, -1, 49151, 49152]))
write("chat-template", "conversation", b"\x00You are a judge.\x00\x01What is 2 + 2?\x00\x024\x00\x01And 3 + 3?")
write("verdict", "rating", "I believe the overall rating of this response is [[4]].\nStrengths:\n- Accuracy [[5]]\n")
write("verdict", "pairwise", "After comparing the two responses, my verdict is [[A]]. Response B misses the point [[2]].")
write("verdict", "ambiguous", "[[3]] or maybe [[5]]? rating [[C]] [[10]] [[-1]] [[")
judge = {"id": "a", "status": "ok", "parse_status": "ok", "mode": "single", "scenario": "open_qa", "rating": 4,
         "distribution": {"1": 0.1, "2": 0.1, "3": 0.2, "4": 0.5, "5": 0.1}, "label": 4}
write("jsonl", "judge.jsonl", json.dumps(judge) + "\n" + json.dumps({"id": "b", "status": "error", "error": "line 2: x"}) + "\n")
write("jsonl", "crlf-bom.jsonl", "\ufeff" + json.dumps({"id": 1, "instruction": "Q"}) + "\r\n{\"id\": \"2\"}\r\n")
write("jsonl", "array.json", json.dumps([{"input": "Q", "output_1": "a", "output_2": "b", "label": 1}, 3, None]))
graded = {"id": "g", "instruction_id": "i", "scenario": "open_qa", "instruction": "Q", "mode": "single", "response": "A",
          "prompt": "P", "judgement": "J", "teacher": "t", "verdict_source": "exact", "verdict_probabilities": {"4": 1.0},
          "score": 4, "criteria_scores": {"Accuracy": 4}, "item": "g", "index": 0, "of": 1}
write("jsonl", "graded.jsonl", json.dumps(graded) + "\n")
with open(os.path.join(os.path.dirname(root), "..", "examples", "distill-mini.yaml")) as f:
    write("distill-config", "distill-mini.yaml", f.read())
write("distill-config", "flow.yaml", "seed: 3\ngenerators: {a: {url: 'http://127.0.0.1:9/v1', concurrency: 2}}\n"
      "synthesize: {generator: a, quizzes: {math_qa: 1}}\nrespond: {generators: [a]}\ngrade: {teacher: a, modes: [single]}\n"
      "select: {strategy: random}\n")
write("server-request", "chat.json", json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2,
                                                 "temperature": 0, "stream": True, "logprobs": True, "top_logprobs": 2}))
write("server-request", "judge-in-chat.json", json.dumps({"messages": [{"role": "user", "content": json.dumps(
    {"mode": "pairwise", "question": "Q", "answer1": "a", "answer2": "b"})}]}))
write("server-request", "completion.json", json.dumps({"prompt": "Once", "max_tokens": 0, "echo": True, "logprobs": 5,
                                                       "stop": ["\n"], "seed": 1}))
write("server-request", "judge.json", json.dumps({"mode": "single", "question": "Q", "answer": "A", "ref_answer": "R",
                                                  "scenario": "open_qa"}))
