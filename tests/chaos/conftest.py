"""Private services for the outage tests: a Redis and a PostgreSQL of the test's own, on
random ports, that the test stops and starts (never the shared ones)."""

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import psycopg
import pytest
import redis


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    def __init__(self, directory):
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port)]
            + ["--save", "", "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "the private redis-server did not start"
                time.sleep(0.05)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    if server.process.poll() is None:
        server.stop()


def start_celery_logged(env, log_path, *args):
    """A Celery process whose output goes to log_path, for the test to read."""
    log = open(log_path, "w")  # noqa: SIM115 (closed with the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "dashboard", *args, "--loglevel=info"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    process.log = log
    return process


def stop(process):
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    process.log.close()


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb into a temporary directory, random
    port, no fsync), with a `confwatch` database whose schema is copied from the test
    database. Started as the postgres user when the tests run as root (initdb refuses
    root)."""

    def __init__(self):
        self.bin = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        self.directory = tempfile.mkdtemp(prefix="confwatch-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/confwatch"
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")

    def run(self, *args, **options):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            prefix + list(args), check=True, capture_output=True, timeout=60, **options
        )

    def create(self, *, schema_from):
        self.run(
            f"{self.bin}/initdb",
            "-D",
            self.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        self.start()
        self.run(
            f"{self.bin}/createdb",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "confwatch",
        )
        schema = subprocess.run(
            [f"{self.bin}/pg_dump", "--schema-only", "--no-owner", schema_from],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout
        self.run(f"{self.bin}/psql", "-q", "-v", "ON_ERROR_STOP=1", self.url, input=schema)

    def start(self):
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c fsync=off"
        self.run(
            f"{self.bin}/pg_ctl",
            "-D",
            self.data,
            "-o",
            options,
            "-w",
            "-l",
            os.path.join(self.directory, "log"),
            "start",
        )

    def stop(self):
        self.run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def query(self, sql):
        with psycopg.connect(self.url, connect_timeout=5) as connection:
            return connection.execute(sql).fetchall()

    def remove(self):
        try:
            self.stop()
        except subprocess.CalledProcessError:
            pass  # stopped already
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres():
    from django.db import connection

    settings = connection.settings_dict
    test_database = (
        f"postgres://{settings['USER']}@{settings['HOST']}:{settings['PORT']}/{settings['NAME']}"
    )
    server = PrivatePostgres()
    try:
        server.create(schema_from=test_database)
        yield server
    finally:
        server.remove()
