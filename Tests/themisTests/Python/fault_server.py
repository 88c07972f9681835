#!/usr/bin/env python3
"""An OpenAI-compatible loopback server that misbehaves on purpose, for the judge's client tests
(themisTests/FaultyServerJudgeTests.swift).

Chat completions answer a verdict: the first answer token's top log-probabilities favour "4" (or,
under /nolog/v1, no log-probabilities at all and the text "4]]", as servers that refuse them do);
completions (`logprobs`, no `echo`) answer the same first token in the legacy format.
A request whose messages contain `fault=NAME-once` fails the first time it is seen and is then
answered; `fault=NAME-always` fails every time, until `POST /heal` turns all faults off. NAME:

  429     HTTP 429 with Retry-After: 1      500        HTTP 500 with an error body
  slow    the answer comes after 6 s        truncated  HTTP 200, JSON cut in the middle
  drop    the connection is closed without an answer

`GET /stats` gives, per fault marker, the arrival times of its requests (seconds since start).

usage: fault_server.py   (prints "listening on http://127.0.0.1:PORT" once it accepts connections)
"""
import json, re, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

START = time.monotonic()
LOCK = threading.Lock()
SEEN = {}      # marker -> arrival times
HEALED = [False]
MODEL = "faulty-judge"


# " 4" is another continuation of "[[" than "4": a client must not take it for the label
TOP = [("4", -0.25), ("3", -1.8), ("5", -2.6), ("2", -4.0), ("1", -5.5), ("The", -6.0), (" 4", -7.0)]


def completion_reply():
    """The legacy completions format: the first token and its alternatives."""
    return {"id": "x", "object": "text_completion", "model": MODEL,
            "choices": [{"index": 0, "text": "4", "finish_reason": "length",
                         "logprobs": {"tokens": ["4"], "token_logprobs": [-0.25], "text_offset": [0],
                                      "top_logprobs": [dict(TOP)]}}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101}}


def verdict_reply(logprobs):
    top = TOP
    choice = {"index": 0, "message": {"role": "assistant", "content": "4" if logprobs else "4]]"}, "finish_reason": "length"}
    if logprobs:
        choice["logprobs"] = {"content": [{"token": "4", "logprob": -0.25,
                                           "top_logprobs": [{"token": t, "logprob": v} for t, v in top]}]}
    return {"id": "x", "object": "chat.completion", "model": MODEL, "choices": [choice],
            "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101}}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path.endswith("/models"):
            self.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        elif self.path == "/stats":
            with LOCK:
                self.send_json(200, SEEN)
        else:
            self.send_json(404, {"error": {"message": "no route " + self.path}})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path == "/heal":
            HEALED[0] = True
            self.send_json(200, {"healed": True})
            return
        chat = self.path.endswith("/chat/completions")
        if not chat and not self.path.endswith("/completions"):
            self.send_json(404, {"error": {"message": "no route " + self.path}})
            return
        try:
            request = json.loads(raw)
        except ValueError:
            self.send_json(400, {"error": {"message": "body is not JSON"}})
            return
        if chat:
            text = " ".join(m.get("content", "") for m in request.get("messages", []))
        else:
            text = request.get("prompt", "")
            if request.get("echo") or not request.get("logprobs"):
                self.send_json(400, {"error": {"message": "this server answers completions with logprobs and no echo only"}})
                return
        match = re.search(r"fault=([a-z0-9]+)-(once|always)", text)
        fail = None
        if match:
            marker = match.group(0)
            with LOCK:
                times = SEEN.setdefault(marker, [])
                times.append(round(time.monotonic() - START, 3))
                first = len(times) == 1
            if not HEALED[0] and (match.group(2) == "always" or first):
                fail = match.group(1)
        if fail == "429":
            self.send_json(429, {"error": {"message": "rate limited"}}, headers=[("Retry-After", "1")])
        elif fail == "500":
            self.send_json(500, {"error": {"message": "internal error"}})
        elif fail == "truncated":
            body = json.dumps(verdict_reply(True)).encode()[:40]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif fail == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            if fail == "slow":
                time.sleep(6)
            if not chat:
                self.send_json(200, completion_reply())
                return
            logprobs = not self.path.startswith("/nolog/") and bool(request.get("logprobs"))
            self.send_json(200, verdict_reply(logprobs))


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print("listening on http://127.0.0.1:%d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
