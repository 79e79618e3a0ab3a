"""Sending alert notices: a signed JSON POST to a webhook, a plain-text email through SMTP.
Each send either delivers (a 2xx answer; the SMTP server took the message) or says why not; a
webhook's host is looked up and, unless private targets are allowed, every address it names
must be public — the connection goes to the address judged (no second lookup), and a redirect
is a failure, never followed."""

import http.client
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from app.core.alerts import is_public_address, literal_address, signature

TIMEOUT_SECONDS = 5
USER_AGENT = "Glowing-Fiesta-Alerts/1"


class DeliveryError(Exception):
    """A notice was not delivered; the message says why (never a secret)."""


def _addresses(host, port):
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise DeliveryError(f"cannot resolve {host}: {exc}") from None
    return [literal_address(info[4][0].split("%")[0]) for info in found]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, **kwargs)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((str(self._address), self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, **kwargs):
        super().__init__(host, port, context=ssl.create_default_context(), **kwargs)
        self._address = address

    def connect(self):
        sock = socket.create_connection((str(self._address), self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def send_webhook(url, body, secret, allow_private=False, timeout=TIMEOUT_SECONDS, clock=time.time):
    """POST ``body`` (bytes) to ``url``, signed with ``secret``; raise DeliveryError unless the
    answer is a 2xx."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    host, port = parts.hostname, parts.port or (443 if https else 80)
    addresses = _addresses(host, port)
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise DeliveryError(f"{host} is a private, loopback or link-local host")
    stamp = str(int(clock()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Glowing-Fiesta-Timestamp": stamp,
        "X-Glowing-Fiesta-Signature": signature(secret, stamp, body),
    }
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedHTTPSConnection if https else _PinnedHTTPConnection
    conn = kind(host, port, addresses[0], timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers=headers)
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryError(f"webhook {host}: {type(exc).__name__}: {exc}") from None
    finally:
        conn.close()
    if not 200 <= status < 300:
        raise DeliveryError(f"webhook {host} answered {status}")


def send_email(smtp_url, sender, recipient, subject, text, timeout=TIMEOUT_SECONDS):
    """Send a plain-text email through ``smtp_url`` (``smtp://`` with STARTTLS when the server
    offers it, or ``smtps://``); raise DeliveryError when the server does not take it."""
    if not smtp_url:
        raise DeliveryError("SMTP_URL is not set")
    parts = urlsplit(smtp_url)
    secure = parts.scheme == "smtps"
    host, port = parts.hostname, parts.port or (465 if secure else 25)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    message.set_content(text)
    try:
        if secure:
            client = smtplib.SMTP_SSL(host, port, timeout=timeout,
                                      context=ssl.create_default_context())  # fmt: skip
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if not secure and client.has_extn("starttls"):
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if parts.username:
                client.login(unquote(parts.username), unquote(parts.password or ""))
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"email via {host}: {type(exc).__name__}") from None
