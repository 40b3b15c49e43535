#!/usr/bin/env python3
"""Writes protocol/schema/requests.json: the shape of every Kafka request message, taken from
the message definitions that Apache Kafka ships inside its kafka-clients jar
(common/message/*Request.json), reduced to what a decoder needs to find its way through a
frame: field names, types, the versions each field is present, nullable and tagged at, and
each message's flexible versions. Descriptions, defaults and comments are left out; structs
named in commonStructs are written inline where they are used.

Usage: scripts/extract-request-schemas.py [--controller-apis] [KAFKA_CLIENTS_JAR]
Without a jar it downloads kafka-clients VERSION (below) from Maven Central. The version must
be the Kafka release the kafka-protocol crate was generated from, so that both read a frame the
same way (protocol/src/schema.rs checks the served ranges against it).

With --controller-apis it writes protocol/schema/controller-requests.json instead: the
ZooKeeper-mode controller-to-broker requests (LeaderAndIsr, StopReplica, UpdateMetadata,
ControlledShutdown; Kafka 4 removed them) from kafka-clients CONTROLLER_APIS_VERSION, the
release the older kafka-protocol that gregor decodes them with was generated from.
"""
import io
import json
import re
import sys
import urllib.request
import zipfile
from pathlib import Path

VERSION = "4.1.1"
URL = (f"https://repo1.maven.org/maven2/org/apache/kafka/kafka-clients/{VERSION}/"
       f"kafka-clients-{VERSION}.jar")
OUT = Path(__file__).resolve().parent.parent / "protocol" / "schema" / "requests.json"
CONTROLLER_APIS_VERSION = "3.8.0"
CONTROLLER_APIS = {4, 5, 6, 7}
CONTROLLER_OUT = OUT.parent / "controller-requests.json"
MAX = 32767


def versions(spec):
    """'3+' -> [3, MAX], '2-5' -> [2, 5], '4' -> [4, 4], 'none' or None -> None."""
    if spec is None or spec == "none":
        return None
    if spec.endswith("+"):
        return [int(spec[:-1]), MAX]
    if "-" in spec:
        lo, hi = spec.split("-")
        return [int(lo), int(hi)]
    return [int(spec), int(spec)]


PRIMITIVES = {"bool", "int8", "int16", "uint16", "int32", "int64", "float64", "uuid",
              "string", "bytes", "records"}


def field(f, common):
    typ = f["type"]
    out = {"name": f["name"]}
    is_array = typ.startswith("[]")
    elem = typ[2:] if is_array else typ
    if elem in PRIMITIVES:
        shape = elem
    else:
        # A struct: fields given inline, or a commonStructs entry of that name.
        inner = f.get("fields")
        if inner is None:
            inner = common[elem]
        shape = {"struct": [field(g, common) for g in inner]}
    out["type"] = {"array": shape} if is_array else shape
    out["versions"] = versions(f.get("versions"))
    nullable = versions(f.get("nullableVersions"))
    if nullable:
        out["nullable"] = nullable
    if "tag" in f:
        out["tag"] = f["tag"]
        out["tagged"] = versions(f.get("taggedVersions"))
    return out


def strip_comments(text):
    return "\n".join(line for line in text.splitlines() if not re.match(r"\s*//", line))


def main():
    args = sys.argv[1:]
    controller_apis = "--controller-apis" in args
    args = [a for a in args if a != "--controller-apis"]
    version, out = (CONTROLLER_APIS_VERSION, CONTROLLER_OUT) if controller_apis else (VERSION, OUT)
    if args:
        data = Path(args[0]).read_bytes()
    else:
        url = URL.replace(VERSION, version)
        data = urllib.request.urlopen(url, timeout=120).read()
    messages = []
    with zipfile.ZipFile(io.BytesIO(data)) as jar:
        for name in sorted(jar.namelist()):
            if not re.fullmatch(r"common/message/\w+Request\.json", name):
                continue
            spec = json.loads(strip_comments(jar.read(name).decode()))
            if spec.get("type") != "request":
                continue
            if controller_apis != (spec["apiKey"] in CONTROLLER_APIS):
                continue
            common = {s["name"]: s["fields"] for s in spec.get("commonStructs", [])}
            messages.append({
                "name": spec["name"],
                "api_key": spec["apiKey"],
                "valid": versions(spec["validVersions"]),
                "flexible": versions(spec.get("flexibleVersions")),
                "fields": [field(f, common) for f in spec.get("fields", [])],
            })
    messages.sort(key=lambda m: m["api_key"])
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        f.write(f'{{"source": "kafka-clients {version}, common/message/*Request.json",\n')
        f.write(' "messages": [\n')
        f.write(",\n".join(json.dumps(m, separators=(",", ":")) for m in messages))
        f.write("\n]}\n")
    print(f"{out}: {len(messages)} request messages")


if __name__ == "__main__":
    main()
