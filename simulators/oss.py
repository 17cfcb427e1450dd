"""Simulator of Aliyun OSS (one private bucket), speaking the object API that ``oss2`` uses.

Written from OSS's published protocol, not from ``storage/oss.py``: path-style addressing
(``/{bucket}/{key}``, what oss2 uses for an IP endpoint), V1 signatures checked exactly —
``Authorization: OSS <AccessKeyId>:<base64 HMAC-SHA1>`` over VERB, Content-MD5, Content-Type,
Date, the canonicalised ``x-oss-`` headers and the canonicalised resource with its
sub-resources — and signed URLs (``OSSAccessKeyId``, ``Expires``, ``Signature``), which stop
working at ``Expires``. Anything unsigned is refused (the bucket is private), with OSS's XML
errors. Operations: PutObject, GetObject, HeadObject, DeleteObject, InitiateMultipartUpload,
UploadPart, ListParts, CompleteMultipartUpload, AbortMultipartUpload; Content-MD5 is checked
when sent and every write answers OSS's ``x-oss-hash-crc64ecma`` so oss2 checks it too.
Objects live in memory. ``python -m simulators.oss`` serves it on the port of
``CC_OSS_ENDPOINT``; ``GET /_sim/calls`` lists the stored objects.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from fastapi import APIRouter, FastAPI, Request, Response
from oss2.utils import Crc64

from channels.registry import Settings, get_settings
from simulators.common import SimState
from simulators.control import serve, simulator_app

MAX_SKEW_S = 15 * 60  # OSS answers RequestTimeTooSkewed beyond this
# Query parameters that are part of the signed resource (OSS's sub-resource list, trimmed to
# what this simulator can be asked about).
SUBRESOURCES = frozenset(
    {
        "acl",
        "uploads",
        "uploadId",
        "partNumber",
        "response-content-type",
        "response-content-language",
        "response-expires",
        "response-cache-control",
        "response-content-disposition",
        "response-content-encoding",
        "security-token",
        "objectMeta",
        "x-oss-process",
    }
)
XML = "application/xml"


def crc64(data: bytes) -> str:
    digest = Crc64()
    digest.update(data)
    return str(digest.crc)


def etag_of(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest().upper() + '"'


@dataclass
class StoredObject:
    data: bytes
    content_type: str
    etag: str
    modified: float = field(default_factory=time.time)


@dataclass
class Upload:
    key: str
    content_type: str
    parts: dict[int, bytes] = field(default_factory=dict)


class OssError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def string_to_sign(request: Request, bucket: str, key: str, date: str) -> str:
    headers = request.headers
    oss_headers = sorted(
        (name.lower(), value)
        for name, value in headers.items()
        if name.lower().startswith("x-oss-")
    )
    canon_headers = "".join(f"{name}:{value}\n" for name, value in oss_headers)
    params = parse_qsl(request.url.query, keep_blank_values=True)
    sub = sorted((k, v) for k, v in params if k in SUBRESOURCES)
    query = "&".join(f"{k}={v}" if v else k for k, v in sub)
    resource = f"/{bucket}/{key}" + (f"?{query}" if query else "")
    return "\n".join(
        [
            request.method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            date,
            canon_headers + resource,
        ]
    )


class OssSimulator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sim = SimState()
        self.objects: dict[str, StoredObject] = {}
        self.uploads: dict[str, Upload] = {}

    # -- auth ------------------------------------------------------------------------
    def _sign(self, text: str) -> str:
        secret = self.settings.oss_access_key_secret.encode()
        return base64.b64encode(hmac.new(secret, text.encode(), hashlib.sha1).digest()).decode()

    def authenticate(self, request: Request, bucket: str, key: str) -> None:
        query = request.query_params
        header = request.headers.get("authorization", "")
        if header.startswith("OSS "):
            key_id, _, signature = header[4:].partition(":")
            date = request.headers.get("x-oss-date") or request.headers.get("date", "")
            self._check_date(date)
        elif "Signature" in query:
            key_id, signature = query.get("OSSAccessKeyId", ""), query["Signature"]
            date = query.get("Expires", "")  # a signed URL signs its expiry in Date's place
            if not date.isdigit() or int(date) < time.time():
                raise OssError(403, "AccessDenied", "Request has expired.")
        else:
            raise OssError(403, "AccessDenied", "You have no right to access this object.")
        if key_id != self.settings.oss_access_key_id:
            raise OssError(403, "InvalidAccessKeyId", "The OSS Access Key Id does not exist.")
        expected = self._sign(string_to_sign(request, bucket, key, date))
        if not hmac.compare_digest(signature, expected):
            raise OssError(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )

    @staticmethod
    def _check_date(date: str) -> None:
        try:
            sent = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError) as exc:
            raise OssError(403, "AccessDenied", "Date header is missing or invalid.") from exc
        if abs(time.time() - sent) > MAX_SKEW_S:
            raise OssError(403, "RequestTimeTooSkewed", "The difference is too large.")

    # -- routing -------------------------------------------------------------------------
    async def handle(self, bucket: str, key: str, request: Request) -> Response:
        try:
            if bucket != self.settings.oss_bucket:
                raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.")
            self.authenticate(request, bucket, key)
            return await self.dispatch(key, request)
        except OssError as exc:
            return error(exc, request)

    async def dispatch(self, key: str, request: Request) -> Response:
        query, method = request.query_params, request.method
        upload_id = query.get("uploadId")
        if method == "POST" and "uploads" in query:
            return self.initiate(key, request)
        if upload_id is not None:
            upload = self.uploads.get(upload_id)
            if upload is None or upload.key != key:
                raise OssError(404, "NoSuchUpload", "The specified upload does not exist.")
            if method == "PUT":
                return self.upload_part(upload, query.get("partNumber", ""), await body(request))
            if method == "POST":
                return self.complete(upload_id, upload, await request.body())
            if method == "GET":
                return self.list_parts(upload_id, upload)
            if method == "DELETE":
                del self.uploads[upload_id]
                return Response(status_code=204)
        if method == "PUT":
            return self.put(key, request.headers.get("content-type", ""), await body(request))
        if method in ("GET", "HEAD"):
            return self.get(key, request.method == "HEAD")
        if method == "DELETE":
            self.objects.pop(key, None)
            return Response(status_code=204)
        raise OssError(405, "MethodNotAllowed", "The specified method is not allowed.")

    # -- operations ----------------------------------------------------------------------
    def put(self, key: str, content_type: str, data: bytes) -> Response:
        stored = StoredObject(data, content_type or "application/octet-stream", etag_of(data))
        self.objects[key] = stored
        return Response(headers={"ETag": stored.etag, "x-oss-hash-crc64ecma": crc64(data)})

    def get(self, key: str, head: bool) -> Response:
        stored = self.objects.get(key)
        if stored is None:
            raise OssError(404, "NoSuchKey", "The specified key does not exist.")
        headers = {
            "ETag": stored.etag,
            "x-oss-hash-crc64ecma": crc64(stored.data),
            "Content-Length": str(len(stored.data)),
            "Last-Modified": time.strftime(
                "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(stored.modified)
            ),
        }
        content = b"" if head else stored.data
        return Response(content, media_type=stored.content_type, headers=headers)

    def initiate(self, key: str, request: Request) -> Response:
        upload_id = uuid.uuid4().hex.upper()
        content_type = request.headers.get("content-type", "application/octet-stream")
        self.uploads[upload_id] = Upload(key, content_type)
        return xml(
            "InitiateMultipartUploadResult",
            Bucket=self.settings.oss_bucket,
            Key=key,
            UploadId=upload_id,
        )

    def upload_part(self, upload: Upload, number: str, data: bytes) -> Response:
        if not number.isdigit() or not 1 <= int(number) <= 10000:
            raise OssError(400, "InvalidArgument", "Part number must be between 1 and 10000.")
        upload.parts[int(number)] = data
        return Response(headers={"ETag": etag_of(data), "x-oss-hash-crc64ecma": crc64(data)})

    def complete(self, upload_id: str, upload: Upload, raw: bytes) -> Response:
        try:
            listed = [
                (int(part.findtext("PartNumber", "")), part.findtext("ETag", "").strip('"'))
                for part in ElementTree.fromstring(raw).iter("Part")
            ]
        except (ElementTree.ParseError, ValueError) as exc:
            raise OssError(400, "MalformedXML", "The XML was not well-formed.") from exc
        numbers = [number for number, _ in listed]
        if not listed or numbers != sorted(set(numbers)):
            raise OssError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        for number, etag in listed:
            data = upload.parts.get(number)
            if data is None or etag_of(data).strip('"') != etag.upper():
                raise OssError(400, "InvalidPart", f"Part {number} was not uploaded as listed.")
        data = b"".join(upload.parts[number] for number in numbers)
        del self.uploads[upload_id]
        response = self.put(upload.key, upload.content_type, data)
        body_xml = xml(
            "CompleteMultipartUploadResult",
            Bucket=self.settings.oss_bucket,
            Key=upload.key,
            ETag=response.headers["ETag"],
        )
        for name in ("ETag", "x-oss-hash-crc64ecma"):
            body_xml.headers[name] = response.headers[name]
        return body_xml

    def list_parts(self, upload_id: str, upload: Upload) -> Response:
        root = ElementTree.Element("ListPartsResult")
        for tag, text in (
            ("Bucket", self.settings.oss_bucket),
            ("Key", upload.key),
            ("UploadId", upload_id),
            ("IsTruncated", "false"),
        ):
            ElementTree.SubElement(root, tag).text = text
        for number, data in sorted(upload.parts.items()):
            part = ElementTree.SubElement(root, "Part")
            fields = {
                "PartNumber": str(number),
                "ETag": etag_of(data),
                "Size": str(len(data)),
                "HashCrc64ecma": crc64(data),
            }
            for tag, text in fields.items():
                ElementTree.SubElement(part, tag).text = text
        return Response(ElementTree.tostring(root, xml_declaration=True), media_type=XML)

    def calls_view(self) -> list[dict[str, Any]]:
        """The stored objects (the control API's "calls" list, for tests and demos)."""
        return [
            {"key": k, "size": len(o.data), "content_type": o.content_type}
            for k, o in self.objects.items()
        ]

    def router(self) -> APIRouter:
        router = APIRouter()
        methods = ["GET", "HEAD", "PUT", "POST", "DELETE"]
        router.add_api_route("/{bucket}/{key:path}", self.handle, methods=methods)
        return router


async def body(request: Request) -> bytes:
    """The request body, checked against Content-MD5 when the client sent one."""
    data = await request.body()
    sent = request.headers.get("content-md5")
    if sent is not None and sent != base64.b64encode(hashlib.md5(data).digest()).decode():
        raise OssError(400, "InvalidDigest", "The Content-MD5 you specified is not valid.")
    return data


def xml(root_tag: str, **fields: str) -> Response:
    root = ElementTree.Element(root_tag)
    for tag, text in fields.items():
        ElementTree.SubElement(root, tag).text = text
    return Response(ElementTree.tostring(root, xml_declaration=True), media_type=XML)


def error(exc: OssError, request: Request) -> Response:
    request_id = uuid.uuid4().hex.upper()[:24]
    root = ElementTree.Element("Error")
    for tag, text in (
        ("Code", exc.code),
        ("Message", exc.message),
        ("RequestId", request_id),
        ("HostId", request.url.netloc),
    ):
        ElementTree.SubElement(root, tag).text = text
    content = b"" if request.method == "HEAD" else ElementTree.tostring(root, xml_declaration=True)
    headers = {"x-oss-request-id": request_id}
    return Response(content, status_code=exc.status, media_type=XML, headers=headers)


def create_app(settings: Settings | None = None) -> FastAPI:
    return simulator_app("OSS simulator", OssSimulator(settings or get_settings()))


if __name__ == "__main__":
    serve(create_app, lambda settings: settings.oss_endpoint, __doc__ or "")
