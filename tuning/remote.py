"""Read and write files under a URI: a local path, file://, hdfs:// or webhdfs://.

The URI rules (and the hdfs:// → WebHDFS port mapping) are serving.store's, so a URI that
serving can load, the trainer can write, and the other way round.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from serving.store import ArtifactMissing, Location, StoreError, StoreUnreachable, parse_uri


@dataclass(frozen=True)
class Remote:
    """One base URI and a client for it."""

    uri: str
    location: Location
    client: Any = None  # hdfs.InsecureClient for hdfs locations

    @classmethod
    def open(cls, uri: str, webhdfs_url: str = "", timeout: float = 30.0) -> Remote:
        loc = parse_uri(uri, webhdfs_url)
        client = None
        if loc.scheme == "hdfs":
            from hdfs import InsecureClient

            client = InsecureClient(loc.webhdfs, timeout=(5.0, timeout))
        return cls(uri, loc, client)

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import requests
        from hdfs.util import HdfsError

        try:
            return fn(*args, **kwargs)
        except HdfsError as exc:
            text = str(exc)
            if "FileNotFound" in (getattr(exc, "exception", "") or "") or "not exist" in text:
                raise ArtifactMissing(self.uri, f"{what}: {text}") from exc
            raise StoreError(self.uri, f"{what}: {text}") from exc
        except requests.RequestException as exc:
            raise StoreUnreachable(self.uri, f"{what}: WebHDFS at {self.location.webhdfs} "
                                             f"unreachable ({type(exc).__name__})") from exc

    def path(self, *parts: str | int) -> str:
        return self.location.child(*parts)

    def kind(self, *parts: str | int) -> str | None:
        """"file", "dir" or None (missing)."""
        p = self.path(*parts)
        if self.location.scheme == "file":
            lp = Path(p)
            return "dir" if lp.is_dir() else "file" if lp.is_file() else None
        st = self._call("status", self.client.status, p, strict=False)
        if st is None:
            return None
        return "dir" if st.get("type") == "DIRECTORY" else "file"

    def children(self, *parts: str | int) -> list[str]:
        p = self.path(*parts)
        if self.location.scheme == "file":
            return sorted(c.name for c in Path(p).iterdir())
        return sorted(self._call("list", self.client.list, p))

    def read_text(self, *parts: str | int) -> str:
        p = self.path(*parts)
        if self.location.scheme == "file":
            try:
                return Path(p).read_text()
            except FileNotFoundError as exc:
                raise ArtifactMissing(self.uri, f"{p} does not exist") from exc

        def _read() -> str:
            with self.client.read(p, encoding="utf-8") as reader:
                return reader.read()

        return self._call(f"read {p}", _read)

    def download(self, rel: str, dest: Path) -> int:
        """Copy the file or tree at `rel` (relative to the base; "" = the base) to `dest`."""
        p = self.path(rel) if rel else self.location.path
        if self.location.scheme == "file":
            src = Path(p)
            if src.is_dir():
                shutil.copytree(src, dest, dirs_exist_ok=True)
            elif src.is_file():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dest)
            else:
                raise ArtifactMissing(self.uri, f"{p} does not exist")
        else:
            if self.kind(rel) is None:
                raise ArtifactMissing(self.uri, f"{p} does not exist")
            dest.parent.mkdir(parents=True, exist_ok=True)
            self._call(f"download {p}", self.client.download, p, str(dest), overwrite=True)
        if dest.is_file():
            return dest.stat().st_size
        return sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())

    def upload(self, local: Path, rel: str, *, overwrite: bool = False) -> None:
        """Copy a local file or tree to `rel` under the base."""
        p = self.path(rel)
        if self.location.scheme == "file":
            dst = Path(p)
            if dst.exists() and not overwrite:
                raise StoreError(self.uri, f"{p} already exists")
            dst.parent.mkdir(parents=True, exist_ok=True)
            if local.is_dir():
                shutil.copytree(local, dst, dirs_exist_ok=True)
            else:
                shutil.copyfile(local, dst)
            return
        # Marker files last: a reader that sees dataset.json/metadata.json sees everything.
        files = [local] if local.is_file() else sorted(
            (f for f in local.rglob("*") if f.is_file()),
            key=lambda f: (f.name in ("dataset.json", "metadata.json"), str(f)))
        for f in files:
            sub = p if local.is_file() else str(PurePosixPath(p, f.relative_to(local).as_posix()))
            self._call(f"upload {sub}", self.client.upload, sub, str(f), overwrite=overwrite)


def join(uri: str, *parts: str | int) -> str:
    return "/".join([uri.rstrip("/"), *(str(p).strip("/") for p in parts)])


def split_version(uri: str) -> tuple[str, int]:
    """`…/models/digits/3` → (`…/models/digits`, 3); raises ValueError without a version."""
    base, _, last = uri.rstrip("/").rpartition("/")
    if not last.isdigit() or int(last) <= 0 or not base:
        raise ValueError(f"{uri!r} does not end in a version number (expected <base>/<n>)")
    return base, int(last)
