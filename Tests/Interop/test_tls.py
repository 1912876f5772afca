"""TLS and mutual TLS on rankd's gRPC port with stock clients: grpcio secure channels
(`grpc.ssl_channel_credentials`) and Python's ssl module for what grpcio cannot show (ALPN, TLS
versions, which alert the server sent). The PKI is made at test time by scripts/test-pki.sh
(openssl): a CA, server certificates, client certificates from it and from another CA, expired
ones. Also: client certificate names as the admin role, rankctl over mutual TLS, and certificate
rotation (file change and SIGHUP) under load with zero failed calls."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest

from conftest import ROOT, RankdProcess, rankctl_binary, rankd_binary, synth
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ranking.v1 import admin_pb2 as apb
from ranking.v1 import admin_pb2_grpc as arpc
from ranking.v1 import ranker_pb2 as pb
from ranking.v1 import ranker_pb2_grpc as rpc

TOKEN = "tls-admin-token-0123456789"
PUBLISHER = "uri:spiffe://rankd.test/publisher"


@pytest.fixture(scope="module")
def pki():
    base = Path(tempfile.mkdtemp(prefix="rankd-tls-"))
    subprocess.run([str(ROOT / "scripts" / "test-pki.sh"), str(base / "pki")], check=True, capture_output=True,
                   timeout=60)
    snapshot, _ = synth(base, "snap", seed=7, items=400, categories=4)
    (base / "token").write_text(TOKEN + "\n")
    yield {"dir": base / "pki", "snapshot": snapshot, "base": base}
    shutil.rmtree(base, ignore_errors=True)


def pem(pki, name):
    return (pki["dir"] / name).read_bytes()


def path(pki, name):
    return str(pki["dir"] / name)


def credentials(pki, client=None, ca="ca.crt"):
    if client is None:
        return grpc.ssl_channel_credentials(pem(pki, ca))
    return grpc.ssl_channel_credentials(pem(pki, ca), pem(pki, f"{client}.key"), pem(pki, f"{client}.crt"))


def tls_server(pki, *extra, cert="server", mutual=False):
    args = ["--tls-cert", path(pki, f"{cert}.crt"), "--tls-key", path(pki, f"{cert}.key")]
    if mutual:
        args += ["--tls-client-ca", path(pki, "ca.crt")]
    return RankdProcess(*args, *extra).start()


def wait_serving(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(400):
        reply = health.Check(health_pb2.HealthCheckRequest(service="ranking.v1.Ranker"), timeout=5)
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            return
        time.sleep(0.05)
    raise AssertionError("the Ranker never became SERVING")


def rank(channel, user="u_1"):
    return rpc.RankerStub(channel).Rank(pb.RankRequest(user_id=user, k=5), timeout=5)


def wait_for_log(server, text, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in server.output():
            return
        time.sleep(0.05)
    raise AssertionError(f"no log line with {text!r}:\n{server.output()}")


def ssl_probe(pki, server, alpn=("h2",), client=None, version=None):
    """One TLS connection with Python's ssl module. Returns (negotiated ALPN, TLS version, serial of
    the server certificate, bytes read after the handshake or the SSL error text)."""
    context = ssl.create_default_context(cafile=path(pki, "ca.crt"))
    if alpn:
        context.set_alpn_protocols(list(alpn))
    if client:
        context.load_cert_chain(path(pki, f"{client}.crt"), path(pki, f"{client}.key"))
    if version:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = version
    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        try:
            with context.wrap_socket(raw, server_hostname="localhost") as tls:
                serial = tls.getpeercert()["serialNumber"].lower()
                negotiated = (tls.selected_alpn_protocol(), tls.version())
                try:
                    # A refused client reads EOF or the server's alert at once. An accepted one hears
                    # nothing until it sends its preface and SETTINGS, as every HTTP/2 client does: the
                    # server's SETTINGS answer them.
                    tls.settimeout(0.5)
                    try:
                        outcome = tls.recv(64)
                    except TimeoutError:
                        tls.settimeout(5)
                        tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
                        outcome = tls.recv(64)
                except (ssl.SSLError, ConnectionError) as error:
                    outcome = str(error)
                return negotiated[0], negotiated[1], serial, outcome
        except ssl.SSLError as error:
            return None, None, None, str(error)


def serial_of(pki, name):
    out = subprocess.run(["openssl", "x509", "-in", path(pki, f"{name}.crt"), "-noout", "-serial"],
                         check=True, capture_output=True, text=True).stdout
    return out.strip().split("=")[1].lower().lstrip("0")


# ---- TLS ---------------------------------------------------------------------------------------

def test_rank_over_a_grpcio_secure_channel(pki):
    server = tls_server(pki, "--snapshot", str(pki["snapshot"]))
    try:
        channel = grpc.secure_channel(server.address, credentials(pki))
        wait_serving(channel)
        reply = rank(channel)
        assert len(reply.items) == 5
        assert "transport=tls" in server.output()
        # A cleartext client gets no gRPC out of the TLS port.
        with pytest.raises(grpc.RpcError) as refused:
            rank(grpc.insecure_channel(server.address))
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # Nor does one that trusts another CA.
        with pytest.raises(grpc.RpcError) as untrusted:
            rank(grpc.secure_channel(server.address, credentials(pki, ca="other-ca.crt")))
        assert untrusted.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated")
def test_alpn_h2_is_required_and_tls_below_1_2_is_refused(pki):
    server = tls_server(pki)
    try:
        alpn, version, _, first = ssl_probe(pki, server)
        assert alpn == "h2" and version == "TLSv1.3"
        assert first[:9][3] == 0x04, "the server's first frame is HTTP/2 SETTINGS"
        alpn, version, _, first = ssl_probe(pki, server, version=ssl.TLSVersion.TLSv1_2)
        assert (alpn, version) == ("h2", "TLSv1.2") and first[3] == 0x04
        for offered in [("http/1.1",), None]:
            alpn, _, _, first = ssl_probe(pki, server, alpn=offered)
            assert alpn is None and first == b"", f"ALPN {offered}: expected EOF, got {first!r}"
        wait_for_log(server, 'TLS client refused: it did not negotiate HTTP/2 (ALPN h2)" alpn=none')
        _, _, _, error = ssl_probe(pki, server, version=ssl.TLSVersion.TLSv1_1)
        assert "ALERT_PROTOCOL_VERSION" in error.upper() or "ALERT PROTOCOL VERSION" in error.upper(), error
        wait_for_log(server, "UNSUPPORTED_PROTOCOL")
    finally:
        server.stop()


def test_expired_server_certificate_refused_at_startup(pki):
    server = RankdProcess("--tls-cert", path(pki, "server-expired.crt"), "--tls-key", path(pki, "server-expired.key"))
    server.log = open(server.log_path, "wb")
    server.proc = subprocess.Popen(server.args, stdout=server.log, stderr=subprocess.STDOUT)
    assert server.proc.wait(timeout=20) != 0
    server.log.close()
    assert "the certificate expired at 2020-01-02T00:00:00Z" in server.output()


# ---- mutual TLS --------------------------------------------------------------------------------

def test_mutual_tls_good_other_ca_no_and_expired_client_certificates(pki):
    server = tls_server(pki, "--snapshot", str(pki["snapshot"]), mutual=True)
    try:
        good = grpc.secure_channel(server.address, credentials(pki, "client"))
        wait_serving(good)
        assert len(rank(good).items) == 5
        assert "transport=mutual-tls" in server.output()
        for client, reason in [("client-other-ca", "CERTIFICATE_VERIFY_FAILED"), (None, "PEER_DID_NOT_RETURN_A_CERTIFICATE"),
                               ("client-expired", "CERTIFICATE_VERIFY_FAILED")]:
            with pytest.raises(grpc.RpcError) as refused:
                rank(grpc.secure_channel(server.address, credentials(pki, client)))
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, client
            wait_for_log(server, reason)
        # Which alert each refused client got (grpcio only says UNAVAILABLE).
        assert "CERTIFICATE_EXPIRED" in ssl_probe(pki, server, client="client-expired")[3].upper().replace(" ", "_")
        assert "UNKNOWN_CA" in ssl_probe(pki, server, client="client-other-ca")[3].upper().replace(" ", "_")
        assert "CERTIFICATE_REQUIRED" in ssl_probe(pki, server)[3].upper().replace(" ", "_")
        # The good channel still works after its neighbours were refused.
        assert len(rank(good).items) == 5
    finally:
        server.stop()


def test_client_certificate_names_map_to_the_admin_role(pki):
    root = pki["base"] / "root"
    root.mkdir(exist_ok=True)
    # TLS from the config file this time (the other tests use the flags).
    config = pki["base"] / "rankd-tls.json"
    config.write_text(json.dumps({
        "tlsCert": path(pki, "server.crt"), "tlsKey": path(pki, "server.key"), "tlsClientCA": path(pki, "ca.crt"),
        "tlsAdminIdentities": [PUBLISHER], "tlsWatchIntervalSeconds": 0, "tlsHandshakeTimeoutSeconds": 5}))
    server = RankdProcess("--config", str(config), "--snapshot-root", str(root), "--admin-token-file",
                          str(pki["base"] / "token")).start()
    try:
        def status(client, metadata=()):
            channel = grpc.secure_channel(server.address, credentials(pki, client))
            return arpc.SnapshotAdminStub(channel).Status(apb.StatusRequest(), metadata=metadata, timeout=5)

        assert "transport=mutual-tls" in server.output() and "TLS reload on SIGHUP\"" in server.output()
        assert status("publisher").active_version == ""
        with pytest.raises(grpc.RpcError) as denied:
            status("client")
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        status("client", metadata=(("authorization", f"Bearer {TOKEN}"),))

        # rankctl over mutual TLS: publish and activate by certificate alone, then rank.
        env = {k: v for k, v in os.environ.items() if k != "RANKD_ADMIN_TOKEN"}
        tls = ["--ca", path(pki, "ca.crt"), "--cert", path(pki, "publisher.crt"), "--key", path(pki, "publisher.key")]
        published = subprocess.run(
            [rankctl_binary(), "publish", str(pki["snapshot"]), "--server", server.address, "--activate", *tls],
            capture_output=True, text=True, timeout=120, env=env)
        assert published.returncode == 0, published.stderr
        edge = ["--ca", path(pki, "ca.crt"), "--cert", path(pki, "client.crt"), "--key", path(pki, "client.key")]
        ranked = subprocess.run([rankctl_binary(), "rank", "--server", server.address, "--user", "u_3", "--json", *edge],
                                capture_output=True, text=True, timeout=60)
        assert ranked.returncode == 0 and '"items"' in ranked.stdout, ranked.stderr
        refused = subprocess.run([rankctl_binary(), "status", "--server", server.address, *edge],
                                 capture_output=True, text=True, timeout=60, env=env)
        assert refused.returncode != 0
        assert "spiffe://rankd.test/publisher" in refused.stderr and "spiffe://rankd.test/edge" in refused.stderr
        no_ca = subprocess.run([rankctl_binary(), "rank", "--server", server.address, "--tls"],
                               capture_output=True, text=True, timeout=60)
        assert no_ca.returncode != 0 and "TLS handshake failed" in no_ca.stderr
    finally:
        server.stop()


def test_admin_identity_needs_mutual_tls(pki):
    proc = subprocess.run(
        [rankd_binary(), "--listen", "127.0.0.1:0", "--tls-cert", path(pki, "server.crt"), "--tls-key",
         path(pki, "server.key"), "--tls-admin-identity", PUBLISHER],
        capture_output=True, text=True, timeout=20)
    assert proc.returncode != 0 and "--tls-admin-identity needs --tls-client-ca" in proc.stderr


# ---- rotation ----------------------------------------------------------------------------------

def install(pki, live, name):
    """Puts `name`'s certificate and key in place as a deployment tool would: each file written
    to a temporary name and renamed over the live one (key first, so a poll may briefly see the new
    key with the old certificate: a mismatch rankd must refuse without dropping anything)."""
    for suffix in ["key", "crt"]:
        temporary = live / f".tmp.{suffix}"
        shutil.copy(path(pki, f"{name}.{suffix}"), temporary)
        os.replace(temporary, live / f"live.{suffix}")


def test_rotation_under_load_has_zero_failed_calls(pki):
    live = pki["base"] / "live"
    live.mkdir(exist_ok=True)
    install(pki, live, "server")
    server = RankdProcess("--tls-cert", str(live / "live.crt"), "--tls-key", str(live / "live.key"),
                          "--tls-client-ca", path(pki, "ca.crt"), "--tls-watch-interval", "0.2",
                          "--snapshot", str(pki["snapshot"]),
                          # The reconnecting worker opens a connection per call from 127.0.0.1, faster than the
                          # per-address connection rate (50/s) allows on a quick machine; that limit is not what
                          # this test is about (its refusals are tested in test_grpc_core / the attacks).
                          "--connection-rate-per-address", "100000",
                          "--connection-burst-per-address", "100000").start()
    calls, failures, stop, workers = [0], [], threading.Event(), []
    lock = threading.Lock()

    def load(reconnect):
        channel = grpc.secure_channel(server.address, credentials(pki, "client"))
        while not stop.is_set():
            if reconnect:  # a new connection (and handshake) per call
                channel.close()
                channel = grpc.secure_channel(server.address, credentials(pki, "client"))
            try:
                rank(channel)
                with lock:
                    calls[0] += 1
            except grpc.RpcError as error:
                with lock:
                    failures.append(f"{error.code()}: {error.details()}")
        channel.close()

    try:
        wait_serving(grpc.secure_channel(server.address, credentials(pki, "client")))
        old = serial_of(pki, "server")
        assert ssl_probe(pki, server, client="client")[2].lstrip("0") == old
        workers = [threading.Thread(target=load, args=(reconnect,)) for reconnect in [False, False, True]]
        for worker in workers:
            worker.start()
        time.sleep(1.0)

        install(pki, live, "server2")  # picked up by the file watch
        wait_for_log(server, 'TLS certificate reloaded: new connections use it, open ones keep theirs"')
        assert ssl_probe(pki, server, client="client")[2].lstrip("0") == serial_of(pki, "server2")
        time.sleep(0.5)

        install(pki, live, "server-expired")  # refused; server2 keeps serving
        wait_for_log(server, "TLS reload refused: the previous certificate keeps serving")
        wait_for_log(server, "the certificate expired at 2020-01-02T00:00:00Z")
        os.kill(server.proc.pid, signal.SIGHUP)
        wait_for_log(server, 'trigger=SIGHUP')
        assert ssl_probe(pki, server, client="client")[2].lstrip("0") == serial_of(pki, "server2")
        time.sleep(0.5)

        install(pki, live, "server")  # back to the first certificate, by SIGHUP as well
        os.kill(server.proc.pid, signal.SIGHUP)
        time.sleep(1.0)
        assert ssl_probe(pki, server, client="client")[2].lstrip("0") == old
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=10)
        server.stop()
    assert failures == [], failures[:5]
    assert calls[0] > 50, calls[0]
    print(f"rotation under load: {calls[0]} calls, 0 failed")
