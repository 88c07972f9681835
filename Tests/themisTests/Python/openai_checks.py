#!/usr/bin/env python3
"""Drives a running `themis serve` with the real `openai` client (and plain HTTP for the error
cases). Used by themisTests/ServeTests.swift; each subcommand exits non-zero with a message on the
first failed check and prints one JSON line of figures on success.

usage: openai_checks.py BASE_URL MODEL_ID {api,errors,load,shutdown,bench,busy,disconnect,interleave,oom} [--key K] [--pid P]
"""
import argparse, asyncio, json, os, signal, statistics, sys, time, urllib.error, urllib.request

import openai
from openai import AsyncOpenAI, OpenAI


def check(condition, message):
    if not condition:
        print("FAILED: " + message, file=sys.stderr)
        sys.exit(1)


def greedy(client, model, content, max_tokens=16, **extra):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}],
                                          temperature=0, max_tokens=max_tokens, **extra)


def api(a):
    client = OpenAI(base_url=a.base + "/v1", api_key=a.key or "none")
    models = client.models.list()
    check([m.id for m in models.data] == [a.model], "models: %s" % models)

    r = greedy(client, a.model, "Name three primary colours.", seed=3)
    text = r.choices[0].message.content
    check(isinstance(text, str) and text.strip(), "chat content: %r" % r)
    check(r.choices[0].finish_reason in ("stop", "length"), "finish_reason %r" % r.choices[0].finish_reason)
    check(r.usage.prompt_tokens > 5 and 0 < r.usage.completion_tokens <= 16, "usage %s" % r.usage)
    check(r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens, "total_tokens")

    # streaming gives the same greedy text, chunk by chunk, and usage at the end
    chunks = list(client.chat.completions.create(model=a.model, temperature=0, max_tokens=16, stream=True,
                                                 stream_options={"include_usage": True},
                                                 messages=[{"role": "user", "content": "Name three primary colours."}]))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check(streamed == text, "stream %r != %r" % (streamed, text))
    check(len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "stream came in one piece")
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    check(finals == [r.choices[0].finish_reason], "stream finish %r" % finals)
    check(chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == r.usage.completion_tokens, "stream usage")

    # logprobs: one entry per token, the greedy choice is the most likely one, values are log-probabilities
    r = greedy(client, a.model, "Say hello.", max_tokens=8, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    check(len(content) == r.usage.completion_tokens, "logprobs count %d vs %d" % (len(content), r.usage.completion_tokens))
    for t in content:
        check(len(t.top_logprobs) == 3, "top_logprobs %r" % t)
        check(t.logprob <= 0 and abs(t.logprob - t.top_logprobs[0].logprob) < 1e-5, "greedy token not the top one: %r" % t)
        check(t.top_logprobs[0].logprob >= t.top_logprobs[1].logprob >= t.top_logprobs[2].logprob, "top order")
        check(bytes(t.bytes).decode("utf-8", "replace") == t.token or t.bytes, "bytes")
    check("".join(t.token for t in content) == r.choices[0].message.content, "tokens spell the content")

    # seeded sampling repeats itself
    s1 = greedy(client, a.model, "Write a word.", max_tokens=8, seed=11).choices[0].message.content
    hot = [client.chat.completions.create(model=a.model, temperature=1.0, top_p=0.9, seed=7, max_tokens=8,
                                          messages=[{"role": "user", "content": "Write a word."}]).choices[0].message.content
           for _ in range(2)]
    check(hot[0] == hot[1], "seeded sampling differs: %r" % hot)
    check(isinstance(s1, str), "seeded greedy")

    # stop strings end the text before them
    r = client.chat.completions.create(model=a.model, temperature=0, max_tokens=32, stop=[" "],
                                       messages=[{"role": "user", "content": "Name three primary colours."}])
    check(" " not in r.choices[0].message.content and r.choices[0].finish_reason == "stop", "stop: %r" % r.choices[0])

    # the completions endpoint with legacy logprobs
    c = client.completions.create(model=a.model, prompt="The capital of France is", max_tokens=6, temperature=0, logprobs=2)
    lp = c.choices[0].logprobs
    check(len(lp.tokens) == c.usage.completion_tokens and all(len(t) <= 2 for t in lp.top_logprobs), "completion logprobs %r" % lp)
    check("".join(lp.tokens) == c.choices[0].text, "completion tokens spell the text")

    # the judge through chat: verdict first, the structured verdict beside it
    question = {"mode": "single", "question": "What is 2 + 2?", "answer": "2 + 2 = 4.", "scenario": "math_qa"}
    j = client.chat.completions.create(model=a.model, messages=[{"role": "user", "content": json.dumps(question)}])
    check(j.choices[0].message.content.startswith("I believe the overall rating of this response is [["), "judge text %r" % j)
    verdict = j.model_extra["judgement"]
    check(verdict["mode"] == "single" and verdict["scenario"] == "math_qa" and 1 <= verdict["rating"] <= 5, "judgement %r" % verdict)
    check(j.choices[0].message.content.startswith("I believe the overall rating of this response is [[%d]]" % verdict["rating"]),
          "text and verdict agree")
    pair = {"mode": "pairwise", "question": "What is the chemical symbol for gold?", "answer1": "Ag", "answer2": "Au"}
    req = urllib.request.Request(a.base + "/v1/judge", data=json.dumps(pair).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **({"Authorization": "Bearer " + a.key} if a.key else {})})
    with urllib.request.urlopen(req, timeout=120) as resp:
        out = json.loads(resp.read())
    check(out["mode"] == "pairwise" and out["verdict"] in ("A", "B", "tie") and set(out["verdicts_by_order"]) == {"ab", "ba"},
          "judge endpoint %r" % out)
    ref = dict(question, ref_answer="4")
    j = client.chat.completions.create(model=a.model, messages=[{"role": "user", "content": json.dumps(ref)}])
    check(j.model_extra["judgement"]["mode"] == "reference", "reference judge")
    print(json.dumps({"ok": True}))


