"""A schema-serving stand-in for the hashicorp/google provider, for tests only.

It speaks Terraform's plugin protocol (tfplugin6 over gRPC, go-plugin's handshake and
automatic mTLS), using the generated tfplugin6 code of the PyPI package `tf`, and serves the
schema scripts/tf-google-standin/convert.py converted from hashicorp/google 6.50.0's cdktf
binding. With it `terraform validate` checks a configuration against the real provider's
schema (argument names, required arguments, types, block nesting) and `terraform plan` runs:

  - ValidateResourceConfig / ValidateDataResourceConfig refuse a value outside an enum the
    provider documents ("Possible values: [...]"), as the provider's own validation does;
  - PlanResourceChange plans a create: the configuration as given, computed attributes that
    are not set unknown ("known after apply");
  - ReadDataSource answers with the configuration and a placeholder for every computed
    attribute (strings "standin-<attribute>", numbers 0, false, empty collections);
  - ConfigureProvider accepts anything (no credentials are needed or read);
  - ApplyResourceChange, ImportResourceState and MoveResourceState refuse: nothing is ever
    created anywhere.

Usage (what the installed terraform-provider-google_v6.50.0 executes):
    provider.py --schema SCHEMA.json --name google|google-beta
"""

import argparse
import datetime
import base64
import json
import os
import sys
import threading

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"

if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
    print(
        "This is a Terraform provider plugin (a test stand-in for hashicorp/google): "
        "Terraform starts it; it is not meant to be run by hand.",
        file=sys.stderr,
    )
    sys.exit(1)

import grpc  # noqa: E402
import msgpack  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from tf.gen import grpc_controller_pb2 as controller_pb  # noqa: E402
from tf.gen import grpc_controller_pb2_grpc as controller_rpc  # noqa: E402
from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc  # noqa: E402
from tf.gen import tfplugin_pb2 as pb  # noqa: E402
from tf.gen import tfplugin_pb2_grpc as rpc  # noqa: E402


class _Unknown:
    """cty's unknown value (msgpack extension 0)."""

    def __repr__(self):
        return "<unknown>"


UNKNOWN = _Unknown()


def is_unknown(v):
    # extension 0 is a plain unknown; 12 is an unknown with refinements (Terraform >= 1.6)
    return v is UNKNOWN or isinstance(v, msgpack.ExtType)


def decode(dv):
    if dv.msgpack:
        return msgpack.unpackb(
            dv.msgpack,
            raw=False,
            strict_map_key=False,
            ext_hook=lambda code, data: UNKNOWN if code == 0 else msgpack.ExtType(code, data),
        )
    if dv.json:
        return json.loads(dv.json)
    return None


def encode(v):
    def default(o):
        if o is UNKNOWN:
            return msgpack.ExtType(0, b"\x00")
        raise TypeError(f"cannot encode {o!r}")

    return pb.DynamicValue(msgpack=msgpack.packb(v, default=default, use_bin_type=True))


def error(summary, detail="", path=None):
    d = pb.Diagnostic(severity=pb.Diagnostic.ERROR, summary=summary, detail=detail)
    if path:
        steps = []
        for step in path:
            if isinstance(step, int):
                steps.append(pb.AttributePath.Step(element_key_int=step))
            else:
                steps.append(pb.AttributePath.Step(attribute_name=step))
        d.attribute.CopyFrom(pb.AttributePath(steps=steps))
    return d


# --- the schema ----------------------------------------------------------------------------

NESTING = {
    "single": pb.Schema.NestedBlock.SINGLE,
    "list": pb.Schema.NestedBlock.LIST,
    "set": pb.Schema.NestedBlock.SET,
}


def block_pb(block):
    return pb.Schema.Block(
        attributes=[
            pb.Schema.Attribute(
                name=a["name"],
                type=json.dumps(a["type"]).encode(),
                description=a.get("description", ""),
                required=a["required"],
                optional=a["optional"],
                computed=a["computed"],
            )
            for a in block["attributes"]
        ],
        block_types=[
            pb.Schema.NestedBlock(
                type_name=b["type_name"],
                block=block_pb(b["block"]),
                nesting=NESTING[b["nesting"]],
                min_items=b["min_items"],
                max_items=b["max_items"],
            )
            for b in block["block_types"]
        ],
    )


# --- values --------------------------------------------------------------------------------


