"""Alert emails through a real local SMTP server (aiosmtpd), a notice retried until its
target takes it, and test notices (POST /api/alerts/<id>/test)."""

import socket
from datetime import timedelta
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from app.core.timeutil import utcnow
from tests.helpers import new_key
from tests.test_alert_evaluation import Receiver, create, evaluate, write

ALERTS = "/api/alerts"


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Mailbox:
    """What the SMTP server took: (envelope sender, recipients, message)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def mailbox(smtp_port):
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def receiver():
    running = Receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()


@pytest.fixture
def setup(make_app, smtp_port):
    app = make_app(
        ALERTS_ALLOW_PRIVATE_TARGETS=True,
        SMTP_URL=f"smtp://127.0.0.1:{smtp_port}",
        ALERTS_FROM="alerts@gf.example.com",
        PUBLIC_URL="https://gf.example.com",
    )
    auth = {"X-API-Key": new_key(app)}
    base = (utcnow() - timedelta(minutes=30)).replace(second=0, microsecond=0)
    return app, app.test_client(), auth, base


def test_an_alert_emails_its_transitions_in_plain_text(setup, mailbox):
    app, client, auth, base = setup
    write(client, auth, "value", "disk.free", 5, base)
    alert = create(client, auth, {"metric": "disk.free", "kind": "value", "window": "5m",
                                  "operation": "min", "condition": "<", "threshold": 10,
                                  "notify": ["email:ops@example.com"]})  # fmt: skip
    evaluate(app, base + timedelta(minutes=1))
    evaluate(app, base + timedelta(minutes=6))
    assert [rcpt for _, rcpt, _ in mailbox.messages] == [["ops@example.com"]] * 2
    sender, _, message = mailbox.messages[0]
    assert sender == "alerts@gf.example.com" and message["From"] == "alerts@gf.example.com"
    assert "FIRING" in message["Subject"] and "disk.free" in message["Subject"]
    assert message.get_content_type() == "text/plain"
    text = message.get_payload(decode=True).decode()
    assert f"alert: {alert['id']}" in text and "threshold: 10.0" in text and "value: 5" in text
    assert "url: https://gf.example.com/?metric=disk.free" in text and "state: firing" in text
    assert "state: ok" in mailbox.messages[1][2].get_payload(decode=True).decode()
    events = client.get(f"{ALERTS}/{alert['id']}/events", headers=auth).get_json()["data"]
    assert [(e["type"], e.get("channel"), e.get("outcome")) for e in events] == [
        ("transition", None, None), ("notice", "email", "sent"),
        ("transition", None, None), ("notice", "email", "sent"),
    ]  # fmt: skip


def test_an_email_is_retried_until_the_server_takes_it_once(setup, smtp_port):
    app, client, auth, base = setup
    write(client, auth, "value", "jobs.done", 1, base - timedelta(minutes=50))
    create(client, auth, {"metric": "jobs.done", "kind": "data", "window": "1m",
                          "notify": ["email:ops@example.com"]})  # fmt: skip
    evaluate(app, base)  # no server yet: retried in a minute
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        evaluate(app, base + timedelta(seconds=30))
        assert box.messages == []
        for minute in (1, 2, 5, 30):
            evaluate(app, base + timedelta(minutes=minute))
    finally:
        controller.stop()
    assert len(box.messages) == 1


def test_a_test_notice_goes_to_every_target(setup, mailbox, receiver):
    app, client, auth, _ = setup
    alert = create(client, auth, {"metric": "later", "kind": "data", "window": "1h",
                                  "notify": [f"webhook:{receiver.url}", "email:ops@example.com",
                                             "webhook:http://127.0.0.1:1/closed"]})  # fmt: skip
    response = client.post(f"{ALERTS}/{alert['id']}/test", headers=auth)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert [r["outcome"] for r in answer["results"]] == ["sent", "sent", "failed"]
    (notice,) = receiver.notices(alert["secret"])
    assert notice["id"] == answer["id"] and notice["test"] is True and notice["state"] == "ok"
    assert len(mailbox.messages) == 1
    reader = {"X-API-Key": new_key(app, "reader", scopes="read")}
    assert client.post(f"{ALERTS}/{alert['id']}/test", headers=reader).status_code == 403
    assert client.post(f"{ALERTS}/{2**31 - 1}/test", headers=auth).status_code == 404