def raw(a, path, body=None, headers=None, method="POST"):
    h = {"Content-Type": "application/json"}
    if a.key:
        h["Authorization"] = "Bearer " + a.key
    h.update(headers or {})
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    req = urllib.request.Request(a.base + path, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null"), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), dict(e.headers)


def errors(a):
    ok_body = {"model": a.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "temperature": 0}

    def expect(status, body, fragment, **kw):
        code, out, _ = raw(a, kw.pop("path", "/v1/chat/completions"), body, **kw)
        check(code == status, "expected %d for %r, got %d: %r" % (status, fragment, code, out))
        message = out["error"]["message"]
        check(fragment in message, "message %r lacks %r" % (message, fragment))
        check(set(out["error"]) >= {"message", "type", "param", "code"}, "error shape %r" % out)
        # the server stays up and answers the next request
        code, out, _ = raw(a, "/v1/chat/completions", ok_body)
        check(code == 200 and out["choices"][0]["message"]["content"] is not None, "server did not answer after %r" % fragment)

    expect(400, b'{"model": "x", "messages": [', "not valid JSON")
    expect(400, {"model": a.model, "messages": "hello"}, "'messages' has the wrong type: expected an array")
    expect(400, {"model": a.model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": "ten"},
           "'max_tokens' has the wrong type: expected an integer")
    expect(400, {"model": a.model, "messages": [{"role": 7, "content": "Hi"}]}, "'messages[0].role' has the wrong type")
    expect(400, {"model": a.model}, "missing required field 'messages'")
    expect(400, {"model": a.model, "messages": [{"role": "wizard", "content": "Hi"}]}, "'messages[0].role' is 'wizard'")
    expect(404, dict(ok_body, model="gpt-17"), "the model 'gpt-17' does not exist")
    expect(400, dict(ok_body, max_tokens=10**6), "above this server's limit")
    expect(400, dict(ok_body, temperature=-1), "temperature")
    expect(413, b'{"model": "' + b"x" * (2 << 20) + b'"}', "larger than")
    long = "word " * 5000
    expect(400, dict(ok_body, messages=[{"role": "user", "content": long}]), "tokens but the context holds")
    expect(400, {"mode": "pairwise", "question": "Q", "answer1": "a"}, "pairwise needs answer1 and answer2", path="/v1/judge")
    expect(400, {"mode": "single", "question": "Q", "answer": "a", "scenario": "astrology"}, "unknown scenario 'astrology'",
           path="/v1/judge")
    expect(400, dict(ok_body, max_tokens=2.5), "'max_tokens' must be a whole number")
    expect(400, b'{"model": "\xff\xfe", "messages": []}', "not valid UTF-8")
    code, out, _ = raw(a, "/v1/nothing", ok_body)
    check(code == 404 and "no route" in out["error"]["message"], "unknown route %r" % out)
    # a malformed chunk size is the client's error: 400, and the server stays up
    status = raw_socket(a, b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                           + auth_header(a) + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
    check(status == 400, "malformed chunk size answered %r" % status)
    check(raw(a, "/v1/chat/completions", ok_body)[0] == 200, "server down after a malformed chunk")
    # metrics are labelled by route: 2,000 random paths (one with a quote) add no label
    before = len(metrics(a)[1])
    for i in range(2000):
        raw(a, "/v1/zz%d" % i if i else '/v1/"quoted', ok_body)
    if a.key:
        for i in range(50):
            raw(a, "/v1/models", None, headers={"Authorization": "Bearer wrong"}, method="GET")
    code, text = metrics(a)
    check(len(text) < before + 200, "metrics grew from %d to %d bytes" % (before, len(text)))
    check('endpoint="other"' in text and "zz" not in text and '\\"' not in text, "route labels %r" % text[:600])
    # an idle connection is closed after --idle-timeout
    if a.idle:
        import socket, time
        host, port = a.base.split("//")[1].split(":")
        s = socket.create_connection((host, int(port)), timeout=30)
        start = time.time()
        data = s.recv(1)
        check(data == b"" and time.time() - start < a.idle + 10, "idle connection still open after %.1f s" % (time.time() - start))
        s.close()
    if a.key:
        code, out, _ = raw(a, "/v1/models", None, headers={"Authorization": ""}, method="GET")
        check(code == 401 and "missing API key" in out["error"]["message"], "missing key %r" % out)
        code, out, _ = raw(a, "/v1/models", None, headers={"Authorization": "Bearer wrong"}, method="GET")
        check(code == 401 and out["error"]["message"] == "invalid API key", "wrong key %r" % out)
        bad = OpenAI(base_url=a.base + "/v1", api_key="wrong")
        try:
            bad.models.list()
            check(False, "the openai client got through with a wrong key")
        except openai.AuthenticationError:
            pass
        code, out, _ = raw(a, "/health", None, headers={"Authorization": ""}, method="GET")
        check(code == 200, "/health needs no key")
    code, text = metrics(a)
    check(code == 200 and "themis_errors_total{status=\"400\"}" in text and "themis_queue_depth" in text, "metrics %r" % text[:400])
    print(json.dumps({"ok": True}))


def auth_header(a):
    return ("Authorization: Bearer %s\r\n" % a.key).encode() if a.key else b""


def raw_socket(a, data):
    """Sends raw bytes; the status of the answer, or None when the server closed the connection."""
    import socket
    host, port = a.base.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(data)
        reply = b""
        try:
            while b"\r\n" not in reply:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except ConnectionResetError:
            return None
    return int(reply.split(b" ")[1]) if reply.startswith(b"HTTP/1.1 ") else None


def metrics(a):
    req = urllib.request.Request(a.base + "/metrics", headers={"Authorization": "Bearer " + a.key} if a.key else {})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.read().decode()


PROMPTS = ["Count from %d to %d." % (i, i + 4) for i in range(1, 31)]
STORIES = ["a dragon who bakes bread", "a lighthouse keeper", "a lost robot", "two rival chefs", "a whale who sings",
           "a clockmaker's apprentice", "a city under the sea", "a fox and a crow", "the last train home", "a garden on the moon"]


async def timed(client, model, prompt, max_tokens):
    t = time.perf_counter()
    r = await client.chat.completions.create(model=model, temperature=0, max_tokens=max_tokens,
                                             messages=[{"role": "user", "content": prompt}])
    return prompt, r.choices[0].message.content, r.usage.completion_tokens, time.perf_counter() - t


async def load_async(a):
    client = AsyncOpenAI(base_url=a.base + "/v1", api_key=a.key or "none", max_retries=0, timeout=600)
    expected = {}
    for p in PROMPTS:  # one at a time: each prompt's own greedy answer
        expected[p] = (await timed(client, a.model, p, a.max_tokens))[1]
    semaphore = asyncio.Semaphore(a.clients)

    async def one(i):
        async with semaphore:
            return await timed(client, a.model, PROMPTS[i % len(PROMPTS)], a.max_tokens)

    start = time.perf_counter()
    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(a.requests)), return_exceptions=True), a.deadline)
    wall = time.perf_counter() - start
    failures = [r for r in results if isinstance(r, BaseException)]
    check(not failures, "%d requests failed, e.g. %r" % (len(failures), failures[:1]))
    wrong = [(p, t) for p, t, _, _ in results if t != expected[p]]
    check(not wrong, "%d answers differ from their prompt's own greedy answer, e.g. %r vs %r"
          % (len(wrong), wrong[:1], [expected[w[0]] for w in wrong[:1]]))
    latencies = sorted(r[3] for r in results)
    tokens = sum(r[2] for r in results)
    print(json.dumps({"ok": True, "requests": len(results), "clients": a.clients, "wall_s": round(wall, 2),
                      "p50_s": round(statistics.median(latencies), 3),
                      "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
                      "generated_tokens": tokens, "tokens_per_s": round(tokens / wall, 1)}))


