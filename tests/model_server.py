"""Loopback stand-ins for tensorflow_model_server's REST and gRPC APIs, for the client tests.

The real server binary is not installable here (no PyPI or Debian package), so these stand-ins speak its wire
formats over real sockets on 127.0.0.1: REST's columnar predict JSON (the output name left out for a single-output
signature, strings as JSON text, {"b64": ...} for binary inputs) and metadata JSON, and the tensorflow-serving-api
protos. They answer from the SavedModels' own `serving_default` signatures and stop when the context ends.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import tensorflow as tf
from google.protobuf import json_format
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc


@contextlib.contextmanager
def model_server(paths: dict[str, Path]) -> Iterator[tuple[dict, int, int]]:
    """Serve each exported version folder under its model name: yields `(signatures, rest_port, grpc_port)`."""
    loaded = {name: tf.saved_model.load(str(path)) for name, path in paths.items()}
    signatures = {name: model.signatures["serving_default"] for name, model in loaded.items()}

    def from_json(value):
        if isinstance(value, list):
            return [from_json(item) for item in value]
        return base64.b64decode(value["b64"]) if isinstance(value, dict) else value

    class Rest(http.server.BaseHTTPRequestHandler):
        def reply(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(body, default=bytes.decode).encode())  # strings of any rank, as UTF-8

        def do_GET(self):
            name = self.path.removeprefix("/v1/models/").removesuffix("/metadata")
            if name not in paths:
                return self.reply(404, {"error": f"Servable not found for request: Latest({name})"})
            signature_map = get_model_metadata_pb2.SignatureDefMap()
            for key, value in loader_impl.parse_saved_model(str(paths[name])).meta_graphs[0].signature_def.items():
                signature_map.signature_def[key].CopyFrom(value)
            self.reply(
                200,
                {
                    "model_spec": {"name": name, "version": "1"},
                    "metadata": {
                        "signature_def": json_format.MessageToDict(signature_map, preserving_proto_field_name=True)
                    },
                },
            )

        def do_POST(self):
            name = self.path.removeprefix("/v1/models/").removesuffix(":predict")
            if name not in signatures:
                return self.reply(404, {"error": f"Servable not found for request: Latest({name})"})
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            outputs = signatures[name](**{key: tf.constant(from_json(value)) for key, value in body["inputs"].items()})
            columns = {key: value.numpy().tolist() for key, value in outputs.items()}
            self.reply(200, {"outputs": next(iter(columns.values())) if len(columns) == 1 else columns})

        def log_message(self, *args):
            pass

    class Grpc(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            if request.model_spec.name not in signatures:
                context.abort(
                    grpc.StatusCode.NOT_FOUND, f"Servable not found for request: Latest({request.model_spec.name})"
                )
            assert request.model_spec.signature_name == "serving_default"
            serve = signatures[request.model_spec.name]
            outputs = serve(**{key: tf.make_ndarray(value) for key, value in request.inputs.items()})
            response = predict_pb2.PredictResponse()
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
            return response

    rest = socketserver.TCPServer(("127.0.0.1", 0), Rest)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Grpc(), server)
    grpc_port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield signatures, rest.server_address[1], grpc_port
    finally:
        rest.shutdown()
        rest.server_close()
        server.stop(None)
