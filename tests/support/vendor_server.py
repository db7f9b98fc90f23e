#!/usr/bin/python3
"""A scripted LLM vendor server on 127.0.0.1 for the backend tests: each request gets the next reply
of the script (the last one repeats), written in the vendor's actual wire format.

    vendor_server.py --script S.json --port-file P --log L.jsonl [--cert C.pem --key K.pem]

Script: {"replies": [REPLY, ...]}. A REPLY is one of
  {"openai": {"content": "...", "refusal": null, "finish_reason": "stop", "model": "gpt-4o"}}
  {"anthropic": {"tool_input": {...}} | {"text": "..."}, "stop_reason": "tool_use"}
  {"ollama": {"content": "...", "done_reason": "stop"}}      streams NDJSON when the request's
                                                              "stream" is missing or true, or "stream": true here
  {"status": 429, "headers": {"Retry-After": "1"}, "body": "..." | "json": {...}}
  {"action": "hang"}                  never answers
  {"action": "drop"}                  headers announce 1000 bytes, 100 are sent, then the connection is closed
  {"action": "big", "size": 52428800} a 200 with that many bytes of body (Content-Length announced;
                                      "chunked": true sends it in 1 MiB chunks without one)
plus "delay": seconds before answering. Every request is appended to the log as one JSON line
{method, path, headers, body}; the chosen port is written to the port file once listening.
"""
import argparse, json, socket, ssl, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
STATE = {"next": 0}


def openai_body(spec, request):
    message = {"role": "assistant", "content": spec.get("content"), "refusal": spec.get("refusal")}
    if message["refusal"] is not None:
        message["content"] = None
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": 1733200000,
            "model": spec.get("model", request.get("model", "gpt-4o")), "system_fingerprint": "fp_test",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": spec.get("finish_reason", "stop")}],
            "usage": {"prompt_tokens": spec.get("prompt_tokens", 120), "completion_tokens": spec.get("completion_tokens", 30),
                      "total_tokens": spec.get("prompt_tokens", 120) + spec.get("completion_tokens", 30)}}


def anthropic_body(spec, request):
    content = []
    if "text" in spec:
        content.append({"type": "text", "text": spec["text"]})
    if "tool_input" in spec:
        name = (request.get("tool_choice") or {}).get("name", "profagent_plan")
        content.append({"type": "tool_use", "id": "toolu_test", "name": name, "input": spec["tool_input"]})
    return {"id": "msg_test", "type": "message", "role": "assistant",
            "model": spec.get("model", request.get("model", "claude")), "content": content,
            "stop_reason": spec.get("stop_reason", "tool_use" if "tool_input" in spec else "end_turn"),
            "stop_sequence": None, "usage": {"input_tokens": spec.get("input_tokens", 200), "output_tokens": spec.get("output_tokens", 40)}}


def ollama_final(spec, request):
    return {"model": spec.get("model", request.get("model", "llama3.1")), "created_at": "2026-12-03T10:00:00Z",
            "done": True, "done_reason": spec.get("done_reason", "stop"), "total_duration": 1000000,
            "load_duration": 1000, "prompt_eval_count": spec.get("prompt_eval_count", 90),
            "prompt_eval_duration": 1000, "eval_count": spec.get("eval_count", 25), "eval_duration": 1000}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode("utf-8", "replace")
        with LOCK:
            replies = ARGS.script["replies"]
            reply = replies[min(STATE["next"], len(replies) - 1)]
            STATE["next"] += 1
            with open(ARGS.log, "a") as log:
                log.write(json.dumps({"method": self.command, "path": self.path, "headers": dict(self.headers.items()),
                                      "body": raw, "time": time.time()}) + "\n")
        try:
            request = json.loads(raw) if raw else {}
        except ValueError:
            request = {}
        time.sleep(reply.get("delay", 0))
        action = reply.get("action")
        if action == "hang":
            time.sleep(3600)
            return
        if action == "drop":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
            self.wfile.write(b'{"id": "chatcmpl-test", "choices": [' + b" " * 64)
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            self.connection.close()
            return
        if action == "big":
            size = reply.get("size", 50 << 20)
            chunked = reply.get("chunked", False)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(size))
            self.end_headers()
            block = b" " * (1 << 20)
            try:
                sent = 0
                while sent < size:
                    piece = block[: min(len(block), size - sent)]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    sent += len(piece)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                pass
            return
        if "ollama" in reply:
            spec = reply["ollama"]
            stream = reply.get("stream", request.get("stream", True))
            if stream:
                return self.stream_ollama(spec, request)
            body = dict(ollama_final(spec, request), message={"role": "assistant", "content": spec.get("content", "")})
            return self.send_json(200, body, reply.get("headers", {}))
        if "openai" in reply:
            return self.send_json(reply.get("status", 200), openai_body(reply["openai"], request), reply.get("headers", {}))
        if "anthropic" in reply:
            return self.send_json(reply.get("status", 200), anthropic_body(reply["anthropic"], request), reply.get("headers", {}))
        body = reply["json"] if "json" in reply else reply.get("body", "")
        return self.send_json(reply.get("status", 200), body, reply.get("headers", {}))

    def send_json(self, status, body, headers):
        data = (body if isinstance(body, str) else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stream_ollama(self, spec, request):
        # Ollama's default: application/x-ndjson, chunked, one object per line, the last with done: true.
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        content = spec.get("content", "")
        pieces = [content[i:i + 7] for i in range(0, len(content), 7)] or [""]
        lines = [{"model": request.get("model", "llama3.1"), "created_at": "2026-12-03T10:00:00Z",
                  "message": {"role": "assistant", "content": piece}, "done": False} for piece in pieces]
        lines.append(dict(ollama_final(spec, request), message={"role": "assistant", "content": ""}))
        for line in lines:
            data = (json.dumps(line) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    ARGS = parser.parse_args()
    with open(ARGS.script) as f:
        ARGS.script = json.load(f)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if ARGS.cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(ARGS.cert, ARGS.key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(ARGS.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    import os
    os.replace(ARGS.port_file + ".tmp", ARGS.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
