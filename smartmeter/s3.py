"""A minimal S3 client (AWS Signature V4, standard library only) for setup and health checks.

The runner needs three calls, so it does not pull in an SDK: list buckets (health), create a
bucket (setup) and list objects (status and tests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


class S3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class S3Client:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def _request(self, method: str, path: str, query: dict[str, str] | None = None, timeout_s: float = 10) -> bytes:
        parsed = urllib.parse.urlsplit(self.endpoint)
        host = parsed.netloc
        now = dt.datetime.now(dt.UTC)
        amz_date = now.strftime("%Y%m%dT%H%M%SZ")
        date = now.strftime("%Y%m%d")
        canonical_query = "&".join(
            f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}" for k, v in sorted((query or {}).items())
        )
        canonical_path = urllib.parse.quote(path, safe="/-_.~")
        headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
        signed_headers = ";".join(sorted(headers))
        canonical_request = "\n".join(
            [
                method,
                canonical_path,
                canonical_query,
                "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
                signed_headers,
                EMPTY_SHA256,
            ]
        )
        scope = f"{date}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
        key = f"AWS4{self.secret_key}".encode()
        for part in (date, self.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        authorization = (
            f"AWS4-HMAC-SHA256 Credential={self.access_key}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
        )
        url = f"{self.endpoint.rstrip('/')}{canonical_path}" + (f"?{canonical_query}" if canonical_query else "")
        request = urllib.request.Request(url, method=method, headers={**headers, "Authorization": authorization})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            raise S3Error(f"{method} {path} -> HTTP {exc.code}: {exc.read()[:300]!r}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise S3Error(f"{method} {path} -> {exc}") from exc

    def list_buckets(self) -> list[str]:
        root = ET.fromstring(self._request("GET", "/", timeout_s=3))
        return [el.text or "" for el in root.iter(f"{_NS}Name")]

    def create_bucket(self, bucket: str) -> None:
        if bucket not in self.list_buckets():
            self._request("PUT", f"/{bucket}")

    def list_objects(self, bucket: str, prefix: str = "") -> list[tuple[str, int]]:
        """(key, size) of every object under prefix."""
        objects: list[tuple[str, int]] = []
        token = ""
        while True:
            query = {"list-type": "2", "prefix": prefix}
            if token:
                query["continuation-token"] = token
            root = ET.fromstring(self._request("GET", f"/{bucket}", query))
            for item in root.iter(f"{_NS}Contents"):
                objects.append((item.findtext(f"{_NS}Key") or "", int(item.findtext(f"{_NS}Size") or 0)))
            token = root.findtext(f"{_NS}NextContinuationToken") or ""
            if root.findtext(f"{_NS}IsTruncated") != "true" or not token:
                return objects