def shutdown(a):
    client = OpenAI(base_url=a.base + "/v1", api_key=a.key or "none", max_retries=0)
    stream = client.chat.completions.create(model=a.model, temperature=0, max_tokens=48, stream=True,
                                            messages=[{"role": "user", "content": "Tell me about the sea."}])
    pieces, finish, signalled = [], None, False
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            pieces.append(chunk.choices[0].delta.content)
            if not signalled and len(pieces) >= 2:
                os.kill(a.pid, signal.SIGTERM)
                signalled = True
        if chunk.choices and chunk.choices[0].finish_reason:
            finish = chunk.choices[0].finish_reason
    check(signalled, "the stream ended before the signal")
    check(finish in ("stop", "length") and len(pieces) > 2, "stream cut short by SIGTERM: %r, %r" % (finish, pieces))
    print(json.dumps({"ok": True, "chunks": len(pieces), "finish": finish}))


def busy(a):
    """With one slot and a queue of one, a burst gets 503 with Retry-After, the rest succeed."""
    import concurrent.futures
    body = {"model": a.model, "messages": [{"role": "user", "content": "Tell me a long story about the sea."}],
            "max_tokens": 48, "temperature": 0}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda _: raw(a, "/v1/chat/completions", body), range(6)))
    busy = [r for r in results if r[0] == 503]
    done = [r for r in results if r[0] == 200]
    check(busy and done and len(busy) + len(done) == 6, "statuses %r" % [r[0] for r in results])
    for code, out, headers in busy:
        check(out["error"]["code"] == "queue_full" and "busy" in out["error"]["message"], "503 body %r" % out)
        check({k.lower(): v for k, v in headers.items()}.get("retry-after") == "1", "Retry-After %r" % headers)
    code, out, _ = raw(a, "/v1/chat/completions", dict(body, max_tokens=2))
    check(code == 200, "after the burst: %d" % code)
    print(json.dumps({"ok": True, "served": len(done), "refused": len(busy)}))


