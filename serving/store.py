"""The model store: one artifact layout on local disk or HDFS (WebHDFS), read and write.

Layout under a base URI (compatible with TF Serving's version directories)::

    <base>/<version>/saved_model.pb        SavedModel (plus variables/, assets/)
    <base>/<version>/model_fp32.tflite     optional LiteRT float32 variant
    <base>/<version>/model_int8.tflite     optional LiteRT full-integer variant
    <base>/<version>/metadata.json         signature, labels, holdout metric, provenance,
                                           and the sha256 of every other file

`<version>` is a positive integer; the largest one is served by default. A version is
published atomically on local disk (written to a temporary name, then renamed); on HDFS
`metadata.json` is written last, so a version without it is incomplete and ignored.

Base URIs: a local path, `file:///path`, `hdfs://namenode:port/path` or
`webhdfs://host:http_port/path`. An `hdfs://` URI names the NameNode RPC port, which
WebHDFS does not use: the HTTP endpoint comes from `webhdfs_url` (or `$WEBHDFS_URL`);
without one, Hadoop's defaults apply (RPC 8020/9000 → HTTP 9870).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

METADATA = "metadata.json"
SAVED_MODEL_PB = "saved_model.pb"
TFLITE_FP32 = "model_fp32.tflite"
TFLITE_INT8 = "model_int8.tflite"
CLAIM = ".claim"  # HDFS only: created exclusively before the files, names the writer
FORMAT_VERSION = 1
REQUIRED_METADATA = ("format_version", "name", "signature", "files")
DEFAULT_WEBHDFS_PORT = 9870
_RPC_TO_HTTP = {8020: 9870, 9000: 9870, 9820: 9870}


class StoreError(Exception):
    """A store failure; the message names the URI and the cause."""

    def __init__(self, uri: str, cause: str) -> None:
        super().__init__(f"model store {uri}: {cause}")
        self.uri = uri
        self.cause = cause


class ArtifactMissing(StoreError):
    """The path or version does not exist."""


class StoreUnreachable(StoreError):
    """The backend (NameNode/DataNode) could not be reached."""


class ArtifactCorrupt(StoreError):
    """The artifact exists but is incomplete or fails its checksums."""


class VersionExists(StoreError):
    """The version is already published (or being published by someone else)."""


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed base URI."""

    scheme: str  # "file" or "hdfs"
    path: str  # absolute path (local or HDFS)
    webhdfs: str = ""  # http://host:port for hdfs

    def child(self, *parts: str | int) -> str:
        if self.scheme == "hdfs":
            return str(PurePosixPath(self.path, *map(str, parts)))
        return str(Path(self.path, *map(str, parts)))


def parse_uri(uri: str, webhdfs_url: str = "") -> Location:
    """Parse a base URI; `webhdfs_url` (or $WEBHDFS_URL) overrides the hdfs:// port mapping."""
    if not uri:
        raise StoreError(uri, "no model URI given (set MODEL_URI)")
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        path = parts.path if parts.scheme == "file" else uri
        return Location("file", str(Path(path).expanduser().absolute()))
    if parts.scheme not in ("hdfs", "webhdfs"):
        raise StoreError(uri, f"unsupported scheme {parts.scheme!r} (use a path, hdfs:// or "
                              "webhdfs://)")
    if not parts.hostname:
        raise StoreError(uri, "no host in URI")
    path = str(PurePosixPath("/") / (parts.path or "/"))
    override = webhdfs_url or os.environ.get("WEBHDFS_URL", "")
    if override:
        base = override.rstrip("/")
    elif parts.scheme == "webhdfs":
        base = f"http://{parts.hostname}:{parts.port or DEFAULT_WEBHDFS_PORT}"
    else:
        port = _RPC_TO_HTTP.get(parts.port or 8020, parts.port)
        base = f"http://{parts.hostname}:{port}"
    return Location("hdfs", path, base)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path


