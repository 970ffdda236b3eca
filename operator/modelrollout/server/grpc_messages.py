"""The messages of the Open Inference Protocol's gRPC form (package `inference`, service
`GRPCInferenceService`), described in code instead of compiled from a .proto file.

Field names and numbers follow the protocol's specification, so any client of the protocol
(KServe's, Triton's, MLServer's) speaks to us. Describing them here keeps protoc and generated
code out of the build: protobuf's runtime makes the message classes from this description.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"

_F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    "bool": _F.TYPE_BOOL,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "float": _F.TYPE_FLOAT,
    "double": _F.TYPE_DOUBLE,
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
}

# A field: (name, number, type, "repeated" | "" | "oneof"); a type that is not a scalar is a
# message of this package, written relative to it ("ModelInferRequest.InferInputTensor").
Field = tuple[str, int, str, str]


def _message(
    name: str, fields: list[Field], nested: list[Any] | None = None, scope: str = ""
) -> Any:
    """A message; `scope` is the message it is nested in, if any."""
    message = descriptor_pb2.DescriptorProto(name=name)
    full_name = f"{scope}.{name}" if scope else name
    nested = list(nested or [])
    for field_name, number, kind, label in fields:
        field = message.field.add(name=field_name, number=number, json_name=field_name)
        field.label = _F.LABEL_REPEATED if label == "repeated" else _F.LABEL_OPTIONAL
        if kind.startswith("map:"):
            entry = f"{''.join(p.title() for p in field_name.split('_'))}Entry"
            value = kind.removeprefix("map:")
            nested.append(_map_entry(entry, value))
            field.label = _F.LABEL_REPEATED
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{PACKAGE}.{full_name}.{entry}"
        elif kind in _SCALARS:
            field.type = _SCALARS[kind]
        else:
            field.type = _F.TYPE_MESSAGE
            field.type_name = f".{PACKAGE}.{kind}"
        if label == "oneof":
            field.oneof_index = 0
    if any(label == "oneof" for *_, label in fields):
        message.oneof_decl.add(name="parameter_choice")
    message.nested_type.extend(nested)
    return message


def _map_entry(name: str, value: str) -> Any:
    entry = _message(name, [("key", 1, "string", ""), ("value", 2, value, "")])
    entry.options.map_entry = True
    return entry


def _tensor(name: str, scope: str) -> Any:
    fields: list[Field] = [
        ("name", 1, "string", ""),
        ("datatype", 2, "string", ""),
        ("shape", 3, "int64", "repeated"),
        ("parameters", 4, "map:InferParameter", ""),
        ("contents", 5, "InferTensorContents", ""),
    ]
    return _message(name, fields, scope=scope)


def _file() -> Any:
    name_version: list[Field] = [("name", 1, "string", ""), ("version", 2, "string", "")]
    tensor_metadata = _message(
        "TensorMetadata",
        [
            ("name", 1, "string", ""),
            ("datatype", 2, "string", ""),
            ("shape", 3, "int64", "repeated"),
        ],
    )
    messages = [
        _message("ServerLiveRequest", []),
        _message("ServerLiveResponse", [("live", 1, "bool", "")]),
        _message("ServerReadyRequest", []),
        _message("ServerReadyResponse", [("ready", 1, "bool", "")]),
        _message("ModelReadyRequest", name_version),
        _message("ModelReadyResponse", [("ready", 1, "bool", "")]),
        _message("ServerMetadataRequest", []),
        _message(
            "ServerMetadataResponse",
            [
                ("name", 1, "string", ""),
                ("version", 2, "string", ""),
                ("extensions", 3, "string", "repeated"),
            ],
        ),
        _message("ModelMetadataRequest", name_version),
        _message(
            "ModelMetadataResponse",
            [
                ("name", 1, "string", ""),
                ("versions", 2, "string", "repeated"),
                ("platform", 3, "string", ""),
                ("inputs", 4, "ModelMetadataResponse.TensorMetadata", "repeated"),
                ("outputs", 5, "ModelMetadataResponse.TensorMetadata", "repeated"),
            ],
            [tensor_metadata],
        ),
        _message(
            "ModelInferRequest",
            [
                ("model_name", 1, "string", ""),
                ("model_version", 2, "string", ""),
                ("id", 3, "string", ""),
                ("parameters", 4, "map:InferParameter", ""),
                ("inputs", 5, "ModelInferRequest.InferInputTensor", "repeated"),
                ("outputs", 6, "ModelInferRequest.InferRequestedOutputTensor", "repeated"),
                ("raw_input_contents", 7, "bytes", "repeated"),
            ],
            [_tensor("InferInputTensor", "ModelInferRequest"), _requested_output()],
        ),
        _message(
            "ModelInferResponse",
            [
                ("model_name", 1, "string", ""),
                ("model_version", 2, "string", ""),
                ("id", 3, "string", ""),
                ("parameters", 4, "map:InferParameter", ""),
                ("outputs", 5, "ModelInferResponse.InferOutputTensor", "repeated"),
                ("raw_output_contents", 6, "bytes", "repeated"),
            ],
            [_tensor("InferOutputTensor", "ModelInferResponse")],
        ),
        _message(
            "InferParameter",
            [
                ("bool_param", 1, "bool", "oneof"),
                ("int64_param", 2, "int64", "oneof"),
                ("string_param", 3, "string", "oneof"),
                ("double_param", 4, "double", "oneof"),
                ("uint64_param", 5, "uint64", "oneof"),
            ],
        ),
        _message(
            "InferTensorContents",
            [
                ("bool_contents", 1, "bool", "repeated"),
                ("int_contents", 2, "int32", "repeated"),
                ("int64_contents", 3, "int64", "repeated"),
                ("uint_contents", 4, "uint32", "repeated"),
                ("uint64_contents", 5, "uint64", "repeated"),
                ("fp32_contents", 6, "float", "repeated"),
                ("fp64_contents", 7, "double", "repeated"),
                ("bytes_contents", 8, "bytes", "repeated"),
            ],
        ),
    ]
    proto = descriptor_pb2.FileDescriptorProto(
        name="modelrollout/open_inference_protocol.proto", package=PACKAGE, syntax="proto3"
    )
    proto.message_type.extend(messages)
    return proto


def _requested_output() -> Any:
    return _message(
        "InferRequestedOutputTensor",
        [("name", 1, "string", ""), ("parameters", 2, "map:InferParameter", "")],
        scope="ModelInferRequest",
    )


def _classes() -> dict[str, Any]:
    # A pool of our own: a client library in the same process may register its own copy of
    # the same package in the default pool.
    pool = descriptor_pool.DescriptorPool()
    proto = _file()
    pool.AddSerializedFile(proto.SerializeToString())
    return {
        m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{m.name}"))
        for m in proto.message_type
    }


MESSAGES = _classes()
