#!/usr/bin/env python3
"""Vendors botocore service models into models/<service>.json.

The models are Apache-2.0 data from botocore (see NOTICE). Documentation strings are
stripped: Virga only needs the shapes, and the binary embeds these files.

    python3 models/vendor.py s3 sqs ...
"""
import gzip
import json
import os
import sys

import botocore

DATA = os.path.join(os.path.dirname(botocore.__file__), "data")
HERE = os.path.dirname(os.path.abspath(__file__))
DROP = {"documentation", "documentationUrl", "examples", "deprecatedMessage"}


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def vendor(service):
    versions = sorted(os.listdir(os.path.join(DATA, service)))
    path = os.path.join(DATA, service, versions[-1], "service-2.json.gz")
    with gzip.open(path) as f:
        model = json.load(f)
    model = strip(model)
    model["metadata"]["x-virga-source"] = f"botocore {botocore.__version__} data/{service}/{versions[-1]}"
    out = os.path.join(HERE, f"{service}.json")
    with open(out, "w") as f:
        json.dump(model, f, indent=1, sort_keys=False)
        f.write("\n")
    print(out, os.path.getsize(out))


if __name__ == "__main__":
    for s in sys.argv[1:]:
        vendor(s)
