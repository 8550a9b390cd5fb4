"""The local SMTP sink, exercised over real SMTP on a free local port."""

import io
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core.mail import send_mail

from mailsink import server as mailsink_server
from tests.smtp import mail_settings, running_mailsink

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def sink():
    with running_mailsink() as server:
        yield server


def make_message(to=("ops@example.com",), subject="Board call is active", body="Hello\n"):
    message = EmailMessage()
    message["From"] = "confwatch@localhost"
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message.set_content(body)
    return message


def send(sink, message, **kwargs):
    with smtplib.SMTP(sink.host, sink.port, timeout=5) as client:
        return client.send_message(message, **kwargs)


def test_a_message_sent_with_smtplib_arrives_with_its_recipients_subject_and_body(sink):
    send(sink, make_message(to=["ops@example.com", "lead@example.com"], body="Now active.\n"))

    [message] = sink.wait_for(1, timeout=5)
    assert message["To"] == "ops@example.com, lead@example.com"
    assert message["X-RcptTo"] == "ops@example.com, lead@example.com"
    assert message["X-MailFrom"] == "confwatch@localhost"
    assert message["Subject"] == "Board call is active"
    assert message.get_content() == "Now active.\n"


def test_it_lists_blind_copy_recipients_from_the_envelope(sink):
    send(sink, make_message(), to_addrs=["ops@example.com", "hidden@example.com"])

    [message] = sink.wait_for(1)
    assert message["X-RcptTo"] == "ops@example.com, hidden@example.com"


def test_it_writes_each_message_to_the_directory_when_given_one(tmp_path):
    with running_mailsink(directory=tmp_path / "mail") as sink:
        send(sink, make_message(subject="first"))
        send(sink, make_message(subject="second"))
        sink.wait_for(2)

    files = sorted((tmp_path / "mail").glob("*.eml"))
    assert [re.fullmatch(r"\d{8}-\d{6}-000[12]\.eml", path.name) is not None for path in files] == [
        True,
        True,
    ]
    assert b"Subject: first" in files[0].read_bytes()
    assert b"Subject: second" in files[1].read_bytes()


def test_with_every_it_prints_one_line_for_many_messages():
    out = io.StringIO()
    with mailsink_server.MailSink(port=0, out=out, every=1.5) as sink:
        for number in range(3):
            send(sink, make_message(subject=f"alert {number}"))
        sink.wait_for(3)
        assert out.getvalue() == ""  # not before the period ends
        time.sleep(2.0)

    [line] = out.getvalue().splitlines()
    assert line.startswith("3 new messages, the latest: ") and line.endswith("alert 2")


def test_it_keeps_nothing_in_a_directory_it_was_not_given(sink, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    send(sink, make_message())

    assert len(sink.wait_for(1)) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_refused_recipient_gets_the_chosen_smtp_error(sink):
    sink.refuse("gone@example.com", code=550, message="5.1.1 no such user")

    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(sink, make_message(to=["Gone@Example.com"]))

    assert refused.value.recipients == {"Gone@Example.com": (550, b"5.1.1 no such user")}
    assert sink.messages() == []


def test_a_temporarily_refused_recipient_is_accepted_once_the_refusal_is_lifted(sink):
    sink.refuse("ops@example.com", code=451, message="4.2.1 mailbox busy")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(sink, make_message())
    assert refused.value.recipients["ops@example.com"][0] == 451

    sink.accept("ops@example.com")
    send(sink, make_message())

    assert len(sink.wait_for(1)) == 1


def test_only_the_refused_recipient_misses_the_message(sink):
    sink.refuse("gone@example.com")

    refused = send(sink, make_message(to=["ops@example.com", "gone@example.com"]))

    assert refused == {"gone@example.com": (550, b"5.1.1 no such user")}
    [message] = sink.wait_for(1)
    assert message["X-RcptTo"] == "ops@example.com"


def test_fail_next_fails_that_many_messages_with_the_chosen_code(sink):
    sink.fail_next(2, code=451, message="4.3.0 try again later")

    for _ in range(2):
        with pytest.raises(smtplib.SMTPDataError) as failed:
            send(sink, make_message())
        assert (failed.value.smtp_code, failed.value.smtp_error) == (451, b"4.3.0 try again later")
    send(sink, make_message(subject="third time lucky"))

    assert [message["Subject"] for message in sink.wait_for(1)] == ["third time lucky"]


def test_wait_for_returns_what_arrived_when_the_time_runs_out(sink):
    send(sink, make_message())

    started = time.monotonic()
    messages = sink.wait_for(2, timeout=0.3)

    assert len(messages) == 1
    assert 0.25 < time.monotonic() - started < 3


def test_django_mail_reaches_the_sink_with_its_settings(sink, settings):
    for name, value in mail_settings(sink).items():
        setattr(settings, name, value)

    send_mail("Ops war room ended", "It ended.", "confwatch@localhost", ["ops@example.com"])

    [message] = sink.wait_for(1)
    assert (message["Subject"], message["X-RcptTo"]) == ("Ops war room ended", "ops@example.com")


def test_it_tries_another_free_port_when_the_one_it_found_was_taken(monkeypatch):
    monkeypatch.setenv("AIOSMTPD_CONTROLLER_TIMEOUT", "1")  # how long a failed bind takes
    with socket.create_server(("127.0.0.1", 0)) as taken:
        ports = iter([taken.getsockname()[1]])
        real_free_port = mailsink_server.free_port
        monkeypatch.setattr(
            mailsink_server, "free_port", lambda host: next(ports, None) or real_free_port(host)
        )

        with running_mailsink() as sink:
            assert sink.port != taken.getsockname()[1]
            send(sink, make_message())
            assert len(sink.wait_for(1)) == 1


def test_the_command_line_documents_itself():
    result = subprocess.run(
        [sys.executable, "-m", "mailsink", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 0
    assert "--port" in result.stdout
    assert "--dir" in result.stdout


def test_the_command_line_prints_one_line_per_message_and_stops_on_sigterm(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "mailsink", "--port", "0", "--dir", str(tmp_path)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        startup = process.stdout.readline()
        port = int(re.search(r"smtp://127\.0\.0\.1:(\d+)", startup).group(1))
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
            client.send_message(make_message(subject="Sales stand-up 1 is active"))
        line = process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert re.match(r"\d\d:\d\d:\d\d  to ops@example\.com  Sales stand-up 1 is active  \[", line)
    assert len(list(tmp_path.glob("*.eml"))) == 1