def interleave(a):
    """A /v1/judge request with a long answer does not hold up a 2-token completion that arrives
    while its prompts go in, and its record is the one it gets alone (run the server with
    --prefix-cache-mib 0 and --explain none, so the second run evaluates every prompt again)."""
    import threading
    answer = " ".join("Step %d: the committee reviewed the budget, the hiring plan and the roadmap." % i for i in range(55))
    judge = {"mode": "single", "question": "Summarise the meeting.", "answer": answer}
    short = {"model": a.model, "prompt": "Hello, my name is", "max_tokens": 2, "temperature": 0}
    start = time.perf_counter()
    code, alone, _ = raw(a, "/v1/judge", judge)
    judge_s = time.perf_counter() - start
    check(code == 200, "judge alone: %d %r" % (code, alone))
    check(max(alone["prompt_tokens"]) > 1000, "the judge prompt is short: %r" % alone["prompt_tokens"])
    code, short_alone, _ = raw(a, "/v1/completions", short)
    check(code == 200, "completion alone: %d %r" % (code, short_alone))
    done = {}

    def run_judge():
        done["judge"] = raw(a, "/v1/judge", judge)
        done["judge_at"] = time.perf_counter()

    thread = threading.Thread(target=run_judge)
    thread.start()
    time.sleep(0.2 * judge_s)  # its prompts are going in
    asked = time.perf_counter()
    code, together, _ = raw(a, "/v1/completions", short)
    answered = time.perf_counter()
    thread.join()
    check(code == 200 and together["choices"][0]["text"] == short_alone["choices"][0]["text"],
          "completion beside the judge: %d %r, alone %r" % (code, together, short_alone))
    check(answered < done["judge_at"], "the completion waited for the judge: answered %.2f s after it (the judge alone takes %.2f s)"
          % (answered - done["judge_at"], judge_s))
    check(done["judge"][0] == 200, "judge beside the completion: %r" % (done["judge"],))
    check(done["judge"][1] == alone, "the judge's record changed beside a completion: %r, alone %r" % (done["judge"][1], alone))
    print(json.dumps({"ok": True, "judge_alone_s": round(judge_s, 2), "completion_s": round(answered - asked, 3),
                      "judge_prompt_tokens": alone["prompt_tokens"]}))


