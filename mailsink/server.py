"""A local SMTP server that keeps what it receives: ``MailSink``.

It accepts every message on 127.0.0.1, keeps it in memory (``messages()``), writes it to
a directory as an .eml file when given one, and prints one line per message when given a
stream. Tests can make it answer like a real server that refuses: ``refuse(address)``
fails RCPT TO for one recipient, ``fail_next(count)`` fails the next DATA commands.

Each kept or written message starts with two headers the sink adds from the envelope:
``X-MailFrom`` (MAIL FROM) and ``X-RcptTo`` (the accepted RCPT TO addresses, comma
separated), so recipients not named in To or Cc (Bcc) can be checked too.
"""

import asyncio
import email
import email.policy
import itertools
import logging
import socket
import threading
from datetime import datetime
from pathlib import Path

from aiosmtpd.controller import Controller

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
# With port 0 a free port is found first, then bound by the controller; another process
# may take it in between, so try a few times.
BIND_ATTEMPTS = 5

# aiosmtpd logs every SMTP command at INFO; a sink's output is its one line per message.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port(host):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class MailSink:
    """An SMTP server in a thread: ``with MailSink(port=0) as sink: ... sink.port``.

    - host, port: where to listen; port 0 picks a free port (see ``port`` after start).
    - directory: write each message there as ``YYYYmmdd-HHMMSS-NNNN.eml``; None: don't.
    - out: a text stream that gets one line per message (time, recipients, subject).
    - every: with out, at most one line every this many seconds instead: how many
      messages came since the last line, and the latest one (0: a line per message).
    - keep: keep messages in memory for ``messages()`` (the command line does not).
    """

    def __init__(
        self, host=DEFAULT_HOST, port=0, directory=None, *, out=None, every=0.0, keep=True
    ):
        self.host = host
        self.port = port
        self.directory = Path(directory) if directory is not None else None
        self.out = out
        self.every = every
        self.keep = keep
        self._unprinted = (0, "")  # messages not yet on a line, and the latest one's line
        self._stopped = threading.Event()
        self._condition = threading.Condition()
        self._messages = []
        self._refusals = {}  # lowercased address -> (code, text)
        self._failures = (0, 451, "")  # DATA commands left to fail, code, text
        self._delay = 0.0  # seconds each DATA command takes, for tests
        self._counter = itertools.count(1)
        self._controller = None

    # Lifecycle.

    def start(self):
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        attempts = BIND_ATTEMPTS if self.port == 0 else 1
        for attempt in range(1, attempts + 1):
            port = self.port or free_port(self.host)
            controller = Controller(
                self, hostname=self.host, port=port, server_hostname="mailsink.localhost"
            )
            try:
                controller.start()
            except OSError:
                controller.loop.close()
                if attempt == attempts:
                    raise
                continue
            self._controller, self.port = controller, port
            if self.out is not None and self.every > 0:
                threading.Thread(target=self._print_summaries, daemon=True).start()
            return self

    def stop(self):
        self._stopped.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        self._print_summary()

    def _print_summaries(self):
        while not self._stopped.wait(self.every):
            self._print_summary()

    def _print_summary(self):
        with self._condition:
            (count, latest), self._unprinted = self._unprinted, (0, "")
        if count:
            plural = "message" if count == 1 else "messages"
            print(f"{count} new {plural}, the latest: {latest}", file=self.out, flush=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # What tests read.

    def messages(self):
        """The messages received so far, oldest first (email.message.EmailMessage)."""
        with self._condition:
            return list(self._messages)

    def wait_for(self, count, timeout=5.0):
        """Wait until at least `count` messages arrived or `timeout` seconds passed, then
        return the messages received (check their number: fewer means the time ran out)."""
        with self._condition:
            self._condition.wait_for(lambda: len(self._messages) >= count, timeout)
            return list(self._messages)

    # How the server answers.

    def refuse(self, address, code=550, message="5.1.1 no such user"):
        """Answer RCPT TO for `address` with this error (4xx: try later, 5xx: never)."""
        with self._condition:
            self._refusals[address.lower()] = (code, message)

    def accept(self, address):
        """Accept `address` again after `refuse`."""
        with self._condition:
            self._refusals.pop(address.lower(), None)

    def fail_next(self, count, code=451, message="4.3.0 try again later"):
        """Answer the next `count` DATA commands with this error."""
        with self._condition:
            self._failures = (count, code, message)

    def slow_down(self, seconds):
        """Take this long over each message before accepting it (0: answer at once)."""
        with self._condition:
            self._delay = float(seconds)

    # aiosmtpd handler hooks (run in the server's thread).

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self._condition:
            refusal = self._refusals.get(address.lower())
        if refusal:
            return f"{refusal[0]} {refusal[1]}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self._condition:
            delay = self._delay
        if delay > 0:
            await asyncio.sleep(delay)
        with self._condition:
            left, code, text = self._failures
            if left > 0:
                self._failures = (left - 1, code, text)
                return f"{code} {text}"
        recipients = ", ".join(envelope.rcpt_tos)
        head = f"X-MailFrom: {envelope.mail_from}\r\nX-RcptTo: {recipients}\r\n"
        raw = head.encode() + (envelope.original_content or envelope.content)
        # Kept with the "\n" line endings Python uses; the file keeps the wire's "\r\n".
        message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=email.policy.default)
        now = datetime.now().astimezone()
        with self._condition:
            number = next(self._counter)
        line = f"{now:%H:%M:%S}  to {recipients}  {message['Subject'] or '(no subject)'}"
        if self.directory is not None:
            path = self.directory / f"{now:%Y%m%d-%H%M%S}-{number:04d}.eml"
            path.write_bytes(raw)
            line += f"  [{path}]"
        with self._condition:
            if self.keep:
                self._messages.append(message)
            self._condition.notify_all()
        if self.out is not None and self.every > 0:
            with self._condition:
                self._unprinted = (self._unprinted[0] + 1, line)
        elif self.out is not None:
            print(line, file=self.out, flush=True)
        return "250 2.0.0 OK"
