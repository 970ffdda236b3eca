"""The Open Inference Protocol over gRPC, on its own port: the same model, validation, metrics,
faults and health as the REST form (both call `ServerState`).

Inputs come as typed `contents` or as `raw_input_contents` (the binary layout of
`server.binary`, one entry per input); the answer uses the form the request used.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc
import numpy as np

from modelrollout import __version__
from modelrollout.server.app import Answer, ServerState, model_metadata
from modelrollout.server.binary import decode_binary, encode_binary
from modelrollout.server.datatypes import RequestError
from modelrollout.server.faults import InjectedFault
from modelrollout.server.grpc_messages import MESSAGES, SERVICE
from modelrollout.server.tensors import (
    InferRequest,
    Tensor,
    check_header,
    output_datatype,
    values_tensor,
)

log = logging.getLogger(__name__)

# The typed contents field that carries each datatype (FP16 has none: raw only).
CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# The REST status a RequestError carries, as a gRPC status code.
STATUS = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    404: grpc.StatusCode.NOT_FOUND,
    413: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
}


def decode_grpc(message: Any) -> InferRequest:
    """A ModelInferRequest as the request the REST form decodes to."""
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise RequestError(
            f"raw_input_contents has {len(raw)} entries for {len(message.inputs)} inputs"
        )
    if not message.inputs:
        raise RequestError("'inputs' must be a non-empty list of tensors")
    tensors = [_tensor(tensor, raw[i] if raw else None) for i, tensor in enumerate(message.inputs)]
    params = message.parameters
    content_type = params["content_type"].string_param if "content_type" in params else None
    return InferRequest(
        id=message.id or None,
        inputs=tensors,
        outputs=[o.name for o in message.outputs] or None,
        content_type=content_type,
        # The answer mirrors the request: raw contents for raw inputs.
        binary_data_output=bool(raw),
    )


def _tensor(tensor: Any, raw: bytes | None) -> Tensor:
    name = tensor.name
    datatype, shape = check_header(name, tensor.datatype, list(tensor.shape))
    if raw is not None:
        return Tensor(name, datatype, decode_binary(memoryview(raw), datatype, shape, name))
    field = CONTENTS.get(datatype)
    if field is None:
        raise RequestError(f"input {name!r}: {datatype} travels in raw_input_contents only")
    values = list(getattr(tensor.contents, field))
    if datatype == "BYTES":
        try:
            values = [v.decode() for v in values]
        except UnicodeDecodeError:
            raise RequestError(f"input {name!r}: BYTES elements must be UTF-8 text") from None
    return values_tensor(name, datatype, shape, values)


def encode_grpc(state: ServerState, answer: Answer) -> Any:
    response = MESSAGES["ModelInferResponse"](
        model_name=state.name, model_version=state.version, id=answer.request.id or ""
    )
    if answer.feedback_token is not None:
        response.parameters["feedback_token"].string_param = answer.feedback_token
    for name, array in answer.prediction.outputs:
        datatype = output_datatype(array)
        out = response.outputs.add(name=name, datatype=datatype, shape=list(array.shape))
        if answer.request.binary_data_output:
            response.raw_output_contents.append(encode_binary(datatype, array))
        elif datatype == "BYTES":
            out.contents.bytes_contents.extend(str(v).encode() for v in array.ravel().tolist())
        else:
            contents = getattr(out.contents, CONTENTS[datatype])
            contents.extend(np.asarray(array).ravel().tolist())
    return response


class InferenceService:
    """The protocol's six calls."""

    def __init__(self, state: ServerState) -> None:
        self.s = state

    async def server_live(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return MESSAGES["ServerLiveResponse"](live=True)

    async def server_ready(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return MESSAGES["ServerReadyResponse"](ready=self.s.ready)

    async def server_metadata(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        return MESSAGES["ServerMetadataResponse"](name="modelrollout-server", version=__version__)

    async def model_ready(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            self.s.check_model(request.name, request.version or None)
        except RequestError as exc:
            if exc.status != 503:
                await _abort(context, exc)
        return MESSAGES["ModelReadyResponse"](ready=self.s.ready)

    async def model_metadata(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        try:
            predictor = self.s.check_model(request.name, request.version or None)
        except RequestError as exc:
            await _abort(context, exc)
        meta = model_metadata(self.s, predictor)
        tensor = MESSAGES["ModelMetadataResponse"].TensorMetadata
        return MESSAGES["ModelMetadataResponse"](
            name=meta["name"],
            versions=meta["versions"],
            platform=meta["platform"],
            inputs=[tensor(**t) for t in meta["inputs"]],
            outputs=[tensor(**t) for t in meta["outputs"]],
        )

    async def model_infer(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        async def decode() -> InferRequest:
            return decode_grpc(request)

        try:
            answer = await self.s.infer(request.model_name, request.model_version or None, decode)
        except RequestError as exc:
            await _abort(context, exc)
        except InjectedFault as exc:
            await context.abort(grpc.StatusCode.INTERNAL, str(exc))
        except Exception as exc:  # a genuine model error: the only INTERNAL we answer
            log.exception("inference failed")
            await context.abort(grpc.StatusCode.INTERNAL, f"inference failed: {type(exc).__name__}")
        return encode_grpc(self.s, answer)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: RequestError) -> Any:
    await context.abort(STATUS.get(exc.status, grpc.StatusCode.INTERNAL), exc.message)


def handler(state: ServerState) -> grpc.GenericRpcHandler:
    service = InferenceService(state)
    calls = {
        "ServerLive": service.server_live,
        "ServerReady": service.server_ready,
        "ServerMetadata": service.server_metadata,
        "ModelReady": service.model_ready,
        "ModelMetadata": service.model_metadata,
        "ModelInfer": service.model_infer,
    }
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            name: grpc.unary_unary_rpc_method_handler(
                call,
                request_deserializer=MESSAGES[f"{name}Request"].FromString,
                response_serializer=MESSAGES[f"{name}Response"].SerializeToString,
            )
            for name, call in calls.items()
        },
    )


async def start(state: ServerState, host: str, port: int, reuse_port: bool) -> grpc.aio.Server:
    """Listen for the protocol's gRPC form; messages over the body limit are refused by gRPC
    itself (RESOURCE_EXHAUSTED)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", state.max_body_bytes),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    server.add_generic_rpc_handlers((handler(state),))
    server.add_insecure_port(f"{host}:{port}")
    await server.start()
    return server