def oom(a):
    """Device memory runs out (lavapipe's device memory is host memory: the server's address space
    is capped with RLIMIT_AS): the request whose new sequence cannot get its cache answers 503
    out_of_memory with Retry-After, the one running goes on, and once memory is back both are served."""
    import re, resource, threading
    body = {"model": a.model, "messages": [{"role": "user", "content": "Count from one to fifty."}], "max_tokens": 2, "temperature": 0}
    code, out, _ = raw(a, "/v1/chat/completions", body)
    check(code == 200, "before the cap: %d %r" % (code, out))
    limits = resource.prlimit(a.pid, resource.RLIMIT_AS)
    vm = int(re.search(r"VmSize:\s+(\d+) kB", open("/proc/%d/status" % a.pid).read()).group(1)) * 1024
    # room for what a request needs, not for a second sequence's cache (the pool grows by 256 MiB)
    resource.prlimit(a.pid, resource.RLIMIT_AS, (vm + (64 << 20), limits[1]))
    done = {}

    def long_generation():
        done["long"] = raw(a, "/v1/chat/completions", dict(body, max_tokens=8))

    try:
        thread = threading.Thread(target=long_generation)
        thread.start()
        deadline = time.time() + 30
        while time.time() < deadline and gauge(a, "themis_active_sequences") < 1:
            time.sleep(0.02)
        asked = time.perf_counter()
        code, out, headers = raw(a, "/v1/chat/completions", body)
        refused_s = time.perf_counter() - asked
        check(code == 503 and out["error"]["code"] == "out_of_memory", "a second sequence under the cap: %d %r" % (code, out))
        check({k.lower(): v for k, v in headers.items()}.get("retry-after") == "5", "Retry-After %r" % headers)
        thread.join()
        check(done["long"][0] == 200, "the running generation under the cap: %r" % (done["long"],))
        code, out, _ = raw(a, "/health", method="GET")
        check(code == 200 and out["status"] == "ok", "health under the cap: %d %r" % (code, out))
    finally:
        resource.prlimit(a.pid, resource.RLIMIT_AS, limits)
    with __import__("concurrent.futures").futures.ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda n: raw(a, "/v1/chat/completions", dict(body, max_tokens=n)), (4, 2)))
    check([r[0] for r in results] == [200, 200], "with memory back: %r" % [r[:2] for r in results])
    print(json.dumps({"ok": True, "refused_in_s": round(refused_s, 3)}))


