"""A bounded LRU of response bodies for repeated requests (latency mode)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict


class ResponseCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[bytes, bytes] = OrderedDict()

    @staticmethod
    def key(*parts: bytes) -> bytes:
        digest = hashlib.blake2b(digest_size=16)
        for part in parts:
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
        return digest.digest()

    def get(self, key: bytes) -> bytes | None:
        body = self._data.get(key)
        if body is not None:
            self._data.move_to_end(key)
        return body

    def put(self, key: bytes, body: bytes) -> None:
        if self.size <= 0:
            return
        self._data[key] = body
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
