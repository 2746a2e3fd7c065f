"""Enrollment on a hostile network: a man in the middle, TLS with a good and a bad CA, plain-http notice.

Everything is real: ``county-center serve`` runs as its own process (plain or with
``--tls-cert/--tls-key``), the station is the ``station`` CLI on an encrypted data directory,
and the attacker is a real HTTP relay between the two that reads every byte and signs whatever
it likes with keys of its own.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from station.cli.main import main as station_main
from station.store.keyslots import KeySlots, RecoveryError, recover_data_key
from sync.crypto import KeyPair, b64, x25519_public
from sync.messages import sign_doc
from sync.server import cli as county_cli
from sync.server.db import connect
from tests.helpers import COUNTY, PIN, VILLAGE, VILLAGE2

ROOT = Path(__file__).resolve().parents[2]
PASSPHRASE = "县中心管理口令-2026"


# -- the county center, as its own process -----------------------------------------------------------


class County:
    """``county-center init`` in-process, then ``county-center serve`` as a child process."""

    def __init__(self, root: Path, capsys, monkeypatch, *tls_args: str) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{root / 'county.db'}"
        self.capsys = capsys
        monkeypatch.setenv("COUNTY_PASSPHRASE", PASSPHRASE)
        monkeypatch.setenv("COUNTY_KDF_COST", "low")
        monkeypatch.setenv("COUNTY_LOG", str(root / "county-center.log"))
        assert self.admin("init", "--code", COUNTY, "--name", "测试县")["county"] == COUNTY
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.log = open(root / "serve.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sync.server.cli", "--db", self.db, "serve", "--port", "0", *tls_args],
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=root,
        )
        self.banner = self.proc.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"https?://127\.0\.0\.1:\d+", self.banner)
        if not m:
            self.stop()
            raise AssertionError(f"county-center serve did not start: {self.banner!r}")
        self.url = m.group(0)

    def admin(self, *args: str) -> dict:
        """A ``county-center --json`` command, in-process (what the admin types)."""
        self.capsys.readouterr()
        rc = county_cli.main(["--db", self.db, "--json", *args])
        out, err = self.capsys.readouterr()
        assert rc == 0, err
        return json.loads(out)

    def code(self, org: str = VILLAGE) -> tuple[str, str]:
        """A fresh one-time code and the fingerprint printed beside it."""
        doc = self.admin("enroll", "--org", org, "--role", "village")
        return doc["code"], doc.get("fingerprint", "")

    def station_row(self, station: str):
        cdb = connect(self.db)
        try:
            return cdb.m.Station.get_or_none(cdb.m.Station.id == station)
        finally:
            cdb.close()

    def audit(self) -> list:
        cdb = connect(self.db)
        try:
            return [
                (a.endpoint, a.status, a.code, a.reason)
                for a in cdb.m.Audit.select().order_by(cdb.m.Audit.id)
            ]
        finally:
            cdb.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()
        self.log.close()


@pytest.fixture
def county(tmp_path, capsys, monkeypatch, cli_logging):
    c = County(tmp_path / "county", capsys, monkeypatch)
    yield c
    c.stop()


# -- the station, through its CLI --------------------------------------------------------------------


class Station:
    def __init__(self, root: Path, capsys, monkeypatch, org: str = VILLAGE) -> None:
        self.root, self.capsys = root, capsys
        monkeypatch.setenv("STATION_PIN", PIN)
        rc, _, err = self(
            "init", "--org", org, "--name", "东村便民服务室", "--user", "agent1", "--role", "agent"
        )
        assert rc == 0, err
        self.id = json.loads((root / "station.json").read_text("utf-8"))["station_id"]

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        rc = station_main(["--data-dir", str(self.root), "--user", "agent1", *args])
        out, err = self.capsys.readouterr()
        assert "Traceback" not in out + err
        return rc, out, err

    def status(self) -> dict:
        rc, out, _ = self("--json", "sync-status")
        assert rc == 0
        return json.loads(out)

    def slots(self) -> KeySlots:
        return KeySlots.load(self.root / "keyslots.json")


# -- the man in the middle ------------------------------------------------------------------------------


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Relay:
    """A real HTTP server between station and county that reads everything and attacks enrollment.

    With ``attack`` on, for each enrollment request it (1) tries to enroll a key of its own under
    the victim's station id, reusing everything it read (a plaintext code if there is one), and
    (2) answers the station itself, as the county, with its own signing, encryption and recovery
    keys — computing every check value it can from what it saw. With ``attack`` off it forwards.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.attack = True
        self.drop_answers = False  # forward requests, but lose every answer on the way back
        self.seen: list[bytes] = []  # every request body, as read off the wire
        self.county_said: list[int] = []  # the county's status for each of the relay's own requests
        self.key = KeyPair.generate()
        self.recovery = X25519PrivateKey.generate()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                relay.forward(self, b"")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                relay.seen.append(body)
                if self.path == "/v1/enroll" and relay.attack:
                    relay.reply(self, 200, json.dumps(relay.hijack(json.loads(body))).encode())
                else:
                    relay.forward(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def forward(self, handler, body: bytes) -> None:
        r = requests.request(
            handler.command,
            self.upstream + handler.path,
            data=body or None,
            headers={"Content-Type": handler.headers.get("Content-Type", "application/octet-stream")},
            timeout=30,
        )
        if self.drop_answers:
            handler.close_connection = True  # the county answered; the station never hears it
            return
        self.reply(handler, r.status_code, r.content, r.headers.get("Content-Type", "application/json"))

    @staticmethod
    def reply(handler, status: int, body: bytes, ctype: str = "application/json") -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def hijack(self, wire: dict) -> dict:
        doc = json.loads(wire["h"])
        # (1) Its own key under the victim's id, with whatever proof the victim's request carried.
        mine = sign_doc({**doc, **self.key.public.to_dict()}, self.key)
        mine.update({k: v for k, v in wire.items() if k not in ("h", "s")})
        r = requests.post(self.upstream + "/v1/enroll", json=mine, timeout=30)
        self.county_said.append(r.status_code)
        real = json.loads(json.loads(r.content)["h"]) if r.status_code == 200 else {}
        # (2) The county's answer, with the relay's keys in it.
        county = {
            **real.get(
                "county",
                {"code": COUNTY, "name": "测试县", "station": "0190a0a0-0000-7000-8000-0000000000cc"},
            ),
            **self.key.public.to_dict(),
            "recovery_pub": b64(x25519_public(self.recovery)),
            "url": self.url,
        }
        answer = {
            "t": "enrolled",
            "v": 1,
            "county": county,
            "station": doc["station"],
            "org": doc["org"],
            "level": "village",
            "request": _sha256(wire["h"]),
        }
        if "code" in doc:  # a code in clear: every check value it binds can be computed
            answer["code_check"] = _sha256(f"enroll|{doc['code']}|{doc['station']}")
        return sign_doc(answer, self.key) | {"m": b64(os.urandom(32))}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_man_in_the_middle_can_neither_enroll_nor_pose_as_the_county(county, tmp_path, capsys, monkeypatch):
    victim = Station(tmp_path / "v", capsys, monkeypatch)
    code, fingerprint = county.code()
    relay = Relay(county.url)
    try:
        rc, out, err = victim("enroll", "--server", relay.url, "--code", code)
        # The station refuses the relay's answer and stores nothing of it.
        assert rc == 2 and "登记码校验" in err, (out, err)
        assert not victim.status()["enrolled"]
        assert not victim.slots().has_recovery
        with pytest.raises(RecoveryError):  # the relay's recovery key opens nothing
            recover_data_key(victim.slots(), relay.recovery)
        # The county refused the relay's key under the victim's id, and audited it.
        assert relay.county_said == [403]
        assert county.station_row(victim.id) is None
        assert ("enroll", 403, "code") in [a[:3] for a in county.audit()]
        # The code never crossed the wire.
        compact = code.replace("-", "").encode()
        assert all(compact not in body and code.encode() not in body for body in relay.seen)

        # The code was not used up: through the same relay, now only forwarding, enrollment works,
        # and the station shows the fingerprint the admin printed beside the code.
        relay.attack = False
        rc, out, err = victim("enroll", "--server", relay.url, "--code", code)
        assert rc == 0, err
        assert f"县中心密钥指纹：{fingerprint}" in out
        row = county.station_row(victim.id)
        assert row.status == "active"
        assert victim.status()["county_fingerprint"] == fingerprint

        # Having seen a whole good exchange, the relay still cannot take the station's place:
        # its recorded request replayed changes nothing, and with its own key it is refused.
        recorded = json.loads(relay.seen[-1])
        again = requests.post(county.url + "/v1/enroll", json=recorded, timeout=30)
        assert again.status_code == 200
        assert county.station_row(victim.id).sign_pub == row.sign_pub
        relay.attack = True
        relay.hijack(recorded)
        assert relay.county_said[-1] == 403 and county.station_row(victim.id).sign_pub == row.sign_pub
        relay.attack = False
        rc, _, err = victim("sync")
        assert rc == 0, err
    finally:
        relay.stop()


def test_a_lost_answer_is_fetched_again_with_the_same_code(county, tmp_path, capsys, monkeypatch):
    """The county enrolled us but its answer never arrived: the same code still brings it."""
    station = Station(tmp_path / "v", capsys, monkeypatch)
    code, fingerprint = county.code()
    relay = Relay(county.url)
    relay.attack, relay.drop_answers = False, True
    try:
        rc, _, err = station("enroll", "--server", relay.url, "--code", code)
        assert rc == 3 and "无法连接县中心" in err, err
        assert county.station_row(station.id) is not None  # the county did enroll us
        assert not station.status()["enrolled"]
        relay.drop_answers = False
        rc, out, err = station("enroll", "--server", relay.url, "--code", code)
        assert rc == 0 and fingerprint in out, err
        assert (
            county.station_row(station.id).sign_pub == json.loads(json.loads(relay.seen[-1])["h"])["sign_pub"]
        )
        assert station("sync")[0] == 0
    finally:
        relay.stop()


def test_a_replayed_answer_does_not_fit_a_new_request(county, tmp_path, capsys, monkeypatch):
    """Re-enrolling with a fresh code: an old answer (a relay's recording) is refused, the old key stops."""
    station = Station(tmp_path / "v", capsys, monkeypatch)
    relay = Relay(county.url)
    relay.attack = False
    try:
        first, _ = county.code()
        assert station("enroll", "--server", relay.url, "--code", first)[0] == 0
        old_key = county.station_row(station.id).sign_pub
        second, _ = county.code()
        # The relay answers the new request with the county's genuine answer to the first one.
        recorded = json.loads(relay.seen[-1])
        old_answer = requests.post(county.url + "/v1/enroll", json=recorded, timeout=30).content

        class Replay(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                Relay.reply(self, 200, old_answer)

            def log_message(self, *args) -> None:
                pass

        replayer = ThreadingHTTPServer(("127.0.0.1", 0), Replay)
        threading.Thread(target=replayer.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{replayer.server_address[1]}"
            rc, _, err = station("enroll", "--server", url, "--code", second)
            assert rc == 2 and "登记码校验" in err
        finally:
            replayer.shutdown()
            replayer.server_close()
        rc, out, err = station("enroll", "--server", county.url, "--code", second)
        assert rc == 0 and "旧密钥作废" in out, err
        assert county.station_row(station.id).sign_pub != old_key
        # and the first request, replayed once more, cannot bring the old key back
        r = requests.post(county.url + "/v1/enroll", json=recorded, timeout=30)
        assert r.status_code == 403 and r.json()["error"] == "code"
        assert county.station_row(station.id).sign_pub != old_key
    finally:
        relay.stop()


# -- TLS -----------------------------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_server_cert(ca_key, ca_cert, tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("county.test"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "server.pem", tmp / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def write_cert(cert, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_tls_enroll_and_sync_with_the_county_ca_and_refusal_with_a_wrong_one(
    tmp_path, capsys, monkeypatch, cli_logging
):
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_key, ca_cert = make_ca("某县政务服务中心 CA")
    cert_file, key_file = make_server_cert(ca_key, ca_cert, pki)
    county_ca = write_cert(ca_cert, pki / "county-ca.pem")
    wrong_ca = write_cert(make_ca("冒充的 CA")[1], pki / "wrong-ca.pem")
    county = County(
        tmp_path / "county", capsys, monkeypatch, "--tls-cert", str(cert_file), "--tls-key", str(key_file)
    )
    try:
        assert county.url.startswith("https://") and "https://" in county.banner
        code, fingerprint = county.code()
        station = Station(tmp_path / "v", capsys, monkeypatch)
        # A CA that did not sign the county's certificate: refused before anything is sent.
        for extra in (["--ca-file", str(wrong_ca)], []):  # a wrong county CA; the public CAs only
            rc, _, err = station("enroll", "--server", county.url, "--code", code, *extra)
            assert rc == 2 and "证书校验失败" in err and err.startswith("错误："), err
            assert not station.status()["enrolled"]
        assert not (station.root / "county-ca.pem").exists()
        rc, _, err = station(
            "enroll", "--server", county.url, "--code", code, "--ca-file", str(pki / "nothing.pem")
        )
        assert rc == 2 and "找不到县中心证书文件" in err
        rc, _, err = station("enroll", "--server", county.url, "--code", code, "--ca-file", str(key_file))
        assert rc == 2 and "不是PEM格式的证书文件" in err
        # The county's own CA: enrolled (the code was not used up by the refusals), CA kept for syncs.
        rc, out, err = station("enroll", "--server", county.url, "--code", code, "--ca-file", str(county_ca))
        assert rc == 0, err
        assert fingerprint in out and "http" not in err  # https: no plain-http notice
        assert (station.root / "county-ca.pem").read_bytes() == county_ca.read_bytes()
        rc, out, err = station("sync")
        assert rc == 0, err
        assert station.status()["url"] == county.url
    finally:
        county.stop()


def test_serve_refuses_tls_files_that_do_not_work(tmp_path, capsys, monkeypatch, cli_logging):
    pki = tmp_path / "pki"
    pki.mkdir()
    ca_key, ca_cert = make_ca("CA")
    cert_file, key_file = make_server_cert(ca_key, ca_cert, pki)
    (pki / "other").mkdir()
    _, other_key = make_server_cert(ca_key, ca_cert, pki / "other")
    monkeypatch.setenv("COUNTY_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("COUNTY_KDF_COST", "low")
    monkeypatch.setenv("COUNTY_LOG", str(tmp_path / "county-center.log"))
    db = f"sqlite:///{tmp_path / 'county.db'}"
    assert county_cli.main(["--db", db, "init", "--code", COUNTY, "--name", "测试县"]) == 0
    for args, expected in [
        (["--tls-cert", str(cert_file)], "同时给出"),
        (["--tls-key", str(key_file)], "同时给出"),
        (["--tls-cert", str(pki / "none.pem"), "--tls-key", str(key_file)], "找不到TLS证书文件"),
        (["--tls-cert", str(cert_file), "--tls-key", str(other_key)], "无法加载TLS证书和私钥"),
        (["--tls-cert", str(key_file), "--tls-key", str(key_file)], "无法加载TLS证书和私钥"),
    ]:
        capsys.readouterr()
        assert county_cli.main(["--db", db, "serve", "--port", "0", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("错误：") and expected in err, err


# -- plain http ------------------------------------------------------------------------------------------------


def test_plain_http_to_another_host_is_mentioned_once(tmp_path, capsys, monkeypatch, cli_logging):
    """The county served on all addresses and reached by this PC's host name (not loopback)."""
    import socket

    from sync.server.app import BackgroundServer
    from tests.station.sync_kit import CountyServer

    county = CountyServer(tmp_path / "county")
    county.server.stop()  # serve the same county on every address instead of 127.0.0.1 only
    server = BackgroundServer(county.app, host="0.0.0.0").start()
    try:
        url = f"http://{socket.gethostname()}:{server.port}"
        station = Station(tmp_path / "v", capsys, monkeypatch)
        rc, out, err = station("enroll", "--server", url, "--code", county.code(VILLAGE, "village"))
        assert rc == 0, err
        assert err.count("未加密的http") == 1 and url in err and "只显示一次" in err
        rc, out, err = station("sync")
        assert rc == 0 and "http" not in err  # said once per station and address
        rc, out, err = station("--json", "sync")
        assert json.loads(out)["notices"] == []
        # loopback is this PC itself: nothing to say
        other = Station(tmp_path / "w", capsys, monkeypatch, org=VILLAGE2)
        rc, _, err = other(
            "enroll",
            "--server",
            f"http://127.0.0.1:{server.port}",
            "--code",
            county.code(VILLAGE2, "village"),
        )
        assert rc == 0 and "未加密" not in err, err
    finally:
        server.stop()
        county.cdb.close()
