#!/usr/bin/python3
"""Tandem scapy bridge: Debian python3-scapy spoken to over JSON lines.

Request  (one line on stdin):  {"id": 1, "method": "decode", "params": {...}}
Response (one line on stdout): {"id": 1, "result": {...}}
                           or  {"id": 1, "error": {"type": "ValueError", "message": "..."}}
The first line printed is {"ready": true, "scapy": "<version>"}. stdout carries only
protocol lines (scapy's own prints go to stderr). Methods: see METHODS at the end and
lib/scapy-bridge/bridge.ts.
"""
import base64
import json
import sys
import threading
import time
import traceback

PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr  # anything scapy prints must not corrupt the protocol stream

import logging  # noqa: E402

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

import scapy  # noqa: E402
import scapy.all as S  # noqa: E402
from scapy.packet import Packet  # noqa: E402

S.conf.verb = 0
WRITE_LOCK = threading.Lock()


def emit(obj):
    line = json.dumps(obj, separators=(",", ":"))
    with WRITE_LOCK:
        PROTOCOL_OUT.write(line + "\n")
        PROTOCOL_OUT.flush()


def layer_class(name):
    cls = getattr(S, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Packet)):
        raise ValueError("unknown scapy layer %r" % name)
    return cls


def jsonable(value):
    """Converts a scapy field value (raw, internal form) to JSON."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Packet):
        return describe(value)
    try:
        return int(value)  # FlagValue, EnumField values and the like
    except (TypeError, ValueError):
        return str(value)


def from_json(value):
    if isinstance(value, dict) and set(value) == {"hex"}:
        return bytes.fromhex(value["hex"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    return value


def describe(pkt):
    """Layers of a packet, outermost first, with scapy's decoded field values."""
    layers = []
    layer = pkt
    while layer is not None and not isinstance(layer, S.NoPayload):
        fields = {}
        for f in layer.fields_desc:
            fields[f.name] = jsonable(layer.getfieldval(f.name))
        layers.append({"layer": layer.__class__.__name__, "fields": fields})
        layer = layer.payload if layer.payload else None
    return layers


def checksum_checks(raw, first):
    """For each layer with a checksum field: does scapy, recomputing it, get the same value?"""
    cls = layer_class(first)
    original = cls(raw)
    checks = []
    depth = 0
    layer = original
    while layer is not None and not isinstance(layer, S.NoPayload):
        for name in ("chksum", "cksum", "sum"):
            if name in layer.fields:
                copy = cls(raw)
                target = copy.getlayer(depth)
                delattr(target, name)
                rebuilt = cls(S.raw(copy))
                recomputed = rebuilt.getlayer(depth).getfieldval(name)
                carried = layer.getfieldval(name)
                checks.append({
                    "layer": layer.__class__.__name__,
                    "field": name,
                    "carried": carried,
                    "computed": recomputed,
                    "valid": carried == recomputed,
                })
        depth += 1
        layer = layer.payload if layer.payload else None
    return checks


def build_packet(layers):
    pkt = None
    for spec in layers:
        fields = {k: from_json(v) for k, v in (spec.get("fields") or {}).items()}
        if spec["layer"] == "Raw" and "load" in fields and isinstance(fields["load"], str):
            fields["load"] = bytes.fromhex(fields["load"])
        part = layer_class(spec["layer"])(**fields)
        pkt = part if pkt is None else pkt / part
    if pkt is None:
        raise ValueError("build needs at least one layer")
    return pkt


def m_build(p):
    pkt = build_packet(p["layers"])
    raw = S.raw(pkt)
    first = p["layers"][0]["layer"]
    return {"hex": raw.hex(), "layers": describe(layer_class(first)(raw))}


def m_decode(p):
    raw = bytes.fromhex(p["hex"])
    first = p.get("first", "Ether")
    out = {"layers": describe(layer_class(first)(raw))}
    if p.get("checksums", True):
        out["checksums"] = checksum_checks(raw, first)
    return out


SOCKETS = {}


def l2socket(iface):
    sock = SOCKETS.get(("l2", iface))
    if sock is None:
        sock = S.conf.L2socket(iface=iface)
        SOCKETS[("l2", iface)] = sock
    return sock


