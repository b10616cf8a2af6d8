"""Test images without a Docker engine, for the SDK tests (test_sdk_images.py) and the bench
(bench/images.py): the e2e tests' static server (tests/e2e/src/images/srv.c) compiled with
gcc -static, layers as gzip tars, an OCI image layout pushed with skopeo, and a throwaway
docker-registry on a loopback port. Standard library only.
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

SRV_C = Path(__file__).resolve().parents[1] / "e2e" / "src" / "images" / "srv.c"


def missing():
    """Why images cannot be built and pushed here, or None."""
    if os.geteuid() != 0:
        return "an image function's root is an overlay: needs root"
    for tool in ("gcc", "skopeo"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    if not os.environ.get("FGS_TEST_REGISTRY") and not shutil.which("docker-registry"):
        return "docker-registry is not installed and FGS_TEST_REGISTRY is unset"
    return None


class Registry:
    """FGS_TEST_REGISTRY, or a docker-registry started in a temporary directory."""

    def __init__(self):
        self.proc, self.dir = None, None
        if os.environ.get("FGS_TEST_REGISTRY"):
            self.addr = os.environ["FGS_TEST_REGISTRY"]
            return
        self.dir = tempfile.mkdtemp(prefix="fgs-registry-")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{s.getsockname()[1]}"
        s.close()
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
                    f"    rootdirectory: {self.dir}/data\nhttp:\n  addr: {self.addr}\n")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host, port = self.addr.split(":")
        for _ in range(200):
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not listen on {self.addr}")

    def stop(self):
        if self.proc:
            self.proc.kill()
            self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def server_binary(workdir):
    out = os.path.join(workdir, "srv")
    subprocess.run(["gcc", "-static", "-O1", "-o", out, str(SRV_C)], check=True)
    with open(out, "rb") as f:
        return f.read()


def layer(entries):
    """A gzip layer of (path, bytes or None for a directory, mode), and its diff_id."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        for path, data, mode in entries:
            info = tarfile.TarInfo(path)
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    tar = raw.getvalue()
    return gzip.compress(tar, compresslevel=1), "sha256:" + hashlib.sha256(tar).hexdigest()


def base_layers(srv, version):
    """The server at /bin/srv, /etc/version, and a layer whiting out /etc/gone."""
    return [
        layer([("bin", None, 0o755), ("bin/srv", srv, 0o755), ("etc", None, 0o755),
               ("etc/version", version.encode(), 0o644), ("etc/gone", b"x", 0o644),
               ("scratch", None, 0o777)]),
        layer([("etc/.wh.gone", b"", 0o644)]),
    ]


def push(registry, layers, repo, tag):
    """Writes an OCI layout of `layers` running /bin/srv and pushes it as repo:tag."""
    d = tempfile.mkdtemp(prefix="fgs-oci-")
    blobs = os.path.join(d, "blobs", "sha256")
    os.makedirs(blobs)

    def put(b, media):
        digest = hashlib.sha256(b).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(b)
        return {"mediaType": media, "digest": "sha256:" + digest, "size": len(b)}

    config = json.dumps({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin", "FOO=from-image"], "Cmd": ["/bin/srv"]},
        "rootfs": {"type": "layers", "diff_ids": [l[1] for l in layers]},
    }).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": put(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [put(l[0], "application/vnd.oci.image.layer.v1.tar+gzip") for l in layers],
    }).encode()
    m = put(manifest, "application/vnd.oci.image.manifest.v1+json")
    m["annotations"] = {"org.opencontainers.image.ref.name": tag}
    with open(os.path.join(d, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [m]}, f)
    with open(os.path.join(d, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion":"1.0.0"}')
    ref = f"{registry}/{repo}:{tag}"
    subprocess.run(["skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                    f"oci:{d}:{tag}", f"docker://{ref}"], check=True)
    shutil.rmtree(d, ignore_errors=True)
    return ref
