"""Signs one S3 request with botocore (the reference SigV4 implementation) for ftbackup's signer test.

Input (stdin, JSON): method, url, headers (dict), body (text), amzDate (YYYYMMDDTHHMMSSZ), accessKey,
secretKey, region. Output: the Authorization header botocore computes.
"""
import datetime
import hashlib
import json
import sys
from unittest import mock

import botocore.auth as auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

spec = json.load(sys.stdin)
fixed = datetime.datetime.strptime(spec["amzDate"], "%Y%m%dT%H%M%SZ")


class FixedClock(datetime.datetime):
    @classmethod
    def utcnow(cls):
        return fixed

    @classmethod
    def now(cls, tz=None):
        return fixed.replace(tzinfo=tz) if tz else fixed


body = spec["body"].encode()
request = AWSRequest(method=spec["method"], url=spec["url"], data=body, headers=dict(spec["headers"]))
request.headers["X-Amz-Content-SHA256"] = hashlib.sha256(body).hexdigest()
with mock.patch.object(auth.datetime, "datetime", FixedClock):
    auth.S3SigV4Auth(Credentials(spec["accessKey"], spec["secretKey"]), "s3", spec["region"]).add_auth(request)
print(request.headers["Authorization"])
