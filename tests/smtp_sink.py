#!/usr/bin/python3
"""A real SMTP server for the tests: aiosmtpd on 127.0.0.1:PORT that keeps every message.

Each accepted message is written to DIR as NNNN.eml (the raw RFC 5322 bytes as they
arrived) and, first, NNNN.json: the envelope, every header as parsed by Python's email
package, and the decoded text/plain and text/html parts, so tests can check both what
was on the wire and what a mail client would show.

  smtp_sink.py --port PORT --dir DIR [--hang | --reject]

Prints "ready" once it accepts connections, and exits when its standard input closes
(the test that started it ended). With --hang it keeps each message but never answers
the end of DATA, like a server that dies while the client waits for "250". With
--reject it refuses every recipient for good with a 550 that quotes the address back,
as real servers do.

Needs aiosmtpd: Debian's python3-aiosmtpd, installed by .ci/setup-smtp.
"""

import argparse
import email
import email.policy
import itertools
import json
import os
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder, hang, reject):
        self.folder = folder
        self.hang = hang
        self.reject = reject
        self.counter = itertools.count(1)
        self.lock = threading.Lock()

    def _write(self, name, data):
        tmp = os.path.join(self.folder, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.folder, name))

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject:
            return "550 5.1.1 <%s>: recipient address rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        with self.lock:
            n = next(self.counter)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)

        def part(kind):
            body = parsed.get_body(preferencelist=(kind,))
            return None if body is None else body.get_content()

        summary = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "headers": [[k, str(v)] for k, v in parsed.items()],
            "text": part("plain"),
            "html": part("html"),
        }
        self._write("%04d.json" % n, json.dumps(summary).encode("utf-8"))
        self._write("%04d.eml" % n, raw)
        if self.hang:
            import asyncio

            await asyncio.sleep(3600)
        return "250 Message accepted for delivery"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--hang", action="store_true")
    ap.add_argument("--reject", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    controller = Controller(
        Sink(args.dir, args.hang, args.reject), hostname="127.0.0.1", port=args.port
    )
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