def plan_block(block, value):
    """A create's planned value: the proposal, with unset computed attributes unknown."""
    if value is None or is_unknown(value):
        return value
    out = dict(value)
    for a in block["attributes"]:
        if a["computed"] and out.get(a["name"]) is None:
            out[a["name"]] = UNKNOWN
    for b in block["block_types"]:
        v = out.get(b["type_name"])
        if v is None or is_unknown(v):
            continue
        if b["nesting"] == "single":
            out[b["type_name"]] = plan_block(b["block"], v)
        else:
            out[b["type_name"]] = [plan_block(b["block"], e) for e in v]
    return out


def placeholder(ty, name):
    if ty == "string":
        return f"standin-{name}"
    if ty == "number":
        return 0
    if ty == "bool":
        return False
    if ty == "dynamic":
        return None
    kind = ty[0]
    if kind in ("list", "set"):
        return []
    if kind == "map":
        return {}
    if kind == "object":
        return {k: placeholder(t, k) for k, t in ty[1].items()}
    raise ValueError(f"no placeholder for {ty}")


def fill_block(block, value):
    """A data source's state: the configuration, and a placeholder for what it would read."""
    if value is None:
        return None
    out = dict(value)
    for a in block["attributes"]:
        if a["computed"] and out.get(a["name"]) is None:
            out[a["name"]] = placeholder(a["type"], a["name"])
    for b in block["block_types"]:
        v = out.get(b["type_name"])
        if v is None:
            continue
        if b["nesting"] == "single":
            out[b["type_name"]] = fill_block(b["block"], v)
        else:
            out[b["type_name"]] = [fill_block(b["block"], e) for e in v]
    return out


def go_quote_list(values):
    """Go's %q of a []string: ["A" "B"]."""
    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def check_enums(block, value, path, diags):
    """The provider's enum validation (verify.ValidateEnum: the values, or empty)."""
    if value is None or is_unknown(value):
        return
    for a in block["attributes"]:
        allowed = a.get("enum")
        v = value.get(a["name"])
        if not allowed or not isinstance(v, str) or v == "" or v in allowed:
            continue
        diags.append(
            error(
                f"expected {a['name']} to be one of {go_quote_list(allowed + [''])}, got {v}",
                f"hashicorp/google 6.50.0 documents these values for {a['name']}: {', '.join(allowed)}.",
                path + [a["name"]],
            )
        )
    for b in block["block_types"]:
        v = value.get(b["type_name"])
        if v is None or is_unknown(v):
            continue
        if b["nesting"] == "single":
            check_enums(b["block"], v, path + [b["type_name"]], diags)
        else:
            for i, e in enumerate(v):
                # a set's elements have no index: point at the block
                sub = path + [b["type_name"]] + ([i] if b["nesting"] == "list" else [])
                check_enums(b["block"], e, sub, diags)


# --- the service ---------------------------------------------------------------------------