def seal(version_dir: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """Write metadata.json into a local version directory with the sha256 of every file."""
    files = {
        p.relative_to(version_dir).as_posix(): sha256_file(p)
        for p in _walk_files(version_dir)
        if p.name != METADATA
    }
    meta = {"format_version": FORMAT_VERSION, **metadata, "files": files}
    (version_dir / METADATA).write_text(json.dumps(meta, indent=2, sort_keys=True))
    return meta


def verify(version_dir: Path, uri: str) -> dict[str, Any]:
    """Check a local copy of a version against its metadata; return the metadata."""
    meta_path = version_dir / METADATA
    if not meta_path.is_file():
        raise ArtifactCorrupt(uri, f"{METADATA} is missing (incomplete or not a model version)")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactCorrupt(uri, f"{METADATA} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArtifactCorrupt(uri, f"{METADATA} is not a JSON object")
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise ArtifactCorrupt(uri, f"{METADATA} lacks {', '.join(missing)}")
    if SAVED_MODEL_PB not in meta["files"]:
        raise ArtifactCorrupt(uri, f"{SAVED_MODEL_PB} is not listed in {METADATA}")
    for rel, expected in meta["files"].items():
        path = version_dir / rel
        if not path.is_file():
            raise ArtifactCorrupt(uri, f"{rel} is missing")
        if sha256_file(path) != expected:
            raise ArtifactCorrupt(uri, f"{rel} fails its sha256 check (corrupt or partial)")
    return meta


class Store:
    """Read and write model versions under one base URI."""

    def __init__(self, uri: str, *, webhdfs_url: str = "", cache_dir: str = "",
                 timeout: tuple[float, float] = (5.0, 60.0), user: str | None = None) -> None:
        self.uri = uri
        self.location = parse_uri(uri, webhdfs_url)
        self.cache_dir = Path(cache_dir or tempfile.gettempdir()) / "modelfleet-models"
        self._timeout = timeout
        self._user = user
        self._client: Any = None

    # -- backend helpers -------------------------------------------------------
    def _hdfs(self) -> Any:
        if self._client is None:
            from hdfs import InsecureClient

            self._client = InsecureClient(self.location.webhdfs, user=self._user,
                                          timeout=self._timeout)
        return self._client

    def _hdfs_call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an HdfsCLI call, mapping its exceptions to StoreError subclasses."""
        import requests
        from hdfs.util import HdfsError

        try:
            return fn(*args, **kwargs)
        except HdfsError as exc:
            text = str(exc)
            kind = getattr(exc, "exception", "") or ""
            if "FileNotFound" in kind or "does not exist" in text:
                raise ArtifactMissing(self.uri, f"{what}: {text}") from exc
            raise StoreError(self.uri, f"{what}: {text}") from exc
        except requests.RequestException as exc:
            raise StoreUnreachable(
                self.uri, f"{what}: WebHDFS at {self.location.webhdfs} unreachable "
                f"({type(exc).__name__}: {exc})"
            ) from exc

    # -- reading ---------------------------------------------------------------
    def versions(self) -> list[int]:
        """Published versions (those holding metadata.json), ascending."""
        loc = self.location
        if loc.scheme == "file":
            base = Path(loc.path)
            if not base.is_dir():
                raise ArtifactMissing(self.uri, f"no such directory {base}")
            names = [p.name for p in base.iterdir() if (p / METADATA).is_file()]
        else:
            client = self._hdfs()
            entries = self._hdfs_call("list", client.list, loc.path, status=True)
            names = []
            for name, status in entries:
                if status.get("type") != "DIRECTORY" or not name.isdigit():
                    continue
                meta = self._hdfs_call("status", client.status, loc.child(name, METADATA),
                                       strict=False)
                if meta is not None:
                    names.append(name)
        return sorted(int(n) for n in names if n.isdigit() and int(n) > 0)

    def resolve_version(self, version: int = 0) -> int:
        found = self.versions()
        if not found:
            raise ArtifactMissing(self.uri, "no model versions (expected <base>/<n>/metadata.json)")
        if version == 0:
            return found[-1]
        if version not in found:
            raise ArtifactMissing(self.uri, f"version {version} not found (have {found})")
        return version

    def fetch(self, version: int = 0) -> tuple[int, Path, dict[str, Any]]:
        """Return (version, local directory, verified metadata), downloading if remote."""
        version = self.resolve_version(version)
        loc = self.location
        vuri = f"{self.uri.rstrip('/')}/{version}"
        if loc.scheme == "file":
            local = Path(loc.child(version))
            return version, local, verify(local, vuri)
        key = hashlib.sha256(f"{loc.webhdfs}{loc.path}".encode()).hexdigest()[:16]
        dest = self.cache_dir / key / str(version)
        if dest.is_dir():
            try:
                return version, dest, verify(dest, vuri)
            except StoreError:
                shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=dest.parent))
        try:
            client = self._hdfs()
            remote = loc.child(version)
            for rel in self._remote_files(remote):
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                self._hdfs_call(f"download {rel}", client.download,
                                f"{remote}/{rel}", str(target), overwrite=True)
            meta = verify(tmp, vuri)
            os.replace(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return version, dest, meta

    def _remote_files(self, remote: str) -> list[str]:
        client = self._hdfs()
        walked = self._hdfs_call("walk", lambda: list(client.walk(remote)))
        rels = []
        for dirpath, _dirs, files in walked:
            sub = str(PurePosixPath(dirpath).relative_to(remote))
            rels += [f for f in files] if sub == "." else [f"{sub}/{f}" for f in files]
        return rels

    def read_metadata(self, version: int = 0) -> dict[str, Any]:
        """Metadata of a version without downloading the model files."""
        version = self.resolve_version(version)
        loc = self.location
        path = loc.child(version, METADATA)
        if loc.scheme == "file":
            text = Path(path).read_text()
        else:
            client = self._hdfs()

            def _read() -> str:
                with client.read(path, encoding="utf-8") as reader:
                    return reader.read()

            text = self._hdfs_call("read metadata", _read)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ArtifactCorrupt(f"{self.uri}/{version}", f"{METADATA} is not JSON") from exc

    # -- writing ---------------------------------------------------------------
    def publish(self, local_dir: Path, version: int = 0, *, claim_note: str = "") -> int:
        """Copy a sealed local version directory into the store as `version` (0: next).

        Raises `VersionExists` when that version is taken (never writes over it); callers
        that want "the next free version" retry with `version=0`.
        """
        verify(local_dir, str(local_dir))
        loc = self.location
        if version == 0:
            try:
                existing = self.versions()
            except ArtifactMissing:
                existing = []
            version = (existing[-1] + 1) if existing else 1
        if loc.scheme == "file":
            base = Path(loc.path)
            base.mkdir(parents=True, exist_ok=True)
            final = base / str(version)
            if final.exists():
                raise VersionExists(self.uri, f"version {version} already exists")
            tmp = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=base))
            shutil.copytree(local_dir, tmp, dirs_exist_ok=True)
            try:
                os.rename(tmp, final)  # fails if another writer's version landed meanwhile
            except OSError as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise VersionExists(self.uri, f"version {version} already exists") from exc
            return version
        client = self._hdfs()
        remote = loc.child(version)
        if self._hdfs_call("status", client.status, remote, strict=False) is not None:
            raise VersionExists(self.uri, f"version {version} already exists")
        # HDFS create without overwrite is exclusive: the first writer to create the claim
        # file owns the version, so two concurrent publishers never mix their files.
        try:
            self._hdfs_call("claim", client.write, f"{remote}/{CLAIM}", data=claim_note,
                            overwrite=False)
        except StoreError as exc:
            if "already exists" in exc.cause or "FileAlreadyExists" in exc.cause:
                raise VersionExists(self.uri, f"version {version} already exists") from exc
            raise
        files = [p for p in _walk_files(local_dir) if p.name != METADATA]
        for path in [*files, local_dir / METADATA]:  # metadata last: marks completion
            rel = path.relative_to(local_dir).as_posix()
            self._hdfs_call(f"upload {rel}", client.upload, f"{remote}/{rel}", str(path),
                            overwrite=True)
        return version
