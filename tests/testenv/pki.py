"""A throwaway certificate authority for the test control plane, driven by the openssl CLI.

EC P-256 keys keep generation fast; the service-account key is RSA like upstream's default.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(
        ["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def _new_ec_key(path: Path) -> None:
    _openssl(
        "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-out", str(path), cwd=path.parent,
    )  # fmt: skip


class Pki:
    """A CA in `directory` that issues leaf certificates signed by it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = KeyPair(directory / "ca.crt", directory / "ca.key")
        _new_ec_key(self.ca.key)
        _openssl(
            "req", "-x509", "-new", "-key", str(self.ca.key), "-days", "3650",
            "-subj", "/CN=modelrollout-testenv-ca", "-out", str(self.ca.cert),
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            cwd=directory,
        )  # fmt: skip

    def issue(
        self,
        name: str,
        common_name: str,
        *,
        organizations: Sequence[str] = (),
        dns_names: Sequence[str] = (),
        ip_addresses: Sequence[str] = (),
    ) -> KeyPair:
        """A certificate usable both as TLS server (when SANs are given) and client cert."""
        pair = KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key")
        _new_ec_key(pair.key)
        subject = "".join(f"/O={org}" for org in organizations) + f"/CN={common_name}"
        csr = self.directory / f"{name}.csr"
        _openssl(
            "req", "-new", "-key", str(pair.key), "-subj", subject, "-out", str(csr),
            cwd=self.directory,
        )  # fmt: skip
        extensions = [
            "basicConstraints=critical,CA:FALSE",
            "keyUsage=critical,digitalSignature,keyEncipherment",
            "extendedKeyUsage=serverAuth,clientAuth",
        ]
        sans = [f"DNS:{d}" for d in dns_names] + [f"IP:{ip}" for ip in ip_addresses]
        if sans:
            extensions.append("subjectAltName=" + ",".join(sans))
        ext_file = self.directory / f"{name}.ext"
        ext_file.write_text("\n".join(extensions) + "\n")
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca.cert),
            "-CAkey", str(self.ca.key), "-set_serial", f"0x{secrets.token_hex(16)}",
            "-days", "365", "-extfile", str(ext_file), "-out", str(pair.cert),
            cwd=self.directory,
        )  # fmt: skip
        return pair

    def service_account_keys(self) -> KeyPair:
        """RSA key pair signing service-account tokens (`cert` holds the public key)."""
        pair = KeyPair(self.directory / "sa.pub", self.directory / "sa.key")
        _openssl(
            "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
            "-out", str(pair.key), cwd=self.directory,
        )  # fmt: skip
        _openssl(
            "pkey", "-in", str(pair.key), "-pubout", "-out", str(pair.cert), cwd=self.directory
        )
        return pair
