"""A small real SMTP server for tests: it listens on 127.0.0.1, speaks enough of RFC 5321 for smtplib
(EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT; STARTTLS refused) and keeps every message it
accepted. No TLS and no AUTH: a client that asks for either gets the answer a real server would give.

    with SmtpServer() as server:
        ... send to 127.0.0.1:server.port ...
        message = server.messages[0].message  # an email.message.EmailMessage
"""

import socketserver
import threading
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from types import TracebackType
from typing import Self, cast

HOSTNAME = "smtp.test.invalid"


@dataclass(frozen=True)
class ReceivedMail:
    """One accepted message: the envelope, and the message as sent (DATA, dot-stuffing undone)."""

    mail_from: str
    recipients: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return cast(EmailMessage, message_from_bytes(self.data, policy=default_policy))


class _Session(socketserver.StreamRequestHandler):
    server: "_Server"
    timeout = 10  # a test client that stops talking must not keep the server's thread forever

    def handle(self) -> None:
        self._reply("220 " + HOSTNAME + " test SMTP ready")
        mail_from: str | None = None
        recipients: list[str] = []
        while line := self.rfile.readline():
            command, _, argument = line.decode("ascii", "replace").rstrip("\r\n").partition(" ")
            verb = command.upper()
            self.server.commands.append(verb)
            if verb == "EHLO":
                extensions = ["8BITMIME", "SIZE 10485760"]
                if self.server.advertise_starttls:
                    extensions.append("STARTTLS")
                self._reply(f"250-{HOSTNAME}", *[f"250-{ext}" for ext in extensions[:-1]], f"250 {extensions[-1]}")
            elif verb == "HELO":
                self._reply(f"250 {HOSTNAME}")
            elif verb == "STARTTLS":
                self._reply("454 4.7.0 TLS not available")
            elif verb == "MAIL" and argument.upper().startswith("FROM:"):
                mail_from, recipients = _address(argument[5:]), []
                self._reply("250 2.1.0 OK")
            elif verb == "RCPT" and argument.upper().startswith("TO:"):
                if mail_from is None:
                    self._reply("503 5.5.1 MAIL first")
                    continue
                recipients.append(_address(argument[3:]))
                self._reply("250 2.1.5 OK")
            elif verb == "DATA":
                if mail_from is None or not recipients:
                    self._reply("503 5.5.1 RCPT first")
                    continue
                self._reply("354 end data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                with self.server.lock:
                    self.server.messages.append(ReceivedMail(mail_from, recipients, data))
                mail_from, recipients = None, []
                self._reply("250 2.0.0 queued")
            elif verb == "RSET":
                mail_from, recipients = None, []
                self._reply("250 2.0.0 OK")
            elif verb == "NOOP":
                self._reply("250 2.0.0 OK")
            elif verb == "QUIT":
                self._reply("221 2.0.0 bye")
                return
            else:
                self._reply(f"502 5.5.2 {verb} not implemented")

    def _read_data(self) -> bytes:
        lines: list[bytes] = []
        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)

    def _reply(self, *lines: str) -> None:
        self.wfile.write("".join(line + "\r\n" for line in lines).encode("ascii"))


def _address(argument: str) -> str:
    """The address of `<a@b> SIZE=...` (parameters dropped)."""
    return argument.strip().split(" ", 1)[0].strip("<>")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, advertise_starttls: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Session)
        self.advertise_starttls = advertise_starttls
        self.messages: list[ReceivedMail] = []
        self.commands: list[str] = []
        self.lock = threading.Lock()


class SmtpServer:
    """The server in a thread, for a `with` block; `messages` lists what it accepted, in order."""

    def __init__(self, *, advertise_starttls: bool = False) -> None:
        self._server = _Server(advertise_starttls)
        # A short poll interval: shutdown() waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="test-smtp", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def messages(self) -> list[ReceivedMail]:
        with self._server.lock:
            return list(self._server.messages)

    @property
    def commands(self) -> list[str]:
        """Every command verb clients sent (EHLO, STARTTLS, MAIL, ...), in order."""
        return list(self._server.commands)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
