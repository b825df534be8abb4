#!/usr/bin/env python3
"""Writes an OCI image layout tarball holding a one-layer busybox image, made from the
static busybox on this machine (Debian's busybox-static), for machines that reach no
registry. `ctr images import` reads it.

    busybox-image.py OUT.tar IMAGE_NAME [BUSYBOX]     BUSYBOX default: /bin/busybox

The layer holds /bin/busybox, a symlink per applet it lists (`busybox --list`), the
empty directories a container expects and a minimal /etc. Every timestamp is zero, so
the same busybox always gives the same digests.
"""
import hashlib
import io
import json
import subprocess
import sys
import tarfile


def add_dir(archive, path, mode=0o755):
    info = tarfile.TarInfo(path)
    info.type = tarfile.DIRTYPE
    info.mode = mode
    archive.addfile(info)


def add_file(archive, path, data, mode=0o644):
    info = tarfile.TarInfo(path)
    info.size = len(data)
    info.mode = mode
    archive.addfile(info, io.BytesIO(data))


def add_symlink(archive, path, target):
    info = tarfile.TarInfo(path)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    archive.addfile(info)


def layer(busybox):
    """The root filesystem as an uncompressed tar."""
    applets = subprocess.run(
        [busybox, "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    with open(busybox, "rb") as binary:
        busybox_bytes = binary.read()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for directory in ["bin", "dev", "etc", "proc", "sys", "root", "var", "www"]:
            add_dir(archive, directory)
        add_dir(archive, "tmp", 0o1777)
        add_file(archive, "bin/busybox", busybox_bytes, 0o755)
        for applet in sorted(set(applets) - {"busybox"}):
            add_symlink(archive, "bin/" + applet, "busybox")
        add_file(archive, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
        add_file(archive, "etc/group", b"root:x:0:\n")
    return buffer.getvalue()


def blob(archive, data):
    """Adds `data` under blobs/sha256/ and returns its descriptor fields."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    add_file(archive, "blobs/sha256/" + digest.split(":")[1], data)
    return {"digest": digest, "size": len(data)}


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: busybox-image.py OUT.tar IMAGE_NAME [BUSYBOX]")
    out, name = sys.argv[1], sys.argv[2]
    busybox = sys.argv[3] if len(sys.argv) == 4 else "/bin/busybox"
    rootfs = layer(busybox)
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        add_dir(archive, "blobs")
        add_dir(archive, "blobs/sha256")
        layer_descriptor = blob(archive, rootfs)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/bin"],
                "Cmd": ["sh"],
                "WorkingDir": "/",
            },
            "rootfs": {"type": "layers", "diff_ids": [layer_descriptor["digest"]]},
        }
        config_descriptor = blob(archive, canonical(config))
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                **config_descriptor,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_descriptor}
            ],
        }
        manifest_descriptor = blob(archive, canonical(manifest))
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **manifest_descriptor,
                    "platform": {"architecture": "amd64", "os": "linux"},
                    # containerd names the imported image after this annotation.
                    "annotations": {"io.containerd.image.name": name},
                }
            ],
        }
        add_file(archive, "index.json", canonical(index))
        add_file(archive, "oci-layout", canonical({"imageLayoutVersion": "1.0.0"}))


if __name__ == "__main__":
    main()
