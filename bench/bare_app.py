"""The baseline for benchmark 2: a bare Flask endpoint answering a POST with a fixed JSON body.

It reads the request body (as any endpoint must) and returns BARE_RESPONSE_BYTES worth
of JSON, the size of the service's real answer, with no other work.
"""
import json
import os

from flask import Flask, Response, request

app = Flask(__name__)
_SIZE = int(os.environ.get("BARE_RESPONSE_BYTES", "2000"))
_BODY = json.dumps({"cards": [{"summary": "x", "detail": "y" * max(0, _SIZE - 40)}]})


@app.post("/cds-services/<service_id>")
def bare(service_id):
    request.get_data()
    return Response(_BODY, mimetype="application/json")


@app.get("/health")
def health():
    return {"status": "ok"}