def m_send(p):
    """Sends a frame (layer 2, default) or an IP packet (layer 3) `count` times."""
    raw = bytes.fromhex(p["hex"]) if "hex" in p else S.raw(build_packet(p["layers"]))
    count = int(p.get("count", 1))
    interval = float(p.get("intervalMs", 0)) / 1000.0
    if p.get("layer", 2) == 2:
        sock = l2socket(p["iface"])
        for i in range(count):
            sock.send(raw)
            if interval and i + 1 < count:
                time.sleep(interval)
    else:
        pkt = S.IP(raw)
        S.send(pkt, count=count, inter=interval, iface=p.get("iface"), verbose=False)
    return {"sent": count, "bytes": len(raw)}


SNIFFERS = {}
NEXT_SNIFFER = [1]


def capture_record(pkt):
    # pkt.original holds the bytes as captured (raw(pkt) would re-serialize and may drop padding).
    data = pkt.original if isinstance(getattr(pkt, "original", None), bytes) else S.raw(pkt)
    return {"hex": data.hex(), "time": float(pkt.time), "layers": describe(pkt)}


def m_sniff_start(p):
    kwargs = {"iface": p["iface"], "store": True}
    if p.get("filter"):
        kwargs["filter"] = p["filter"]
    if p.get("count"):
        kwargs["count"] = int(p["count"])
    if p.get("timeoutMs"):
        kwargs["timeout"] = float(p["timeoutMs"]) / 1000.0
    sniffer = S.AsyncSniffer(**kwargs)
    sniffer.start()
    # AsyncSniffer opens its socket in the thread; wait until it is there so that packets
    # sent right after this call are seen.
    deadline = time.time() + 5
    while getattr(sniffer, "stop_cb", None) is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    handle = NEXT_SNIFFER[0]
    NEXT_SNIFFER[0] += 1
    SNIFFERS[handle] = sniffer
    return {"handle": handle}


def m_sniff_wait(p):
    """Waits for a sniffer to finish (count or timeout reached), or stops it when stop=true."""
    sniffer = SNIFFERS.pop(int(p["handle"]), None)
    if sniffer is None:
        raise KeyError("no sniffer with handle %r" % p["handle"])
    if p.get("stop"):
        if sniffer.running:
            sniffer.stop()
    else:
        sniffer.join(float(p.get("waitMs", 60000)) / 1000.0)
        if sniffer.running:
            sniffer.stop()
    results = sniffer.results or []
    return {"packets": [capture_record(pkt) for pkt in results]}


def m_ping(p):
    return {"pong": True, "scapy": scapy.VERSION}


METHODS = {
    "ping": m_ping,
    "build": m_build,
    "decode": m_decode,
    "send": m_send,
    "sniffStart": m_sniff_start,
    "sniffWait": m_sniff_wait,
}


def handle(req):
    rid = req.get("id")
    try:
        fn = METHODS.get(req.get("method"))
        if fn is None:
            raise LookupError("unknown method %r" % req.get("method"))
        emit({"id": rid, "result": fn(req.get("params") or {})})
    except Exception as e:  # report every failure to the TypeScript side
        emit({"id": rid, "error": {"type": e.__class__.__name__, "message": str(e),
                                   "trace": traceback.format_exc(limit=3)}})


def main():
    emit({"ready": True, "scapy": scapy.VERSION})
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
        except ValueError as e:
            emit({"id": None, "error": {"type": "ParseError", "message": str(e)}})
            continue
        if req.get("method") == "shutdown":
            emit({"id": req.get("id"), "result": {"bye": True}})
            break
        # sniffWait blocks; run it in a thread so sends can go on meanwhile.
        if req.get("method") == "sniffWait":
            threading.Thread(target=handle, args=(req,), daemon=True).start()
        else:
            handle(req)
    for s in SNIFFERS.values():
        try:
            if s.running:
                s.stop()
        except Exception:
            pass
    for sock in SOCKETS.values():
        sock.close()


if __name__ == "__main__":
    main()
