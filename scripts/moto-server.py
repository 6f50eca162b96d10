"""moto server as scripts/with-moto starts it, plus one test-only endpoint.

moto stamps every snapshot with the time it was made, so a snapshot history (the daily,
weekly and monthly snapshots a retention check looks at) cannot be built through the AWS
API. `POST /_drbot/rds/snapshot` with JSON
`{"region", "instance", "id", "type": "automated"|"manual", "created": RFC 3339, "account"?}`
creates such a snapshot in moto's RDS backend and dates it. Everything else is moto's own
server, unchanged. Used by the tests and the sandbox only.
"""
import json
import sys
from datetime import datetime

import moto.server as server


def seed_snapshot(body):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.rds.models import rds_backends

    backend = rds_backends[body.get("account", DEFAULT_ACCOUNT_ID)][body["region"]]
    kind = body.get("type", "manual")
    if kind == "automated":
        snapshot = backend.create_auto_snapshot(body["instance"], body["id"])
    else:
        snapshot = backend.create_db_snapshot(body["instance"], body["id"], tags=body.get("tags"))
    created = datetime.fromisoformat(body["created"].replace("Z", "+00:00")).replace(tzinfo=None)
    snapshot.created = created
    snapshot.original_snapshot_create_time = created
    return {"id": snapshot.db_snapshot_identifier, "created": body["created"]}


class Seeding:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") == "/_drbot/rds/snapshot" and environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                answer, status = seed_snapshot(json.loads(environ["wsgi.input"].read(length))), "200 OK"
            except Exception as e:  # the test sees why
                answer, status = {"error": repr(e)}, "400 Bad Request"
            data = json.dumps(answer).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]
        return self.app(environ, start_response)


_run_simple = server.run_simple


def run_simple(host, port, app, **kwargs):
    return _run_simple(host, port, Seeding(app), **kwargs)


server.run_simple = run_simple

if __name__ == "__main__":
    server.main(sys.argv[1:])