def gauge(a, name):
    _, text = metrics(a)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    check(False, "no %s in /metrics" % name)


def disconnect(a):
    """A client that goes away mid-generation frees its sequence (streaming and not)."""
    import http.client, socket
    host, port = a.base.split("//")[1].split(":")
    for stream in (True, False):
        before = gauge(a, "themis_generated_tokens_total")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        # counting never ends by itself: only the cancellation can stop it before max_tokens
        body = json.dumps({"model": a.model, "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10,", "max_tokens": 1500, "temperature": 0,
                           "stream": stream})
        conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        if stream:
            resp = conn.getresponse()
            for _ in range(3):
                resp.fp.readline()
        else:
            time.sleep(1.0)
            check(gauge(a, "themis_active_sequences") == 1, "the request is not running")
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        # generous: other test suites may be sharing the cores
        deadline = time.time() + 30
        while time.time() < deadline and gauge(a, "themis_active_sequences") != 0:
            time.sleep(0.05)
        check(gauge(a, "themis_active_sequences") == 0, "the sequence still runs after its client left (stream=%s)" % stream)
        spent = gauge(a, "themis_generated_tokens_total") - before
        check(spent < 1200, "generated %d tokens for a client that left (stream=%s)" % (spent, stream))
    print(json.dumps({"ok": True}))


async def bench_async(a):
    client = AsyncOpenAI(base_url=a.base + "/v1", api_key=a.key or "none", max_retries=0, timeout=600)
    out = {}
    for streams in (1, 8):
        start = time.perf_counter()
        results = await asyncio.gather(*(seq(client, a, s) for s in range(streams)))
        wall = time.perf_counter() - start
        latencies = sorted(l for r in results for l in r[1])
        tokens = sum(r[0] for r in results)
        out["streams_%d" % streams] = {"tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1),
                                       "p99_s": round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3)}
    out["speedup"] = round(out["streams_8"]["tokens_per_s"] / out["streams_1"]["tokens_per_s"], 2)
    print(json.dumps(out))


async def seq(client, a, s):
    tokens, latencies = 0, []
    for i in range(a.requests):
        topic = STORIES[(s * 3 + i) % len(STORIES)]
        _, _, n, t = await timed(client, a.model, "Write a long story about %s." % topic, a.max_tokens)
        tokens += n
        latencies.append(t)
    return tokens, latencies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("model")
    ap.add_argument("what", choices=["api", "errors", "load", "shutdown", "bench", "busy", "disconnect", "interleave", "oom"])
    ap.add_argument("--key")
    ap.add_argument("--idle", type=float, help="the server's --idle-timeout, to check that idle connections close")
    ap.add_argument("--pid", type=int)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--max-tokens", type=int, default=12)
    ap.add_argument("--deadline", type=float, default=600)
    a = ap.parse_args()
    if a.what == "api":
        api(a)
    elif a.what == "errors":
        errors(a)
    elif a.what == "load":
        asyncio.run(load_async(a))
    elif a.what == "shutdown":
        shutdown(a)
    elif a.what == "busy":
        busy(a)
    elif a.what == "disconnect":
        disconnect(a)
    elif a.what == "interleave":
        interleave(a)
    elif a.what == "oom":
        oom(a)
    else:
        asyncio.run(bench_async(a))


if __name__ == "__main__":
    main()