class StandIn(rpc.ProviderServicer):
    def __init__(self, schema, name):
        self.schema = schema
        self.name = name
        self.resources = schema["resources"]
        self.data_sources = schema["data_sources"]
        self.response = pb.GetProviderSchema.Response(
            provider=pb.Schema(block=block_pb(schema["provider"])),
            provider_meta=pb.Schema(block=pb.Schema.Block()),
            resource_schemas={k: pb.Schema(block=block_pb(v)) for k, v in self.resources.items()},
            data_source_schemas={k: pb.Schema(block=block_pb(v)) for k, v in self.data_sources.items()},
        )

    def _unknown_type(self, kind, type_name):
        return [
            error(
                f"The {self.name} stand-in serves no schema for {kind} {type_name}",
                "scripts/install-tf-standin.sh converts the types infra/gcp uses; run it again after "
                "adding one (a type hashicorp/google 6.50.0 does not have cannot be converted).",
            )
        ]

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=pb.ServerCapabilities(),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=k) for k in self.resources],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=k) for k in self.data_sources],
        )

    def GetProviderSchema(self, request, context):
        return self.response

    def ValidateProviderConfig(self, request, context):
        diags = []
        check_enums(self.schema["provider"], decode(request.config), [], diags)
        return pb.ValidateProviderConfig.Response(diagnostics=diags)

    def ConfigureProvider(self, request, context):
        return pb.ConfigureProvider.Response()

    def ValidateResourceConfig(self, request, context):
        block = self.resources.get(request.type_name)
        if block is None:
            return pb.ValidateResourceConfig.Response(diagnostics=self._unknown_type("resource", request.type_name))
        diags = []
        check_enums(block, decode(request.config), [], diags)
        return pb.ValidateResourceConfig.Response(diagnostics=diags)

    def ValidateDataResourceConfig(self, request, context):
        block = self.data_sources.get(request.type_name)
        if block is None:
            return pb.ValidateDataResourceConfig.Response(diagnostics=self._unknown_type("data source", request.type_name))
        diags = []
        check_enums(block, decode(request.config), [], diags)
        return pb.ValidateDataResourceConfig.Response(diagnostics=diags)

    def UpgradeResourceState(self, request, context):
        # Only a prior state needs upgrading, and nothing here ever made one: hand it back.
        state = json.loads(request.raw_state.json) if request.raw_state.json else None
        return pb.UpgradeResourceState.Response(upgraded_state=encode(state))

    def ReadResource(self, request, context):
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request, context):
        block = self.resources.get(request.type_name)
        if block is None:
            return pb.PlanResourceChange.Response(diagnostics=self._unknown_type("resource", request.type_name))
        prior = decode(request.prior_state)
        proposed = decode(request.proposed_new_state)
        if proposed is None:  # destroy
            return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
        if prior is not None:
            # An update needs the real provider's diff rules; nothing here has a prior state.
            return pb.PlanResourceChange.Response(
                diagnostics=[error(f"The {self.name} stand-in plans creates only", f"{request.type_name} has a prior state.")]
            )
        return pb.PlanResourceChange.Response(planned_state=encode(plan_block(block, proposed)))

    def ApplyResourceChange(self, request, context):
        return pb.ApplyResourceChange.Response(
            diagnostics=[
                error(
                    f"The {self.name} stand-in does not apply",
                    "This provider only serves hashicorp/google's schema for validate and plan in tests "
                    "(scripts/tf-google-standin). Nothing was created.",
                )
            ]
        )

    def ImportResourceState(self, request, context):
        return pb.ImportResourceState.Response(diagnostics=[error(f"The {self.name} stand-in does not import")])

    def MoveResourceState(self, request, context):
        return pb.MoveResourceState.Response(diagnostics=[error(f"The {self.name} stand-in does not move state")])

    def ReadDataSource(self, request, context):
        block = self.data_sources.get(request.type_name)
        if block is None:
            return pb.ReadDataSource.Response(diagnostics=self._unknown_type("data source", request.type_name))
        return pb.ReadDataSource.Response(state=encode(fill_block(block, decode(request.config))))

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


# --- go-plugin -----------------------------------------------------------------------------


def server_certificate():
    """A fresh self-signed certificate for localhost: go-plugin's client trusts exactly the
    certificate the handshake line carries."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def health_handler():
    """grpc.health.v1.Health/Check, which go-plugin's client pings: always SERVING."""
    serving = b"\x08\x01"  # HealthCheckResponse{status: SERVING}
    return grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {
            "Check": grpc.unary_unary_rpc_method_handler(
                lambda request, context: serving,
                request_deserializer=lambda b: b,
                response_serializer=lambda b: b,
            )
        },
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--schema", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    with open(args.schema) as f:
        schema = json.load(f)

    from concurrent import futures

    stopped = threading.Event()

    class Controller(controller_rpc.GRPCControllerServicer):
        def Shutdown(self, request, context):
            stopped.set()
            return controller_pb.Empty()

    class Stdio(stdio_rpc.GRPCStdioServicer):
        def StreamStdio(self, request, context):
            return iter([])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    rpc.add_ProviderServicer_to_server(StandIn(schema, args.name), server)
    controller_rpc.add_GRPCControllerServicer_to_server(Controller(), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    server.add_generic_rpc_handlers((health_handler(),))

    # go-plugin's automatic mTLS: Terraform announces it by handing its client certificate in
    # PLUGIN_CLIENT_CERT and then trusts only the server certificate printed in the handshake
    # line. The client certificate is not demanded back: go-plugin's is ECDSA P-521, which
    # gRPC's BoringSSL does not offer to verify, so Go's client would send none.
    cert_field = ""
    if os.environ.get("PLUGIN_CLIENT_CERT"):
        key_pem, cert_pem, cert_der = server_certificate()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
        port = server.add_secure_port("127.0.0.1:0", creds)
        cert_field = base64.b64encode(cert_der).decode().rstrip("=")
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"1|6|tcp|127.0.0.1:{port}|grpc|{cert_field}", flush=True)
    stopped.wait()
    server.stop(grace=0.2).wait()
    os._exit(0)


if __name__ == "__main__":
    main()
