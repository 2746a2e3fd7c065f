"""How this station reaches the county: certificate checks, the county's CA file, plain-http notice.

* ``https://`` addresses are checked against the certificate authorities ``requests`` trusts
  (certifi) — or, when the county runs its own CA, against ONLY that CA: its certificate file,
  given once at enrollment (``station enroll --ca-file``), is kept as ``county-ca.pem`` in the
  data directory and used for every later sync.
* ``http://`` to anything but this PC (loopback) works — every payload is end-to-end signed and
  encrypted — but an observer sees who syncs, when and how much. The station says so ONCE per
  address (:func:`plain_http_notice`), in the CLI and the UI alike.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from cryptography import x509

from schema.errors import UserError
from station.replication import identity as I
from station.store.atomicfile import atomic_write
from sync.client import Client

CA_FILE = "county-ca.pem"
MAX_CA_BYTES = 256 * 1024


def ca_path(session) -> Path | None:
    """The county CA file this station trusts instead of the public ones, if it was given one."""
    path = Path(session.data.root) / CA_FILE
    return path if path.is_file() else None


def read_ca_file(path: str | Path) -> bytes:
    """The PEM certificate(s) of a county CA file, or a Chinese error saying what is wrong with it."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CA_BYTES:
            raise UserError(f"{path.name} 不是证书文件（文件过大）", field="ca")
        pem = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"找不到县中心证书文件 {path}", field="ca") from None
    except OSError as e:
        raise UserError(f"无法读取县中心证书文件 {path}：{e.strerror or e}", field="ca") from None
    try:
        if not x509.load_pem_x509_certificates(pem):
            raise ValueError
    except ValueError:
        raise UserError(
            f"{path.name} 不是PEM格式的证书文件（应以 -----BEGIN CERTIFICATE----- 开头），请向县中心索取正确的证书文件",
            field="ca",
        ) from None
    return pem


def save_ca(session, pem: bytes) -> None:
    atomic_write(Path(session.data.root) / CA_FILE, pem)


def client_for(session, url: str, *, ca_file: str | Path | None = None, **options) -> Client:
    """A client for ``url`` that checks certificates against ``ca_file``, else the stored county CA."""
    stored = ca_path(session)
    verify: bool | str = str(ca_file) if ca_file else (str(stored) if stored else True)
    return Client(url, verify=verify, **options)


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plain_http_notice(session, url: str) -> str:
    """The notice about an unencrypted address, the first time this station uses it; else ""."""
    if urlsplit(url).scheme != "http" or is_loopback(url):
        return ""
    if session.store.meta(I.HTTP_NOTICE) == url:
        return ""
    with session.store.writing():
        session.store.set_meta(I.HTTP_NOTICE, url)
    return (
        f"提示：县中心地址 {url} 使用未加密的http连接。同步的数据本身已签名并加密，别人无法读取或篡改，"
        "但网络上的人能看到本站何时同步、传了多少。建议县中心启用 https（此提示只显示一次）"
    )
